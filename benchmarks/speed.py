"""Speed and memory of enhancement: one table, every row in a fresh process (so peak RSS is its own).

    .venv/bin/python benchmarks/speed.py [--quick] [--markdown docs/speed.md]

Columns: model, backend, precision, size, seconds (best of the repeats, after one warm-up; the
float (B, 3, H, W) contract for 1200x900, a uint8 photo through ``zerodce.enhance`` for the big
sizes, as a file would go), ratio to the compute floor, peak RSS of the process, and the error
against the reference PyTorch fp32 forward (max abs on [0, 1], or PSNR in dB for reduced precision).

The floor is DCE-Net's FLOPs (2 x 79,200 multiply-adds per pixel, counted from the weights) divided
by the fp32 matrix-multiply rate measured at the start of the same run (2048^2 GEMM, best of 5).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time

SIZES = {"1200x900": (900, 1200), "12MP": (3000, 4000), "48MP": (6000, 8000), "600x400": (400, 600)}
ROWS = [
    # model, backend, precision, size, options
    ("zerodce", "torch", "fp32", "1200x900", "plain"),
    ("zerodce", "auto", "fp32", "1200x900", "plain"),
    ("zerodce", "torch", "bf16", "1200x900", "plain"),
    ("zerodce", "auto", "int8", "1200x900", "plain"),
    ("zerodce", "auto", "fp32", "1200x900", "denoise"),
    ("zerodce", "auto", "fp32", "1200x900", "defaults"),
    ("zerodce", "auto", "fp32", "12MP", "plain"),
    ("zerodce", "auto", "fp32", "48MP", "plain"),
    ("fast", "torch", "fp32", "12MP", "plain"),
    ("fast", "torch", "fp32", "1200x900", "plain"),
]


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def flops_per_pixel(model: str) -> float:
    """2 x multiply-adds per output pixel of the curve-map network (full resolution for DCE-Net)."""
    from torch import nn

    from zerodce.weights import load_model

    net = load_model(model)
    macs = sum(m.weight.numel() for m in net.modules() if isinstance(m, nn.Conv2d))
    scale = getattr(net.config, "scale", 1) if net.config.arch == "dcenet++" else 1
    return 2.0 * macs / (scale * scale)


def _one(model: str, backend: str, precision: str, size: str, options: str, repeats: int) -> dict:
    """Run in a child process: time one configuration, report seconds, error, peak RSS."""
    import numpy as np
    import torch

    from zerodce._runtime import tune_allocator
    from zerodce.enhance import Enhancer, enhance

    tune_allocator()
    torch.manual_seed(0)
    h, w = SIZES[size]
    opts = {"defaults": {}, "denoise": {"balance": 0.0}, "plain": {"paper": True}}[options]
    enh = Enhancer(model, backend=backend, precision=precision, **opts)
    big = h * w > 4_000_000
    gen = np.random.default_rng(0)
    if big:
        # A dark photo-like uint8 image: smooth gradient plus noise (through the file path's code).
        # Built row block by row block: a full-size float64 temporary would dominate the peak RSS.
        img = np.empty((h, w, 3), np.uint8)
        ramp = np.linspace(5, 60, w, dtype=np.float32)[None, :, None]
        for r in range(0, h, 256):
            noise = gen.normal(0, 4, (min(256, h - r), 1, 3)).astype(np.float32)
            img[r : r + 256] = np.clip(ramp + noise, 0, 255).astype(np.uint8)
        run = lambda: enhance(img, enh)  # noqa: E731
    else:
        x = torch.from_numpy(gen.random((1, 3, h, w), dtype=np.float32) * 0.3)
        run = lambda: enh(x)  # noqa: E731
    run()
    best = math.inf
    for _ in range(1 if big and model != "fast" else repeats):
        t = time.perf_counter()
        y = run()
        best = min(best, time.perf_counter() - t)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # before the checks below
    error = ""
    if not big and options == "plain":
        ref = Enhancer(model, backend="torch", tile=None, paper=True)(x)
        if precision == "fp32":
            error = f"max |d| {float((y - ref).abs().max()):.1e}"
        else:
            mse = float(((y - ref) ** 2).mean())
            error = f"PSNR {10 * math.log10(1 / max(mse, 1e-20)):.1f} dB"
    if big and model == "zerodce":  # tiled vs untiled on a crop that spans several tiles
        from zerodce.enhance import BYTES_PER_PIXEL, auto_tile

        tile = auto_tile(h, w, BYTES_PER_PIXEL[enh.backend])
        crop = torch.from_numpy(np.ascontiguousarray(img[: 2 * tile + 50, : 2 * tile + 70])).permute(2, 0, 1)[None]
        xf = crop.float() / 255
        a = Enhancer(model, backend=backend, tile=tile, paper=True)(xf)
        b = Enhancer(model, backend=backend, tile=None, paper=True)(xf)
        error = f"tiled-untiled {float((a - b).abs().max()):.1e} (tile {tile})"
    return {"seconds": best, "rss": rss, "backend": enh.backend, "error": error}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--one", nargs=5, help=argparse.SUPPRESS)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="skip the 48 MP row")
    p.add_argument("--markdown", default=None, help="also write the table to this file")
    args = p.parse_args()
    if args.one:
        print(json.dumps(_one(*args.one, repeats=args.repeats)))
        return
    import os
    import platform

    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    gflops = matmul_gflops()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    head = f"{cpu}, {os.cpu_count()} threads, torch {torch.__version__}; fp32 matmul {gflops:.0f} GFLOP/s"
    lines = [
        head,
        "",
        "| model | backend | precision | size | options | seconds | x floor | peak RSS | error vs PyTorch fp32 |",
        "|---|---|---|---|---|---:|---:|---:|---|",
    ]
    print(head, flush=True)
    for model, backend, precision, size, options in ROWS:
        if args.quick and size == "48MP":
            continue
        cmd = [
            sys.executable,
            __file__,
            "--one",
            model,
            backend,
            precision,
            size,
            options,
            "--repeats",
            str(args.repeats),
        ]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            why = r.stderr.strip().splitlines()[-1]
            line = f"| {model} | {backend} | {precision} | {size} | {options} | failed: {why} |||"
        else:
            res = json.loads(r.stdout.strip().splitlines()[-1])
            h, w = SIZES[size]
            floor = h * w * flops_per_pixel("zerodce") / (gflops * 1e9)
            line = (
                f"| {model} | {res['backend']} | {precision} | {size} | {options} | {res['seconds']:.3f} | "
                f"{res['seconds'] / floor:.2f} | {res['rss'] / 2**30:.2f} GiB | {res['error']} |"
            )
        lines.append(line)
        print(line, flush=True)
    lines += [
        "",
        "x floor: seconds / (DCE-Net FLOPs at that size / measured matmul rate); for the fast model the",
        "floor is still the full model's, so it reads as a fraction of the full model's floor.",
    ]
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
