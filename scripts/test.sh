#!/usr/bin/env bash
# Both installs: the full one (test extras, PyTorch) runs lint and the whole suite (doctests
# included); the light one (no PyTorch, .venv-light) runs the inference tests in tests/light
# and the numba kernels' tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
.venv/bin/ruff check src tests scripts benchmarks
.venv/bin/python -m pytest "$@"
scripts/setup.sh light-test .venv-light
.venv-light/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is not None)" \
  || { echo "error: the light install has torch" >&2; exit 1; }
.venv-light/bin/python -m pytest -p no:cacheprovider tests/light tests/test_kernels.py -q
