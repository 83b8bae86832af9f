#!/usr/bin/env bash
# Creates the service user of the API (ZB_USER, group ZB_GROUP reads the API's env file); the
# postgres and redis users come with the packages.
. "$(dirname "$0")/lib.sh"

getent group "$ZB_GROUP" >/dev/null || groupadd --system "$ZB_GROUP"
if ! getent passwd "$ZB_USER" >/dev/null; then
	useradd --system --gid "$ZB_GROUP" --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin "$ZB_USER"
fi
getent passwd "$ZB_PG_USER" >/dev/null || die "user $ZB_PG_USER missing: the PostgreSQL package should have created it"
# The Redis-compatible server runs as ZB_REDIS_USER on every distribution (AL2023's
# server's package may create its own user under another name).
if ! getent passwd "$ZB_REDIS_USER" >/dev/null; then
	useradd --system --user-group --home-dir "$ZB_REDIS_DIR" --no-create-home --shell /usr/sbin/nologin "$ZB_REDIS_USER"
fi
# The backup failure mail reads the journal.
getent group systemd-journal >/dev/null && usermod -a -G systemd-journal "$ZB_PG_USER"
log "users: $ZB_USER ($(id -u "$ZB_USER")), $ZB_PG_USER, $ZB_REDIS_USER"
