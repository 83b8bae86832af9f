#!/usr/bin/env bash
# Logs: every service writes to the journal. zmanim-journal-export copies the box's units'
# journal into /var/log/zmanim/box.log, the file the CloudWatch agent tails on AWS (the agent
# reads files, not the journal); logrotate keeps it bounded.
. "$(dirname "$0")/lib.sh"

install -d -m 0755 "$(dirname "$ZB_LOG_FILE")"
units=""
for u in $ZB_SERVICES $ZB_UNIT_FIRSTBOOT zops-backup.service zops-backup-verify.service zops-basebackup.service zops-wal-ship.service; do
	units="$units -u $u"
done
cat >"$ZB_UNITS_DIR/zmanim-journal-export.service" <<UNIT
# Copies the zmanim units' journal to $ZB_LOG_FILE for the CloudWatch agent.
[Unit]
Description=zmanim box: journal to $ZB_LOG_FILE
After=systemd-journald.service

[Service]
ExecStart=/bin/journalctl --follow --no-tail --output=short-iso --cursor-file=$(dirname "$ZB_LOG_FILE")/.box.cursor$units
StandardOutput=append:$ZB_LOG_FILE
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
UNIT
ln -sfn "$ZB_UNITS_DIR/zmanim-journal-export.service" "$ZB_UNITS_DIR/multi-user.target.wants/zmanim-journal-export.service"
if [[ -d /etc/logrotate.d ]]; then
	cat >/etc/logrotate.d/zmanim <<CONF
$ZB_LOG_FILE {
	daily
	rotate 7
	compress
	missingok
	notifempty
	copytruncate
}
CONF
fi
if [[ "$CW_AGENT" == yes ]]; then
	[[ -x "$ZB_CW_AGENT_CTL" ]] || die "CloudWatch agent not installed ($ZB_CW_AGENT_CTL)"
	# Its configuration comes from SSM at first boot (zops-box firstboot runs fetch-config).
	log "CloudWatch agent installed"
fi
log "journal export to $ZB_LOG_FILE"
