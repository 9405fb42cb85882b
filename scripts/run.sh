#!/usr/bin/env bash
# Set up, then run the main job on the bundled defaults: retarget -> train -> compare.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/imitation pipeline "$@"
