#!/usr/bin/env bash
# Regenerate every figure the README quotes for the exposure/denoise, speed, video and service work.
# Usage: scripts/measure_all.sh   (needs ../shared/data; about 65 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
D=../shared/data
A=../shared/reference/zerodce-authors-epoch99.pth
P="balance=none,denoise=0"
mkdir -p docs/eval docs/video

# Issue 4: every setting tried, with the baselines, on lol-val100 in one run.
.venv/bin/zerodce evaluate --low $D/lol-val100/low --high $D/lol-val100/high --report docs/eval/lol-val100-adjust \
  --method identity --method gamma:0.4 --method gamma-mean:0.45 --method he --method clahe \
  --method "model:$A,$P" --method "model:$A,$P+bilateral" --method "model:$A,$P+bilateral+gamma-mean:0.45" \
  --method "model:zerodce,$P" --method "model:zerodce,balance=none,denoise=2" --method "model:zerodce,balance=0.75,denoise=0" \
  --method "model:zerodce" --method "model:zerodce,denoise=3" \
  --method "model:zerodce,exposure=0.4" --method "model:zerodce,exposure=0.45" --method "model:zerodce,exposure=0.5" \
  --method "model:zerodce,exposure=0.6" --method "model:zerodce,exposure=0.7" \
  --method "model:zerodce,exposure=0.45,denoise=2.5" --method "model:zerodce,exposure=0.45,denoise=3" \
  --method "model:zerodce,exposure=0.45,balance=0.5,denoise=2.5" --method "model:zerodce,exposure=0.45,balance=1,denoise=3" \
  --method "model:zerodce,denoiser=learned" --method "model:zerodce,exposure=0.45,denoiser=learned" \
  --method "model:zerodce,exposure=0.45,balance=0.5,denoiser=learned" \
  --method "model:zerodce,exposure=0.45,balance=0.5,denoiser=learned,denoise=3" \
  --method "model:fast,$P" --method "model:fast" \
  --show 104.png --show 160.png
# The learned denoiser against the baselines and the guided filter's best settings, in one run.
.venv/bin/zerodce evaluate --low $D/lol-val100/low --high $D/lol-val100/high --report docs/eval/lol-val100-learned \
  --method "model:$A,$P" --method "model:$A,$P+bilateral" --method "model:$A,$P+bilateral+gamma-mean:0.45" \
  --method "model:zerodce" --method "model:zerodce,exposure=0.45,balance=0.5,denoise=2.5" \
  --method "model:zerodce,denoiser=learned" --method "model:zerodce,exposure=0.45,denoiser=learned" \
  --method "model:zerodce,exposure=0.45,balance=0.5,denoiser=learned" \
  --method "model:zerodce,exposure=0.45,balance=0.5,denoiser=learned,denoise=3" \
  --show 104.png --show 160.png
# Camera-style metering (--metering) against the baselines and the previous best settings, in one run:
# every setting tried for it is a row.
L="denoiser=learned"
.venv/bin/zerodce evaluate --low $D/lol-val100/low --high $D/lol-val100/high --report docs/eval/lol-val100-metering \
  --method "model:$A,$P" --method "model:$A,$P+bilateral" --method "model:$A,$P+bilateral+gamma-mean:0.45" \
  --method "model:zerodce" --method "model:zerodce,exposure=0.45,balance=0.5,denoise=2.5" \
  --method "model:zerodce,exposure=0.45,balance=0.5,$L" \
  --method "model:zerodce,exposure=0.45,balance=0,$L" --method "model:zerodce,exposure=0.45,balance=0.25,$L" \
  --method "model:zerodce,metering=linear,exposure=0.44,balance=0.5,$L" \
  --method "model:zerodce,metering=linear,exposure=0.47,balance=0.5,$L" \
  --method "model:zerodce,metering=linear,exposure=0.5,balance=0.5,$L" \
  --method "model:zerodce,metering=centre,exposure=0.44,balance=0.5,$L" \
  --method "model:zerodce,metering=centre,exposure=0.46,balance=0.5,$L" \
  --method "model:zerodce,metering=centre,exposure=0.47,balance=0.5,$L" \
  --method "model:zerodce,metering=centre,exposure=0.5,balance=0.5,$L" \
  --method "model:zerodce,metering=centre,exposure=0.47,$L" \
  --method "model:zerodce,metering=centre,exposure=0.47,balance=0.5" \
  --method "model:zerodce,metering=centre,exposure=0.47,balance=0.5,denoise=2.5" \
  --show 104.png --show 160.png
$PY scripts/metering_spread.py --data $D/lol-val100 | tee docs/eval/metering_spread.txt
$PY scripts/learned_strength.py --data $D/lol-val100 | tee docs/eval/learned_strength.txt
# Exposure control on real photos (no references).
.venv/bin/zerodce evaluate --low $D/real-lowlight --report docs/eval/real-lowlight-exposure \
  --method "model:$A,$P" --method "model:zerodce,$P" --method "model:zerodce" \
  --method "model:zerodce,exposure=0.4" --method "model:zerodce,exposure=0.5" \
  --method "model:zerodce,exposure=0.6" --method "model:zerodce,exposure=0.7"
# Centre-weighted metering on real photos: requested level against what each meter reads.
.venv/bin/zerodce evaluate --low $D/real-lowlight --report docs/eval/real-lowlight-metering \
  --method "model:zerodce,exposure=0.46" \
  --method "model:zerodce,metering=centre,exposure=0.4" --method "model:zerodce,metering=centre,exposure=0.46" \
  --method "model:zerodce,metering=centre,exposure=0.5" --method "model:zerodce,metering=centre,exposure=0.6"
$PY scripts/ssim_ceiling.py --data $D/lol-val100 | tee docs/eval/ssim_ceiling.txt
$PY scripts/precision_check.py --images $D/lol-val100/low | tee docs/precision.txt
$PY benchmarks/speed.py --markdown docs/speed.md
$PY benchmarks/denoise_cost.py --markdown docs/denoise_cost.md
$PY benchmarks/folder.py --images $D/real-lowlight/DICM | tee docs/folder.txt
$PY scripts/video_flicker.py --out docs/video | tee docs/video/flicker.txt
$PY scripts/denoise_crops.py --out docs/denoise_crops.jpg
$PY scripts/load_test.py --requests 500 --clients 16 | tee docs/load_test.txt
