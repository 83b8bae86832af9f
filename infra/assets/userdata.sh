#!/bin/bash
# zmanim box boot script (EC2 user data, rendered by infra/compute.go; cloud-init runs it once per
# instance, so again on every replacement instance). Story 7.4.6 / 7.9.4:
#   1. wait for the persistent data volume, format it ONLY when it is blank (blkid finds no
#      signature), mount it at /data by UUID (never by device name, which changes across instances)
#   2. export the SSM parameters under the prefix to an env file readable only by the service
#   3. start the CloudWatch agent with its configuration from SSM
#   4. start the services
# The file can be sourced (functions only) so that tests can run each step with stubbed commands.
set -euo pipefail

REGION="{{.Region}}"
VOLUME_ID="{{.VolumeID}}"
SSM_PREFIX="{{.SSMPrefix}}"
DATA_DIR="{{.DataDir}}"
FS_LABEL="{{.Label}}"
SERVICE_GROUP="{{.ServiceGroup}}"
ENV_FILE="{{.EnvFile}}"
AGENT_PARAM="{{.AgentParam}}"
SERVICES="{{.Services}}"
DEVICE_WAIT_SECONDS="${DEVICE_WAIT_SECONDS:-600}"
FSTAB="${FSTAB:-/etc/fstab}"

log() { echo "zmanim-boot: $*" >&2; }

# wait_for_volume prints the block device of the data volume once it is attached. The attachment
# is a separate CloudFormation resource created after the instance, so the device can be late.
wait_for_volume() {
	local link="/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${VOLUME_ID//-/}"
	local waited=0
	while [[ ! -e "$link" ]]; do
		if ((waited >= DEVICE_WAIT_SECONDS)); then
			log "data volume $VOLUME_ID is not attached after ${DEVICE_WAIT_SECONDS}s; attach it (mage ami rollout does) and reboot"
			return 1
		fi
		sleep 5
		waited=$((waited + 5))
	done
	readlink -f "$link"
}

# prepare_volume formats the device only when blkid reports no signature at all (exit 2); a
# filesystem or partition table (exit 0) is kept, and any other answer stops the boot rather
# than risk the data (DESIGN.md trap 4).
prepare_volume() {
	local dev="$1" rc=0
	blkid -p "$dev" >/dev/null 2>&1 || rc=$?
	case "$rc" in
	0) log "$dev holds data: keeping it" ;;
	2)
		log "$dev is blank: creating an xfs filesystem labelled $FS_LABEL"
		mkfs.xfs -L "$FS_LABEL" "$dev"
		;;
	*)
		log "blkid could not probe $dev (exit $rc): refusing to format; inspect the volume by hand"
		return 1
		;;
	esac
}

# mount_data mounts the filesystem at DATA_DIR by UUID through fstab (nofail: a missing volume
# must not hang the boot; the services then refuse to start without /data).
mount_data() {
	local dev="$1" uuid
	uuid="$(blkid -s UUID -o value "$dev")"
	if [[ -z "$uuid" ]]; then
		log "no filesystem UUID on $dev"
		return 1
	fi
	mkdir -p "$DATA_DIR"
	local tmp="${FSTAB}.zmanim.tmp"
	grep -v "[[:space:]]${DATA_DIR}[[:space:]]" "$FSTAB" >"$tmp" || true
	echo "UUID=${uuid} ${DATA_DIR} xfs defaults,noatime,nofail 0 2" >>"$tmp"
	mv "$tmp" "$FSTAB"
	mountpoint -q "$DATA_DIR" || mount "$DATA_DIR"
}

# write_env exports every parameter under SSM_PREFIX (decrypted) except the agent configuration
# as NAME=value lines (clerk-secret-key -> CLERK_SECRET_KEY) into ENV_FILE, mode 0640 root:group,
# replaced atomically so the service never reads half a file. Values are never printed.
write_env() {
	local dir tmp
	dir="$(dirname "$ENV_FILE")"
	install -d -m 0750 -g "$SERVICE_GROUP" "$dir" # owned by root: cloud-init runs this as root
	tmp="$(mktemp "$dir/.env.XXXXXX")"
	chmod 0640 "$tmp"
	chgrp "$SERVICE_GROUP" "$tmp"
	aws ssm get-parameters-by-path --region "$REGION" --path "$SSM_PREFIX" --recursive --with-decryption --output json |
		python3 -c '
import json, re, sys
skip = sys.argv[1]
for p in json.load(sys.stdin)["Parameters"]:
    if p["Name"] == skip:
        continue
    key = re.sub(r"[^A-Z0-9]", "_", p["Name"].rsplit("/", 1)[-1].upper())
    value = p["Value"]
    if "\n" in value:
        sys.exit("parameter %s spans lines; store it on one line" % p["Name"])
    print("%s=\"%s\"" % (key, value.replace("\\", "\\\\").replace("\"", "\\\"")))
' "$AGENT_PARAM" >"$tmp"
	mv "$tmp" "$ENV_FILE"
	log "wrote $(wc -l <"$ENV_FILE") parameters to $ENV_FILE"
}

start_agent() {
	/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c "ssm:${AGENT_PARAM}"
}

start_services() {
	# shellcheck disable=SC2086 # SERVICES is a space-separated list of unit names
	systemctl enable --now $SERVICES
}

main() {
	local dev
	dev="$(wait_for_volume)"
	prepare_volume "$dev"
	mount_data "$dev"
	write_env
	start_agent
	start_services
	log "boot complete"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	exec > >(tee -a /var/log/zmanim-boot.log) 2>&1
	main "$@"
fi
