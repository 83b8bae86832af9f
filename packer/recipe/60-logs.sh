#!/usr/bin/env bash
# Logs: every service writes to the journal. zmanim-journal-export copies the box's units'
# journal into /var/log/zmanim/box.log, the file the CloudWatch agent tails on AWS (the agent
# reads files, not the journal); logrotate keeps it bounded.
. "$(dirname "$0")/lib.sh"

install -d -m 0755 /var/log/zmanim
units=""
for u in $ZB_SERVICES $ZB_UNIT_FIRSTBOOT zops-backup.service zops-backup-verify.service zops-basebackup.service zops-wal-ship.service; do
	units="$units -u $u"
done
cat >"$ZB_UNITS_DIR/zmanim-journal-export.service" <<UNIT
# Copies the zmanim units' journal to /var/log/zmanim/box.log for the CloudWatch agent.
[Unit]
Description=zmanim box: journal to /var/log/zmanim/box.log
After=systemd-journald.service

[Service]
ExecStart=/bin/journalctl --follow --no-tail --output=short-iso --cursor-file=/var/log/zmanim/.box.cursor$units
StandardOutput=append:/var/log/zmanim/box.log
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
UNIT
ln -sfn "$ZB_UNITS_DIR/zmanim-journal-export.service" "$ZB_UNITS_DIR/multi-user.target.wants/zmanim-journal-export.service"
if [[ -d /etc/logrotate.d ]]; then
	cat >/etc/logrotate.d/zmanim <<CONF
/var/log/zmanim/box.log {
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
	[[ -x /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl ]] || die "CloudWatch agent not installed"
	# Its configuration comes from SSM at first boot (zops-box firstboot runs fetch-config).
	log "CloudWatch agent installed"
fi
log "journal export to /var/log/zmanim/box.log"
