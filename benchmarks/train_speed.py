"""Training throughput (images/s) at 256x256, batch 8, for the allocator and memory-format choices.

Each configuration runs in its own subprocess (allocator settings are per process), one after
the other, in one invocation; compare the ratios, not the absolute figures, on a shared machine.

    .venv/bin/python benchmarks/train_speed.py [--steps 12] [--batch 8] [--size 256]

Configurations:
  plain          default glibc allocator, NCHW tensors (what the authors' loop does)
  channels_last  default allocator, channels-last tensors
  mallopt        tuned allocator (zerodce._runtime.tune_allocator), NCHW
  zerodce        tuned allocator + channels-last: what `zerodce train` uses
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, sys, time, torch
from zerodce._runtime import tune_allocator
from zerodce.training.losses import zero_dce_loss
from zerodce.model import DCENet, init_weights
cfg = json.loads(sys.argv[1])
if cfg["mallopt"]:
    tune_allocator()
torch.manual_seed(0)
net = DCENet(); init_weights(net)
fmt = torch.channels_last if cfg["channels_last"] else torch.contiguous_format
net = net.to(memory_format=fmt)
opt = torch.optim.Adam(net.parameters(), 1e-4, weight_decay=1e-4)
x = (torch.rand(cfg["batch"], 3, cfg["size"], cfg["size"]) * 0.4).contiguous(memory_format=fmt)
def step():
    y, a = net(x)
    loss, _ = zero_dce_loss(x, y, a)
    opt.zero_grad(); loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 0.1); opt.step()
for _ in range(2):
    step()
t = time.perf_counter()
for _ in range(cfg["steps"]):
    step()
print(json.dumps({"images_per_s": cfg["steps"] * cfg["batch"] / (time.perf_counter() - t)}))
"""

CONFIGS = {
    "plain": {"mallopt": False, "channels_last": False},
    "channels_last": {"mallopt": False, "channels_last": True},
    "mallopt": {"mallopt": True, "channels_last": False},
    "zerodce": {"mallopt": True, "channels_last": True},
}


def matmul_gflops(n: int = 2048, reps: int = 20) -> float:
    """fp32 matrix-multiply rate with torch's threads: the machine's practical compute ceiling."""
    import time

    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


# DCE-Net: 79,200 multiply-adds per pixel forward; backward (input and weight gradients) about twice that.
FLOP_PER_PIXEL_STEP = 3 * 2 * 79_200


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=256)
    args = p.parse_args()
    results = {}
    for name, cfg in CONFIGS.items():
        payload = json.dumps({**cfg, "steps": args.steps, "batch": args.batch, "size": args.size})
        out = subprocess.run([sys.executable, "-c", CHILD, payload], capture_output=True, text=True, check=True)
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])["images_per_s"]
    base = results["plain"]
    rate = matmul_gflops()
    per_image = FLOP_PER_PIXEL_STEP * args.size**2 / 1e9
    print(f"training step, batch {args.batch}, {args.size}x{args.size}, {args.steps} timed steps")
    print(f"fp32 matmul {rate:.0f} GFLOP/s; a step costs ~{per_image:.1f} GFLOP per image (3x forward)")
    print(f"{'config':<14} {'images/s':>9} {'vs plain':>9} {'GFLOP/s':>8} {'of matmul':>10}")
    for name, ips in results.items():
        print(f"{name:<14} {ips:>9.2f} {ips / base:>8.2f}x {ips * per_image:>8.0f} {ips * per_image / rate:>9.0%}")


if __name__ == "__main__":
    main()
