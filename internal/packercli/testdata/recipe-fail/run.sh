#!/usr/bin/env bash
# Test fixture: a recipe that fails half-way, leaving a daemon running in the chroot.
set -euo pipefail
sleep 600 </dev/null >/dev/null 2>&1 &
echo "recipe: == 10-packages.sh"
echo "E: Unable to locate package postgresql-99" >&2
exit 100
