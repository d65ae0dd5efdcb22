#!/usr/bin/env bash
# Both installs: the full one (test extras, PyTorch) runs lint and the whole suite (doctests
# included); the light one (no PyTorch, .venv-light) runs the inference tests in tests/light
# and the numba kernels' tests. Both suites run whatever the first gives; the exit status is
# non-zero if either (or lint) failed, and both summaries are printed at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
log="$(mktemp -d)"
status=0
full=1 light=1 lint=1

if scripts/setup.sh test; then
  .venv/bin/ruff check src tests scripts benchmarks; lint=$?
  .venv/bin/python -m pytest "$@" 2>&1 | tee "$log/full"; full=${PIPESTATUS[0]}
else
  echo "error: the full install's set-up failed" | tee "$log/full" >&2
fi

if scripts/setup.sh light-test .venv-light; then
  if .venv-light/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is not None)"; then
    .venv-light/bin/python -m pytest -p no:cacheprovider tests/light tests/test_kernels.py 2>&1 | tee "$log/light"
    light=${PIPESTATUS[0]}
  else
    echo "error: the light install has torch" | tee "$log/light" >&2
  fi
else
  echo "error: the light install's set-up failed" | tee "$log/light" >&2
fi

echo
echo "== summary =="
echo "lint (ruff):  $([ "$lint" = 0 ] && echo passed || echo "FAILED ($lint)")"
# pytest's own summary line ("N passed, ... in S s"), not whatever the log ends with (a warnings URL)
result() { grep -E '(passed|failed|error|no tests ran)' "$1" | tail -n 1 || tail -n 1 "$1"; }
echo "full suite:   $(result "$log/full") (exit $full)"
echo "light suite:  $(result "$log/light") (exit $light)"
for s in "$lint" "$full" "$light"; do [ "$s" = 0 ] || status=1; done
rm -rf "$log"
exit "$status"
