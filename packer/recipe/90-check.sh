#!/usr/bin/env bash
# Checks the image against the contract before it is captured: every unit present, every
# binary executable, nothing of the box enabled outside zmanim.target, no data on the root.
. "$(dirname "$0")/lib.sh"

for u in $ZB_UNITS; do [[ -f "$ZB_UNITS_DIR/$u" ]] || die "unit $u not installed"; done
for b in "$ZB_ZOPS_BOX" "$ZB_ZOPS_BACKUP" "$ZB_RESTIC" "$ZB_CURRENT/$ZB_API_BINARY" "$ZB_PG_BIN_DIR/postgres" "$ZB_PG_BIN_DIR/initdb" "$ZB_REDIS_SERVER" "$ZB_BIN_DIR/zmanim-dbinit"; do
	[[ -x "$b" ]] || die "$b is not executable"
done
[[ ! -e "$ZB_DATA_DIR/postgres" ]] || die "$ZB_DATA_DIR/postgres exists on the image: data belongs on the volume"
if command -v systemd-analyze >/dev/null; then
	verify=()
	for u in $ZB_UNITS; do
		[[ "$u" == *@.service ]] || verify+=("$ZB_UNITS_DIR/$u")
	done
	systemd-analyze verify --man=no "${verify[@]}"
fi
log "image matches the contract"
