"""Train the learned denoiser (zerodce.denoiser) on synthetic noisy/clean pairs made from SICE.

No LOL image is read. For each well-exposed SICE training image (the shipped model's own split):
1. darken it in linear light to a random input brightness (sRGB mean 0.02 .. 0.15);
2. add noise: signal-dependent Gaussian in sRGB (std sqrt(a x + b^2)), partly shared by the three
   channels (luma noise) and, in half the draws, spatially correlated by a random Gaussian blur
   (demosaicing and in-camera noise reduction leave both), then quantise to 8 bits;
3. enhance the noisy image with the shipped model at a random exposure and colour balance; the
   target is the clean dark image through the *same* curve maps and offsets, so the network learns
   to remove noise and nothing else.

Usage:
    .venv/bin/python scripts/train_denoiser.py --data ../shared/data/sice-part1 --out training/denoiser
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from zerodce.adjust import noise_sigma
from zerodce.denoiser import DenoiseNet, DenoiserConfig, denoise_features, load_denoiser, save_denoiser
from zerodce.enhance import Enhancer
from zerodce.training.data import load_resized, read_split

ROOT = Path(__file__).resolve().parents[1]


def gaussian_blur(n: torch.Tensor, s: float) -> torch.Tensor:
    """Blur each channel of (1, C, H, W) with a Gaussian of std ``s`` pixels, renormalised to unit std."""
    if s < 0.1:
        return n
    r = max(1, math.ceil(3 * s))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / s) ** 2)
    k = k / k.sum()
    c = n.shape[1]
    n = F.conv2d(F.pad(n, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    n = F.conv2d(F.pad(n, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return n / n.std()


def synthesize(clean: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A well-exposed (1, 3, H, W) image in [0, 1] -> (noisy dark, clean dark), both 8-bit quantised."""

    def u(lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=g))

    level = math.exp(u(math.log(0.02), math.log(0.15)))  # sRGB mean of the dark input
    k = (level / float(clean.mean().clamp_min(1e-3))) ** 2.2
    dark = (clean.clamp_min(0) ** 2.2 * k) ** (1 / 2.2)  # (1, 3, H, W) darkened in linear light
    b = u(0.001, 0.01)  # read-noise std (0.25 .. 2.5 code values)
    a = u(0.0, 0.0008)  # shot-noise variance per unit signal
    rho = u(0.0, 0.5)  # share of noise common to the channels
    n = torch.randn(clean.shape, generator=g)
    n = (1 - rho) * n + rho * torch.randn((1, 1, *clean.shape[-2:]), generator=g)
    n = gaussian_blur(n / n.std(), u(0.3, 1.0) if u(0, 1) < 0.5 else 0.0)  # half the draws white
    noisy = dark + n * (a * dark + b * b).sqrt()
    q = lambda z: (z.clamp(0, 1) * 255).round() / 255  # noqa: E731
    return q(noisy), q(dark)


def ssim_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 - SSIM with the evaluation's 7x7 uniform window (K1 0.01, K2 0.03, range 1), per channel."""
    mu_a, mu_b = F.avg_pool2d(a, 7, 1), F.avg_pool2d(b, 7, 1)
    var_a = F.avg_pool2d(a * a, 7, 1) - mu_a**2
    var_b = F.avg_pool2d(b * b, 7, 1) - mu_b**2
    cov = F.avg_pool2d(a * b, 7, 1) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return 1 - s.mean()


def well_exposed(files: list[Path], size: int) -> list[np.ndarray]:
    """Decoded SICE images whose mean brightness is 0.25 .. 0.7 (usable as clean scenes)."""
    out = []
    for f in tqdm(files, desc="scan", leave=False):
        a = load_resized(f, size)
        if 0.25 <= a.mean() / 255 <= 0.7:
            out.append(a)
    return out


@torch.inference_mode()
def make_pairs(images: list[np.ndarray], model: str, seed: int, draws: int) -> dict[str, torch.Tensor]:
    """(features, target) for every image, ``draws`` times: a noise draw, exposure and balance each."""
    g = torch.Generator().manual_seed(seed)
    enhancers = {b: Enhancer(model, tile=None, backend="torch", balance=b, denoise=0) for b in (0.0, 0.5, 1.0)}
    feats, targets = [], []
    for a in tqdm([a for a in images for _ in range(draws)], desc="pairs"):
        clean = torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255
        noisy, dark = synthesize(clean, g)
        enh = enhancers[(None, 0.5, 0.75)[int(torch.randint(3, (), generator=g))]]
        exposure = torch.tensor([0.35 + 0.25 * float(torch.rand((), generator=g))])
        y = enh.with_curves_of(noisy, noisy, exposure)
        t = enh.with_curves_of(dark, noisy, exposure)  # the clean image through the noisy one's curves
        sigma = noise_sigma(noisy)
        feats.append(denoise_features(y, noisy, sigma, 1.0).half())
        targets.append(t.half())
    return {"feats": torch.cat(feats), "targets": torch.cat(targets)}


def plot_log(out: Path) -> None:
    """``loss_curve.png`` from ``log.csv``: the network's L1 against the noisy input's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader((out / "log.csv").open()))
    steps = [int(r["step"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, [float(r["l1"]) for r in rows], label="denoised vs clean-through-curves")
    ax.plot(steps, [float(r["l1_noisy"]) for r in rows], label="noisy vs clean-through-curves", alpha=0.6)
    ax.set_xlabel("step")
    ax.set_ylabel("L1 (training batches)")
    ax.set_ylim(bottom=0)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "loss_curve.png", dpi=100)
    plt.close(fig)


def _portable(value: object) -> object:
    """A path inside the repository as a path relative to it (the record is committed)."""
    if isinstance(value, Path) and value.is_absolute() and value.resolve().is_relative_to(ROOT.resolve()):
        return value.resolve().relative_to(ROOT.resolve())
    return value


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="SICE Part 1 folder")
    p.add_argument("--split", type=Path, default=ROOT / "training/zerodce-sice/split.json")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--model", default="zerodce")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--patch", type=int, default=128)
    p.add_argument("--batch", type=int, default=24)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--depth", type=int, default=5)
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ssim", type=float, default=0.0, help="weight of 1 - SSIM in the loss (the rest is L1)")
    p.add_argument("--init", type=Path, default=None, help="start from these denoiser weights (fine-tuning)")
    p.add_argument("--pairs", type=Path, default=None, help="cache of the training pairs (default OUT/pairs.pt)")
    p.add_argument("--draws", type=int, default=3, help="noisy versions of each clean image")
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--pairs-only", action="store_true", help="make the training pairs, then stop")
    args = p.parse_args()
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    record = {k: str(_portable(v)) for k, v in vars(args).items()}  # no path of this machine in the record
    (args.out / "config.json").write_text(json.dumps(record, indent=1))

    cache = args.pairs or args.out / "pairs.pt"  # not committed (large); rebuilt when missing
    if cache.exists():
        pairs = torch.load(cache, weights_only=True)
    else:
        train_files, _ = read_split(args.split, args.data)
        images = well_exposed(train_files[: args.max_images], args.size)
        pairs = make_pairs(images, args.model, args.seed, args.draws)
        torch.save(pairs, cache)
    if args.pairs_only:
        return
    feats, targets = pairs["feats"], pairs["targets"]
    n, _, h, w = feats.shape
    print(f"{n} pairs of {h}x{w}", flush=True)

    net = DenoiseNet(DenoiserConfig(width=args.width, depth=args.depth, scale=args.scale))
    if args.init is not None:
        net.load_state_dict(load_denoiser(args.init).state_dict())
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.05)
    ckpt = args.out / "checkpoint.pt"
    start = 0
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=True)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start = state["step"]
    g = torch.Generator().manual_seed(args.seed + start)
    log = (args.out / "log.csv").open("a", newline="")
    writer = csv.writer(log)
    if start == 0:
        writer.writerow(["step", "l1", "l1_noisy", "seconds"])
    t0, run_l1, run_in = time.time(), 0.0, 0.0
    bar = tqdm(range(start, args.steps), initial=start, total=args.steps, desc="train")
    for step in bar:
        idx = torch.randint(n, (args.batch,), generator=g)
        i0 = int(torch.randint(h - args.patch + 1, (), generator=g))
        j0 = int(torch.randint(w - args.patch + 1, (), generator=g))
        sl = (idx, slice(None), slice(i0, i0 + args.patch), slice(j0, j0 + args.patch))
        f, t = feats[sl].float(), targets[sl].float()
        if torch.rand((), generator=g) < 0.5:
            f, t = f.flip(-1), t.flip(-1)
        out = net(f)
        l1 = (out - t).abs().mean()
        # Zhao et al. (2017)'s mix for restoration: mostly SSIM, some L1 to keep colours and means.
        loss = l1 if args.ssim == 0 else (1 - args.ssim) * l1 + args.ssim * ssim_loss(out, t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        run_l1 += float(l1.detach())
        run_in += float((f[:, :3] - t).abs().mean())
        if (step + 1) % 100 == 0:
            writer.writerow([step + 1, f"{run_l1 / 100:.6f}", f"{run_in / 100:.6f}", f"{time.time() - t0:.1f}"])
            log.flush()
            bar.set_postfix(l1=f"{run_l1 / 100:.5f}", noisy=f"{run_in / 100:.5f}")
            run_l1 = run_in = 0.0
        if (step + 1) % 500 == 0 or step + 1 == args.steps:
            state = {"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "step": step + 1}
            torch.save(state, ckpt)
            save_denoiser(net, args.out / "denoiser.safetensors", {"step": str(step + 1)})
    log.close()
    plot_log(args.out)


if __name__ == "__main__":
    main()
