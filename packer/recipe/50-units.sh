#!/usr/bin/env bash
# Installs the box's units (deploy/systemd, staged under systemd/), masks the distribution's
# own database units, and enables first boot and zmanim.target: nothing of the box starts
# before first boot has mounted /data.
. "$(dirname "$0")/lib.sh"

src="$ZOPS_FILES/systemd"
[[ -d "$src" ]] || die "staging directory lacks systemd/ (the units of deploy/systemd)"
for u in $ZB_UNITS; do
	[[ -f "$src/$u" ]] || die "unit $u missing from $src"
	install -m 0644 "$src/$u" "$ZB_UNITS_DIR/$u"
done
for u in "${DIST_MASK[@]}"; do
	ln -sfn /dev/null "$ZB_UNITS_DIR/$u"
done
# Enabled by links, as `systemctl enable` would, without needing a running systemd.
install -d -m 0755 "$ZB_UNITS_DIR/multi-user.target.wants"
ln -sfn "$ZB_UNITS_DIR/$ZB_UNIT_FIRSTBOOT" "$ZB_UNITS_DIR/multi-user.target.wants/$ZB_UNIT_FIRSTBOOT"
ln -sfn "$ZB_UNITS_DIR/$ZB_UNIT_TARGET" "$ZB_UNITS_DIR/multi-user.target.wants/$ZB_UNIT_TARGET"
log "installed $(wc -w <<<"$ZB_UNITS") units; masked ${DIST_MASK[*]}; enabled $ZB_UNIT_FIRSTBOOT $ZB_UNIT_TARGET"
