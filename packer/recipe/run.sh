#!/usr/bin/env bash
# The box recipe: runs each concern's script in order, as root, inside the image being built
# (a Debian chroot for the local builder, an Amazon Linux 2023 instance for the ec2 builder).
# See README for what it needs from the Packer template.
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)"
for s in 10-packages.sh 20-users.sh 30-binaries.sh 40-config.sh 50-units.sh 60-logs.sh 90-check.sh; do
	echo "recipe: == $s" >&2
	if ! bash "$dir/$s"; then
		echo "recipe: $s failed; the image is not usable" >&2
		exit 1
	fi
done
echo "recipe: done" >&2
