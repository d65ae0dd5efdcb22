#!/usr/bin/env bash
# The main job on a fresh machine: set up, then enhance the bundled sample photos with the
# bundled model into out/examples/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/zerodce enhance examples -o out/examples --overwrite
