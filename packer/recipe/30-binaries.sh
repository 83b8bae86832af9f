#!/usr/bin/env bash
# Installs the project's binaries from the staging directory: zops-box, zops-backup, the pinned
# restic, and the first API release (releases/<version>, `current` pointing at it, the layout
# `zops-box deploy` continues). Links the distribution's PostgreSQL and Redis programs at the
# contract's paths.
. "$(dirname "$0")/lib.sh"

need() { [[ -f "$ZOPS_FILES/$1" ]] || die "staging directory lacks $1 (files_dir=$ZOPS_FILES)"; }
need bin/zops-box
need bin/zops-backup
need bin/restic
need api/VERSION
version="$(tr -d '[:space:]' <"$ZOPS_FILES/api/VERSION")"
need "api/$version/$ZB_API_BINARY"

install -d -m 0755 "$ZB_BIN_DIR" "$ZB_RELEASES"
install -m 0755 "$ZOPS_FILES/bin/zops-box" "$ZB_ZOPS_BOX"
install -m 0755 "$ZOPS_FILES/bin/zops-backup" "$ZB_ZOPS_BACKUP"
install -m 0755 "$ZOPS_FILES/bin/restic" "$ZB_RESTIC"
install -d -m 0755 "$ZB_RELEASES/$version"
install -m 0755 "$ZOPS_FILES/api/$version/$ZB_API_BINARY" "$ZB_RELEASES/$version/$ZB_API_BINARY"
ln -sfn "releases/$version" "$ZB_CURRENT"
install -m 0755 "$RECIPE_DIR/files/zmanim-dbinit" "$ZB_BIN_DIR/zmanim-dbinit"
install -m 0644 "$RECIPE_DIR/contract.sh" "$ZB_CONTRACT_FILE"

ln -sfn "$DIST_PG_BIN" "$ZB_PG_BIN_DIR"
ln -sfn "$DIST_REDIS_SERVER" "$ZB_REDIS_SERVER"
log "zops-box $("$ZB_ZOPS_BOX" --version 2>/dev/null | awk '{print $2}'), restic $("$ZB_RESTIC" version | awk '{print $2}'), API $version"
