#!/usr/bin/env bash
# Writes the image-owned configuration: /etc/zmanim (PostgreSQL settings included by the
# cluster on /data, Redis with AOF on /data) and persistent journald.
. "$(dirname "$0")/lib.sh"

install -d -m 0755 "$ZB_CONF_DIR"
cat >"$ZB_PG_CONF" <<CONF
# zmanim box: included from $ZB_PG_DATA/postgresql.conf (first boot adds the include).
listen_addresses = 'localhost'
port = $ZB_PG_PORT
unix_socket_directories = '$ZB_PG_SOCKET_DIR'
max_connections = 100
shared_buffers = 256MB
wal_level = replica
archive_mode = on
# Copy, then rename: zops-backup wal never ships a half-written segment.
archive_command = 'test ! -f $ZB_WAL_ARCHIVE/%f && cp %p $ZB_WAL_ARCHIVE/%f.tmp && mv $ZB_WAL_ARCHIVE/%f.tmp $ZB_WAL_ARCHIVE/%f'
archive_timeout = 60
# zops-backup base runs pg_basebackup -X fetch, which collects WAL at the end: keep enough
# that a checkpoint during the base backup does not recycle it.
wal_keep_size = 512MB
log_destination = 'stderr'
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
CONF
chmod 0644 "$ZB_PG_CONF"

cat >"$ZB_REDIS_CONF" <<CONF
# zmanim box Redis (a Redis-7-compatible server, see distro.sh): loopback only, AOF and snapshots on /data.
bind 127.0.0.1 -::1
port $ZB_REDIS_PORT
protected-mode yes
daemonize no
supervised systemd
logfile ""
dir $ZB_REDIS_DIR
appendonly yes
appendfsync everysec
save 3600 1 300 100 60 10000
CONF
chown "root:$ZB_REDIS_USER" "$ZB_REDIS_CONF"
chmod 0640 "$ZB_REDIS_CONF"

# The journal is the box's log store; persistent so a reboot keeps the first boot's story.
install -d -m 2755 -g systemd-journal /var/log/journal 2>/dev/null || install -d -m 0755 /var/log/journal
install -d -m 0755 /etc/systemd/journald.conf.d
cat >/etc/systemd/journald.conf.d/zmanim.conf <<CONF
[Journal]
Storage=persistent
SystemMaxUse=1G
CONF
log "wrote $ZB_PG_CONF, $ZB_REDIS_CONF, journald persistent"
