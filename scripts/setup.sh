#!/usr/bin/env bash
# Create a virtual environment (if needed) and install zerodce into it.
# Usage: scripts/setup.sh [extras] [venv]   e.g. scripts/setup.sh test; scripts/setup.sh light-test .venv-light
# Without extras it is the light install: numpy, Pillow, onnxruntime (no PyTorch). Extras that need
# PyTorch (test, torch, train) get the CPU build of torch installed first.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
venv="${2:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if [[ ",$extras," =~ ,(test|torch|train), ]]; then
  # Install torch explicitly first: an unpinned torch would resolve to a multi-GB CUDA build.
  "$venv/bin/python" -c "import torch" 2>/dev/null || "$venv/bin/pip" install -q "torch==2.13.0"
fi
if [ -n "$extras" ]; then
  "$venv/bin/pip" install -q -e ".[$extras]"
else
  "$venv/bin/pip" install -q -e .
fi
# numba's kernels compile on their first use (about 30 s, once per machine): with the fast extra,
# now rather than in the middle of the first photo.
if [[ ",$extras," == *",fast,"* ]]; then
  echo "compiling numba's kernels for this machine (once, about 30 s)..."
  "$venv/bin/python" -c "from zerodce.core import kernels; kernels.warm()"
fi
# The browser test drives Debian's chromium (never a downloaded browser): install it when missing.
if [[ ",$extras," == *",test,"* ]] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1) \
      || echo "warning: could not install chromium; the browser test will skip" >&2
  else
    echo "warning: chromium not on PATH (sudo apt-get install chromium); the browser test will skip" >&2
  fi
fi
