"""What the controls, presets and denoisers add to the full model's time, measured interleaved.

    .venv/bin/python benchmarks/denoise_cost.py [--rounds 9] [--markdown docs/denoise_cost.md]

The speed table (``benchmarks/speed.py``) times each configuration in its own process, minutes
apart; on a shared, noisy machine the ratio of two such rows moves by tens of percent from run to
run. Here every configuration runs once per round, in turn, in one process on the same 1200x900
image (the speed table's float input), so each round's ratios see the same machine state; the
table gives the median over rounds of each configuration's time and of its ratio to the plain
model in the same round.
"""

from __future__ import annotations

import argparse
import statistics
import time

CONFIGS = {
    "plain (the paper's method)": {"paper": True},
    "natural, denoiser off": {"denoise": 0.0},
    "natural (the default, guided filter)": {},
    "bright (learned denoiser)": {"preset": "bright"},
    "night (learned denoiser)": {"preset": "night"},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--markdown", default=None, help="also write the table to this file")
    args = p.parse_args()

    import os
    import platform

    import numpy as np
    import torch
    from tqdm import tqdm

    from zerodce._runtime import tune_allocator
    from zerodce.enhance import Enhancer

    tune_allocator()
    torch.set_num_threads(os.cpu_count() or 1)
    x = torch.from_numpy(np.random.default_rng(0).random((1, 3, 900, 1200), dtype=np.float32) * 0.3)
    enhancers = {name: Enhancer("zerodce", **opts) for name, opts in CONFIGS.items()}
    for enh in enhancers.values():
        enh(x)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for _ in tqdm(range(args.rounds), desc="rounds"):
        for name, enh in enhancers.items():
            t = time.perf_counter()
            enh(x)
            times[name].append(time.perf_counter() - t)
    plain = next(iter(CONFIGS))
    backend = enhancers[plain].backend
    lines = [
        f"{platform.machine()}, {os.cpu_count()} threads, torch {torch.__version__}, backend {backend}, fp32, "
        f"1200x900, {args.rounds} interleaved rounds",
        "",
        "| options | median seconds | median ratio to plain (same round) | added |",
        "|---|---:|---:|---:|",
    ]
    for name, ts in times.items():
        ratio = statistics.median(t / p for t, p in zip(ts, times[plain], strict=True))
        lines.append(f"| {name} | {statistics.median(ts):.3f} | {ratio:.3f} | {100 * (ratio - 1):+.0f}% |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
