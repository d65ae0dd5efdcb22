"""The learned denoiser's strength, chosen on every third lol-val100 pair (validation, never training).

    .venv/bin/python scripts/learned_strength.py --data ../shared/data/lol-val100 [--every 3]

Enhances each low image once at the best LOL setting's exposure and balance (0.45, 0.5), then
applies the guided filter (strength 2.5, the best guided setting) and the learned denoiser at
several strengths to the same curves output, and prints mean PSNR / SSIM (the evaluation's metrics).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from zerodce import metrics
from zerodce.adjust import gain_aware_denoise, noise_sigma
from zerodce.denoiser import learned_denoise, load_denoiser
from zerodce.enhance import Enhancer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data/lol-val100"))
    p.add_argument("--every", type=int, default=3)
    p.add_argument("--strengths", default="1.5,2,3")
    args = p.parse_args()
    files = sorted((args.data / "low").iterdir())[:: args.every]
    strengths = [float(s) for s in args.strengths.split(",")]
    net = load_denoiser()
    enh = Enhancer("zerodce", tile=None, backend="torch", exposure=0.45, balance=0.5, denoise=0)
    rows: dict[str, list[tuple[float, float]]] = {"guided 2.5": []} | {f"learned {s:g}": [] for s in strengths}

    def score(name: str, y: torch.Tensor, ref: np.ndarray) -> None:
        q = (y[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()
        rows[name].append((metrics.psnr(q, ref), metrics.ssim(q, ref)))

    with torch.inference_mode():
        for f in tqdm(files, desc="pairs"):
            x = torch.from_numpy(np.array(Image.open(f).convert("RGB"))).permute(2, 0, 1)[None].float() / 255
            ref = np.asarray(Image.open(args.data / "high" / f.name).convert("RGB"))
            y, sigma = enh(x), noise_sigma(x)
            score("guided 2.5", gain_aware_denoise(y.clone(), x, 2.5, sigma), ref)
            for s in strengths:
                score(f"learned {s:g}", learned_denoise(net, y.clone(), x, s, sigma), ref)
    print(f"{len(files)} pairs (one in {args.every} of {args.data}), exposure 0.45, balance 0.5")
    print(f"{'denoiser':<14} {'PSNR':>7} {'SSIM':>7}")
    for name, v in rows.items():
        m = np.mean(v, axis=0)
        print(f"{name:<14} {m[0]:7.2f} {m[1]:7.4f}")


if __name__ == "__main__":
    main()
