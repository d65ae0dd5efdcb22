"""Cross-check `zerodce evaluate` against scikit-image computed independently on saved outputs.

Enhances the low images with a model through the CLI (PNG, lossless), recomputes PSNR and SSIM with
scikit-image's own functions on the written files, and compares them with the per-image CSV that
`zerodce evaluate --report` wrote for the same model.

    .venv/bin/python scripts/check_metrics.py --low ../shared/data/lol-val100/low \
        --high ../shared/data/lol-val100/high --csv REPORT/per_image.csv --method model:zerodce

A method with options (``model:zerodce,exposure=0.45,denoise=2.5``) passes them as the CLI flags
of the same names.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--low", required=True)
    p.add_argument("--high", required=True)
    p.add_argument("--csv", required=True, help="per_image.csv from zerodce evaluate --report")
    p.add_argument("--method", default="model:zerodce", help="a model:NAME_OR_PATH[,options] spec")
    p.add_argument("--row", default=None, help="the CSV's method label for it (default: the spec itself)")
    args = p.parse_args()
    # model:NAME[,paper][,preset=P][,exposure=E]... -> the same options as CLI flags
    model, *options = args.method.removeprefix("model:").split(",")
    flags = [part for opt in options for part in (f"--{opt.partition('=')[0]}", opt.partition("=")[2]) if part]
    label = args.row or args.method
    rows = {r["image"]: r for r in csv.DictReader(open(args.csv)) if r["method"] == label}
    if not rows:
        sys.exit(f"no rows for {label} in {args.csv}")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "zerodce", "enhance", args.low, "-o", tmp, "--model", model, *flags, "-q"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        dp, ds = [], []
        for name, row in sorted(rows.items()):
            y = np.asarray(Image.open(Path(tmp) / name).convert("RGB"))
            ref = np.asarray(Image.open(Path(args.high) / name).convert("RGB"))
            dp.append(abs(peak_signal_noise_ratio(ref, y, data_range=255) - float(row["psnr"])))
            ds.append(abs(structural_similarity(y, ref, channel_axis=2, data_range=255) - float(row["ssim"])))
    print(f"{len(dp)} images, {args.method}: max |dPSNR| = {max(dp):.2e} dB, max |dSSIM| = {max(ds):.2e}")
    sys.exit(0 if max(dp) <= 0.01 and max(ds) <= 0.001 else 1)


if __name__ == "__main__":
    main()
