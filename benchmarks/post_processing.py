"""Where the light runtime's time goes: each stage of an enhancement timed alone, in one process.

    python benchmarks/post_processing.py [--repeats 5]

For the full model at 1200x900 and the fast model at 12 MP (``examples/lime1.jpg`` resized, with
Gaussian noise of 4 levels so that the denoiser has work), the best of ``--repeats`` of: the whole
enhancement, plain (``paper``) and with the defaults, as ``benchmarks/runtime.py`` measures them; then
each stage of the defaults alone: the conversions, the networks, the controls on the thumbnail, the
noise estimate (which runs in a thread beside the rest), the tone chain and the denoiser. Run it in an
install with numba (the stages are its kernels). Stages overlap in a real run (the noise estimate
beside the networks), so they do not add up to the whole exactly.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from zerodce.core import kernels, noise, resample
from zerodce.enhance import pipeline
from zerodce.options import Options
from zerodce.runtime.session import BAND_ROWS as BAND

ROOT = Path(__file__).resolve().parents[1]


def _best(fn: Callable[[], object], repeats: int) -> float:
    best = 1e9
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def stages(model: str, w: int, h: int, repeats: int) -> list[tuple[str, float]]:
    img = np.asarray(Image.open(ROOT / "examples" / "lime1.jpg").convert("RGB").resize((w, h)), dtype=np.float32)
    img = np.clip(img + np.random.default_rng(0).normal(0, 4, img.shape), 0, 255).astype(np.uint8)
    x = img.transpose(2, 0, 1)[None]
    dflt, plain = pipeline(Options(model=model)), pipeline(Options(model=model, paper=True))
    dflt.run_integer(x, 255), plain.run_integer(x, 255)  # warm: numba's kernels loaded or compiled
    xf = kernels.to_float(x, 255)
    ctl = dflt._controls(xf)
    ctl.resolve()
    if model == "fast":
        cols, hp = dflt._small_cols(xf)
        maps = resample.upsample_rows(cols, hp, 0, h)
    else:
        maps = dflt._maps(xf)
    y = kernels.tone(xf, maps, dflt.config.n_iter, ctl.u, ctl.cast)
    out = np.empty((1, h, w, 3), np.uint8)
    scratch = xf.copy()
    rows: list[tuple[str, Callable[[], object]]] = [
        ("plain (the paper's curves), whole", lambda: plain.run_integer(x, 255)),
        ("defaults, whole", lambda: dflt.run_integer(x, 255)),
        ("8-bit samples to float planes", lambda: kernels.to_float(x, 255)),
    ]
    if model == "fast":
        rows += [
            ("the small map: downscale, network, width upsampling", lambda: dflt._small_cols(xf)),
            (
                "its rows upsampled, band by band",
                lambda: [resample.upsample_rows(cols, hp, r, min(r + BAND, h)) for r in range(0, h, BAND)],
            ),  # fmt: skip
        ]
    else:
        rows.append(("the network (full-size maps)", lambda: dflt._maps(xf)))
    rows += [
        # in place on one copy (repeated calls brighten it further: the same arithmetic per call)
        ("the curves alone (plain)", lambda: kernels.curves(scratch, maps, dflt.config.n_iter)),
        ("float planes to 8-bit samples", lambda: kernels.to_integer(y, 255, out, slice(0, h), slice(0, w))),
        ("controls: thumbnail, its network, exposure, cast", lambda: dflt._controls(xf, with_noise=False)),
        ("noise estimate (a thread beside the rest)", lambda: noise.luma_chroma_noise(xf)),
        ("tone chain (value curve, saturation, cast)", lambda: kernels.tone(xf, maps, 8, ctl.u, ctl.cast)),
        (
            "gain-aware denoiser",
            lambda: kernels.denoise(y, xf, dflt.denoise, ctl.sigma, dflt.denoise_radius, ctl.sigma_c),
        ),  # fmt: skip
    ]
    return [(name, _best(fn, repeats)) for name, fn in rows]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    if not kernels.enabled():
        raise SystemExit("numba is needed (pip install '.[fast]'): the stages timed are its kernels")
    cpu = platform.processor()
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    print(f"CPU: {cpu}, {len(os.sched_getaffinity(0))} cores\n")
    for model, w, h in (("zerodce", 1200, 900), ("fast", 4000, 3000)):
        print(f"| {model} at {w}x{h} | ms |\n|---|---:|")
        for name, t in stages(model, w, h, args.repeats):
            print(f"| {name} | {t * 1000:.0f} |")
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
