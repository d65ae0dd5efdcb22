"""Evaluation: full-reference metrics on paired folders (PSNR, SSIM, MAE on 8-bit RGB).

Definitions (the project's bars use these):
- PSNR: ``10 log10(255^2 / MSE)`` over all pixels and the 3 channels of 8-bit RGB.
- SSIM: ``skimage.metrics.structural_similarity(a, b, channel_axis=2, data_range=255)`` on
  8-bit RGB (7x7 uniform window, K1=0.01, K2=0.03, mean over channels).
- MAE: mean absolute difference on the 0..255 scale.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = ["psnr", "ssim", "mae", "pair_folders", "evaluate_paired"]


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """PSNR in dB of two same-shape arrays (inf when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """scikit-image SSIM over the colour channels (7x7 uniform window)."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, channel_axis=2, data_range=data_range))


def mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def pair_folders(low: Path, high: Path) -> list[tuple[Path, Path]]:
    """Pair files by name; a clear error when the folders hold different names."""
    from .data import list_images

    lows = {p.name: p for p in list_images(low, recursive=False)}
    highs = {p.name: p for p in list_images(high, recursive=False)}
    only_low, only_high = sorted(set(lows) - set(highs)), sorted(set(highs) - set(lows))
    if only_low or only_high:
        raise ValueError(
            f"folders do not pair by name: {len(only_low)} only in {low} (e.g. {only_low[:3]}), "
            f"{len(only_high)} only in {high} (e.g. {only_high[:3]})"
        )
    if not lows:
        raise ValueError(f"{low}: no images")
    return [(lows[n], highs[n]) for n in sorted(lows)]


def _rgb8(path: Path) -> np.ndarray:
    from .io import read_image

    return np.asarray(read_image(path).convert("RGB"))


def evaluate_paired(
    pairs: list[tuple[Path, Path]],
    method: Callable[[np.ndarray], np.ndarray],
    progress: Callable[[int], object] | None = None,
) -> list[dict[str, object]]:
    """Apply ``method`` (uint8 RGB -> uint8 RGB) to each low image; metrics against its reference."""
    rows = []
    for low, high in pairs:
        x, ref = _rgb8(low), _rgb8(high)
        y = method(x)
        rows.append(
            {
                "image": low.name,
                "psnr": psnr(y, ref),
                "ssim": ssim(y, ref),
                "mae": mae(y, ref),
                "brightness": float(y.mean() / 255.0),
            }
        )
        if progress:
            progress(1)
    return rows


def add_evaluate_parser(sub: argparse._SubParsersAction, func: Callable) -> None:
    e = sub.add_parser(
        "evaluate",
        help="PSNR/SSIM/MAE of a model on paired low/high folders",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("--low", required=True, help="folder of low-light inputs")
    e.add_argument("--high", required=True, help="folder of references with the same file names")
    e.add_argument("--model", action="append", default=None, help="bundled name or weights path (repeatable)")
    e.add_argument("--csv", default=None, help="write per-image rows here")
    e.add_argument("--json", default=None, help="write the summary here")
    e.set_defaults(func=func)


def main_evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .enhance import Enhancer, enhance

    try:
        pairs = pair_folders(Path(args.low), Path(args.high))
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary: dict[str, dict[str, float]] = {}
    all_rows = []
    for name in args.model or ["zerodce"]:
        enh = Enhancer(name)
        with tqdm(total=len(pairs), desc=str(name), file=sys.stderr) as bar:
            rows = evaluate_paired(pairs, functools.partial(enhance, model=enh), bar.update)
        for r in rows:
            r["method"] = str(name)
        all_rows += rows
        summary[str(name)] = {k: float(np.mean([r[k] for r in rows])) for k in ("psnr", "ssim", "mae", "brightness")}
        print(
            f"{name}: PSNR {summary[str(name)]['psnr']:.3f} dB  SSIM {summary[str(name)]['ssim']:.4f}  "
            f"MAE {summary[str(name)]['mae']:.2f}"
        )
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(all_rows[0]))
            w.writeheader()
            w.writerows(all_rows)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return 0
