#!/usr/bin/env bash
# Set up with the test extras, lint, and run the test suite (doctests included).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
.venv/bin/ruff check src tests scripts benchmarks
.venv/bin/python -m pytest "$@"
