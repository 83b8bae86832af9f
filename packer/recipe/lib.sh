# shellcheck shell=bash
# Shared helpers of the recipe scripts: strict mode, logging, the contract and the
# distribution's differences. Every script sources this first.
set -euo pipefail

RECIPE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# ZOPS_FILES is the staging directory the template uploads next to the recipe (files_dir).
ZOPS_FILES="${ZOPS_FILES:-$RECIPE_DIR/../files}"
export RECIPE_DIR ZOPS_FILES

log() { echo "recipe[$(basename "${0%.sh}")]: $*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

# shellcheck source=contract.sh
. "$RECIPE_DIR/contract.sh"
# shellcheck source=distro.sh
. "$RECIPE_DIR/distro.sh"
