#!/usr/bin/env bash
# Test fixture standing in for packer/recipe/run.sh: proves the template's contract.
set -euo pipefail
echo "fixture recipe: distro=$ZOPS_DISTRO files=$ZOPS_FILES version=$ZOPS_VERSION extra=${ZOPS_EXTRA:-}"
test -x "$ZOPS_FILES/bin/hello"
install -m 0755 "$ZOPS_FILES/bin/hello" /usr/local/bin/hello
echo "$ZOPS_DISTRO $ZOPS_VERSION ${ZOPS_EXTRA:-}" > /etc/zops-fixture
