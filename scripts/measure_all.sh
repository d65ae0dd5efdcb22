#!/usr/bin/env bash
# Regenerate every figure the README and docs/ quote (needs ../shared beside the repository).
# Usage: scripts/measure_all.sh   (about an hour on 2 cores; the quality report alone about 30 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
D=../shared/data
mkdir -p docs/quality docs/video

# What the controls do to photos: LOL cross-validated, hue fidelity, do no harm, noise, contact sheets.
$PY scripts/quality_report.py --shared ../shared --out docs/quality
$PY scripts/metering_spread.py --data $D/lol-val100 | tee docs/metering_spread.txt
$PY scripts/precision_check.py --images $D/lol-val100/low | tee docs/precision.txt
$PY benchmarks/speed.py --markdown docs/speed.md
$PY benchmarks/denoise_cost.py --markdown docs/denoise_cost.md
$PY benchmarks/folder.py --images $D/real-lowlight/DICM | tee docs/folder.txt
$PY scripts/video_flicker.py --out docs/video | tee docs/video/flicker.txt
$PY scripts/denoise_crops.py --out docs/denoise_crops.jpg
$PY scripts/load_test.py --requests 500 --clients 16 | tee docs/load_test.txt
