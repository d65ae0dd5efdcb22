"""PSNR of the reduced-precision paths against the fp32 output, on a folder of photos (lol-val100).

    .venv/bin/python scripts/precision_check.py --images ../shared/data/lol-val100/low

For each image: the plain model (no balance, no denoiser) in fp32 on PyTorch is the reference;
bf16 (PyTorch autocast) and int8 (onnxruntime, bundled quantised graph) outputs are compared with
it as 8-bit images, like files. Prints mean and worst PSNR and the largest pixel difference.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np


def main() -> None:
    from zerodce.enhance import Enhancer, enhance
    from zerodce.evaluation.evaluate import read_rgb8
    from zerodce.evaluation.metrics import psnr
    from zerodce.training.data import list_images

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", required=True)
    args = p.parse_args()
    plain = {"paper": True, "tile": None}
    ref = Enhancer("zerodce", backend="torch", **plain)
    others = {
        "onnxruntime fp32": Enhancer("zerodce", backend="onnxruntime", **plain),
        "bf16": Enhancer("zerodce", precision="bf16", **plain),
        "int8": Enhancer("zerodce", precision="int8", **plain),
    }
    scores: dict[str, list[float]] = {k: [] for k in others}
    worst: dict[str, int] = dict.fromkeys(others, 0)
    files = list_images(Path(args.images))
    for f in files:
        x = read_rgb8(f)
        y = enhance(x, ref).astype(np.int16)
        for name, enh in others.items():
            z = enhance(x, enh).astype(np.int16)
            scores[name].append(psnr(z, y) if np.any(z != y) else math.inf)
            worst[name] = max(worst[name], int(np.abs(z - y).max()))
    print(f"{len(files)} images from {args.images}; reference: PyTorch fp32, plain model, 8-bit outputs")
    for name, s in scores.items():
        finite = [v for v in s if math.isfinite(v)]
        mean = np.mean(finite) if finite else math.inf
        low = min(s)
        print(
            f"  {name:17s} PSNR mean {mean:.1f} dB, worst {low:.1f} dB, identical {len(s) - len(finite)}/{len(s)}, "
            f"max |diff| {worst[name]} levels"
        )


if __name__ == "__main__":
    main()
