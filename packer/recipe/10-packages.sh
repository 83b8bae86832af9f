#!/usr/bin/env bash
# Installs PostgreSQL + PostGIS, the Redis-7-compatible server, xfsprogs (first boot formats a
# blank data volume as xfs) and, on Amazon Linux 2023, the CloudWatch agent (distro.sh).
. "$(dirname "$0")/lib.sh"

log "installing ${DIST_PACKAGES[*]} ($ZOPS_DISTRO)"
pkg_prepare
pkg_install "${DIST_PACKAGES[@]}"
pkg_finish
[[ -x "$DIST_PG_BIN/postgres" ]] || die "no PostgreSQL server at $DIST_PG_BIN/postgres after install"
[[ -x "$DIST_REDIS_SERVER" ]] || die "no Redis server at $DIST_REDIS_SERVER after install"
command -v mkfs.xfs >/dev/null || die "mkfs.xfs missing (xfsprogs)"
log "PostgreSQL $("$DIST_PG_BIN/postgres" --version | awk '{print $3}'), $("$DIST_REDIS_SERVER" --version | awk '{print $1, $3}')"
