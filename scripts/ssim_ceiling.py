"""What limits SSIM on lol-val100: tone or noise? A diagnostic, never a setting.

    .venv/bin/python scripts/ssim_ceiling.py --data ../shared/data/lol-val100

For the best documented setting (``--exposure 0.45 --balance 0.5 --denoise 2.5``) it scores the
output as is, after an *oracle* tone map: each channel remapped by histogram matching to the
reference (it uses the reference, so it is only an upper bound on what any global tone curve could
give), and with an *oracle colour*: the output's luma with the reference's chroma (how much of the
loss is colour a dark input cannot carry). If SSIM stays low with the oracle tone, what remains is
structure: residual noise and the detail the denoiser removed. Also scores OpenCV's non-local
means on the undenoised output, a stronger classical denoiser than a guided filter (at several
times its cost), for comparison, and whether the references' brightness follows the inputs' (if it
did, an exposure rule could use it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def match_histograms(src: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per channel: each source level mapped to the mean reference value at its ranks."""
    out = np.empty_like(src)
    for c in range(src.shape[2]):
        s, r = src[..., c].ravel(), np.sort(ref[..., c].ravel())
        matched = np.empty(s.size)
        matched[np.argsort(s, kind="stable")] = r
        total = np.bincount(s, weights=matched, minlength=256)
        count = np.bincount(s, minlength=256)
        table = np.where(count > 0, total / np.maximum(count, 1), 0.0)
        out[..., c] = np.clip(table[src[..., c]].round(), 0, 255).astype(np.uint8)
    return out


def with_colour_of(src: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``src``'s luma (BT.601 YCrCb, 8-bit) with ``ref``'s two chroma channels."""
    import cv2

    ycc = cv2.cvtColor(src, cv2.COLOR_RGB2YCrCb)
    ycc[..., 1:] = cv2.cvtColor(ref, cv2.COLOR_RGB2YCrCb)[..., 1:]
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)


def main() -> None:
    import cv2

    from zerodce.enhance import Enhancer, enhance
    from zerodce.evaluate import pair_folders, read_rgb8
    from zerodce.metrics import luma, psnr, ssim

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/lol-val100")
    p.add_argument("--every", type=int, default=1, help="use every n-th pair")
    args = p.parse_args()

    pairs = pair_folders(Path(args.data) / "low", Path(args.data) / "high")[:: args.every]
    best = Enhancer("zerodce", exposure=0.45, balance=0.5, denoise=2.5)
    plain = Enhancer("zerodce", exposure=0.45, balance=0.5, denoise=0.0)  # the same setting, no denoiser
    rows: dict[str, list[tuple[float, float]]] = {}
    brightness = []  # (input, reference) mean luma: could an exposure rule predict the reference's?
    for low, high in pairs:
        x, ref = read_rgb8(low), read_rgb8(high)
        brightness.append((luma(x).mean() / 255, luma(ref).mean() / 255))
        ours, raw = enhance(x, best), enhance(x, plain)
        nlm = cv2.cvtColor(
            cv2.fastNlMeansDenoisingColored(cv2.cvtColor(raw, cv2.COLOR_RGB2BGR), None, 14, 14, 7, 21),
            cv2.COLOR_BGR2RGB,
        )
        for name, out in (
            ("exposure 0.45, balance 0.5, denoise 2.5", ours),
            ("  + oracle tone (histogram matched to the reference)", match_histograms(ours, ref)),
            ("  + oracle colour (the reference's chroma, our luma)", with_colour_of(ours, ref)),
            ("exposure 0.45, balance 0.5, no denoiser", raw),
            ("  + OpenCV non-local means (h 14)", nlm),
        ):
            rows.setdefault(name, []).append((psnr(out, ref), ssim(out, ref)))
    print(f"{len(pairs)} pairs from {args.data}")
    print(f"{'output':56s} {'PSNR':>6s} {'SSIM':>7s}")
    for name, values in rows.items():
        a = np.array(values)
        print(f"{name:56s} {a[:, 0].mean():6.2f} {a[:, 1].mean():7.4f}")
    b = np.array(brightness)
    print(f"mean brightness: inputs {b[:, 0].mean():.3f}, references {b[:, 1].mean():.3f} (std {b[:, 1].std():.3f});")
    print(f"correlation between an input's and its reference's: {np.corrcoef(b[:, 0], b[:, 1])[0, 1]:.2f}")


if __name__ == "__main__":
    main()
