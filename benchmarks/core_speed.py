"""The torch-free inference maths (zerodce.core, numpy) against its torch twins, at full resolution.

    .venv/bin/python benchmarks/core_speed.py [--size 3000x4000] [--rounds 3] [--threads 2]

Each function runs on the same float32 photo-sized input in numpy and in torch (``--threads``
intra-op threads; numpy's elementwise work runs on one core, its matrix products on BLAS threads),
interleaved round by round; the table gives the best time of each. Inputs: a dark image ``x``, its
brightened ``y``, Zero-DCE++ curve maps (3 channels) and DCE-Net's (24 channels).
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="3000x4000", help="HxW")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    import numpy as np
    import torch

    from zerodce import adjust, curves, tone
    from zerodce.core import color, filters, noise
    from zerodce.core import curves as ccurves
    from zerodce.core import tone as ctone

    torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    x = (rng.random((1, 3, h, w), dtype=np.float32) * 0.3).astype(np.float32)
    y = np.clip(x * 2.5, 0, 1)
    maps3 = (rng.random((1, 3, h, w), dtype=np.float32) * 2 - 1).astype(np.float32)
    maps24 = (rng.random((1, 24, h, w), dtype=np.float32) * 2 - 1).astype(np.float32)
    sigma, cs, u = np.array([0.01], np.float32), np.array([0.005], np.float32), np.array([0.7], np.float32)
    tx, ty, tm3, tm24 = (torch.from_numpy(a) for a in (x, y, maps3, maps24))
    tsig, tcs, tu = (torch.from_numpy(a) for a in (sigma, cs, u))
    thumb = color.thumbnail(x)
    thumb_mm = ctone.mean_maps(color.area_resize(maps24, thumb.shape[-2:]), 8)
    target = np.array([0.45], np.float32)
    tthumb, tthumb_mm, ttarget = (torch.from_numpy(a) for a in (thumb, thumb_mm, target))

    def np_tone(maps: np.ndarray) -> np.ndarray:
        g = ctone.value_gain(ctone.value(x), ctone.mean_maps(maps, 8), 8, u)
        return ctone.curve_saturation(x, maps, 8, ctone.apply_gain(x, g), u)

    def torch_tone(maps: torch.Tensor) -> torch.Tensor:
        g = tone.value_gain(tone.value(tx), tone.mean_maps(maps, 8), 8, tu)
        return tone.curve_saturation(tx, maps, 8, tone.apply_gain(tx, g), tu)

    cases: dict[str, tuple[Callable, Callable]] = {
        "box r=2 (3 planes)": (lambda: filters.box(x, 2), lambda: adjust.box(tx, 2)),
        "box r=4 (3 planes)": (lambda: filters.box(x, 4), lambda: adjust.box(tx, 4)),
        "gain_aware_denoise": (
            lambda: filters.gain_aware_denoise(y, x, 2.0, sigma, 2, cs),
            lambda: adjust.gain_aware_denoise(ty, tx, 2.0, tsig, 2, tcs),
        ),
        "value_gain + apply_gain + curve_saturation, 3 maps": (lambda: np_tone(maps3), lambda: torch_tone(tm3)),
        "value_gain + apply_gain + curve_saturation, 24 maps": (lambda: np_tone(maps24), lambda: torch_tone(tm24)),
        "apply_curves in place, 3 maps": (
            lambda: ccurves.apply_curves(x.copy(), maps3, 8, inplace=True),
            lambda: curves.apply_curves(tx.clone(), tm3, 8, inplace=True),
        ),
        "apply_curves in place, 24 maps": (
            lambda: ccurves.apply_curves(x.copy(), maps24, 8, inplace=True),
            lambda: curves.apply_curves(tx.clone(), tm24, 8, inplace=True),
        ),
        "luma_chroma_noise": (lambda: noise.luma_chroma_noise(x), lambda: adjust.luma_chroma_noise(tx)),
        "auto_strength (thumbnail)": (lambda: ctone.auto_strength(x), lambda: tone.auto_strength(tx)),
        "solve_exposure, centre metering (thumbnail)": (
            lambda: ctone.solve_exposure(thumb, thumb_mm, 8, target, "centre"),
            lambda: tone.solve_exposure(tthumb, tthumb_mm, 8, ttarget, "centre"),
        ),
    }
    best = {name: [float("inf"), float("inf")] for name in cases}
    with torch.inference_mode():
        for _ in range(args.rounds):
            for name, fns in cases.items():
                for i, fn in enumerate(fns):
                    t0 = time.perf_counter()
                    fn()
                    best[name][i] = min(best[name][i], time.perf_counter() - t0)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"{h}x{w} float32, best of {args.rounds}; {cpu}; torch {args.threads} threads, numpy {np.__version__}\n")
    print("| function | numpy (s) | torch (s) | torch / numpy |")
    print("|---|---:|---:|---:|")
    for name, (tn, tt) in best.items():
        print(f"| {name} | {tn:.3f} | {tt:.3f} | {tt / tn:.2f} |")


if __name__ == "__main__":
    main()
