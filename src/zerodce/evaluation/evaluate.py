"""Evaluation harness: paired (PSNR, SSIM, MAE) and unpaired (no-reference) metrics for any
set of methods, measured in one run, with CSV, JSON, Markdown and a PNG grid as the report.

Metric definitions: :mod:`zerodce.evaluation.metrics`. Method specs: :mod:`zerodce.evaluation.baselines`.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from .baselines import DEFAULT_BASELINES, Method, parse_method
from .metrics import FULL_REFERENCE, SSIM_VARIANTS, hue_fidelity, no_reference_stats

__all__ = ["pair_folders", "evaluate_paired", "evaluate_unpaired", "summarise", "write_report", "default_methods"]

log = logging.getLogger(__name__)


def pair_folders(low: Path, high: Path) -> list[tuple[Path, Path]]:
    """Pair files by name; a clear error when the folders hold different names."""
    from ..files.io import list_images

    lows = {p.name: p for p in list_images(low, recursive=False)}
    highs = {p.name: p for p in list_images(high, recursive=False)}
    only_low, only_high = sorted(set(lows) - set(highs)), sorted(set(highs) - set(lows))
    if only_low or only_high:
        raise ValueError(
            f"folders do not pair by name: {len(only_low)} only in {low} {only_low[:3]}, "
            f"{len(only_high)} only in {high} {only_high[:3]}"
        )
    if not lows:
        raise ValueError(f"{low}: no images")
    return [(lows[n], highs[n]) for n in sorted(lows)]


def read_rgb8(path: Path) -> np.ndarray:
    """Decode a file to uint8 RGB (H, W, 3), upright."""
    from ..files.io import read_image

    im = read_image(path)
    if im.mode.startswith("I;16") or im.mode == "I":
        arr = np.asarray(im).astype(np.float64) / 65535.0
        return np.repeat(np.clip(np.rint(arr * 255), 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    return np.asarray(im.convert("RGB"))


def _check(out: np.ndarray, ref_shape: tuple[int, ...], label: str) -> np.ndarray:
    if out.shape != ref_shape or out.dtype != np.uint8:
        raise ValueError(f"method {label} returned {out.dtype} {out.shape}, expected uint8 {ref_shape}")
    return out


def evaluate_paired(
    pairs: Sequence[tuple[Path, Path]],
    methods: Mapping[str, Method],
    ssim_variants: Sequence[str] = (),
    progress: Callable[[int], object] | None = None,
) -> list[dict[str, object]]:
    """One row per (image, method): full-reference metrics plus the output's no-reference stats."""
    rows: list[dict[str, object]] = []
    for low, high in pairs:
        x, ref = read_rgb8(low), read_rgb8(high)
        if x.shape != ref.shape:
            raise ValueError(f"{low.name}: input {x.shape} and reference {ref.shape} differ in size")
        for label, method in methods.items():
            y = _check(method(x), x.shape, label)
            row: dict[str, object] = {"image": low.name, "method": label}
            row.update({k: f(y, ref) for k, f in FULL_REFERENCE.items()})
            row.update({f"ssim_{v}": SSIM_VARIANTS[v](y, ref) for v in ssim_variants})
            row.update(no_reference_stats(y))
            row.update(hue_fidelity(x, y))
            rows.append(row)
            if progress:
                progress(1)
    return rows


def evaluate_unpaired(
    files: Sequence[Path],
    methods: Mapping[str, Method],
    progress: Callable[[int], object] | None = None,
    root: Path | None = None,
) -> list[dict[str, object]]:
    """One row per (image, method): no-reference statistics of the output (images named relative to root)."""
    rows: list[dict[str, object]] = []
    for f in files:
        x = read_rgb8(f)
        name = str(f.relative_to(root)) if root else f.name
        for label, method in methods.items():
            y = _check(method(x), x.shape, label)
            rows.append({"image": name, "method": label, **no_reference_stats(y), **hue_fidelity(x, y)})
            if progress:
                progress(1)
    return rows


WORST = ("hue_p99", "false_colour")  # summarised by their worst image as well as their mean


def summarise(rows: Sequence[Mapping[str, object]]) -> dict[str, dict[str, float]]:
    """Mean of every numeric column per method, in first-seen method order, plus the worst image's
    hue rotation and false colour (``hue_p99_worst``, ``false_colour_worst``).

    Example:
        >>> rows = [{"method": "m", "psnr": 20.0, "false_colour": 0.0}]
        >>> summarise(rows + [{"method": "m", "psnr": 22.0, "false_colour": 0.03}])
        {'m': {'psnr': 21.0, 'false_colour': 0.015, 'false_colour_worst': 0.03, 'n': 2.0}}
    """
    out: dict[str, dict[str, float]] = {}
    for label in dict.fromkeys(str(r["method"]) for r in rows):
        mine = [r for r in rows if r["method"] == label]
        keys = [k for k, v in mine[0].items() if isinstance(v, float)]
        out[label] = {k: float(np.mean([float(r[k]) for r in mine])) for k in keys}  # type: ignore[arg-type]
        worst = {f"{k}_worst": float(max(float(r[k]) for r in mine)) for k in WORST if k in keys}  # type: ignore[arg-type]
        out[label].update(worst)
        out[label]["n"] = float(len(mine))
    return out


def markdown_table(summary: Mapping[str, Mapping[str, float]]) -> str:
    """A Markdown table of the summary (one row per method)."""
    cols = [k for k in next(iter(summary.values())) if k != "n"]
    fmt = {"psnr": "{:.2f}", "mae": "{:.2f}", "colourfulness": "{:.1f}", "noise": "{:.2f}"}
    lines = ["| method | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for label, s in summary.items():
        cells = [fmt.get(k, "{:.4f}").format(s[k]) if math.isfinite(s[k]) else str(s[k]) for k in cols]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _column_title(label: str, width: int = 30) -> str:
    """A method label wrapped at its commas and chain steps to fit a grid column (model paths by name).

    Example:
        >>> print(_column_title("model:zerodce,metering=centre,exposure=0.47,balance=0.5,denoiser=learned"))
        zerodce, metering=centre,
        exposure=0.47, balance=0.5,
        denoiser=learned
    """
    steps = [Path(step.removeprefix("model:")).name if step.startswith("model:") else step for step in label.split("+")]
    return "\n".join(textwrap.wrap(" +".join(steps).replace(",", ", "), width, break_on_hyphens=False))


def _grid_png(inputs: Sequence[Path], methods: Mapping[str, Method], crop: int = 160) -> bytes:
    """Before/after centre crops for each shown image, with luma histograms under each crop."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["input", *methods]
    n, m = len(inputs), len(labels)
    fig, axes = plt.subplots(
        2 * n, m, figsize=(2.2 * m, 3.6 * n), dpi=110, squeeze=False, gridspec_kw={"height_ratios": [3, 1] * n}
    )
    for i, path in enumerate(inputs):
        x = read_rgb8(path)
        outs = [x] + [fn(x) for fn in methods.values()]
        h, w = x.shape[:2]
        c = min(crop, h, w)
        y0, x0 = (h - c) // 2, (w - c) // 2
        for j, (label, y) in enumerate(zip(labels, outs, strict=True)):
            ax = axes[2 * i, j]
            ax.imshow(y[y0 : y0 + c, x0 : x0 + c], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(_column_title(label), fontsize=7)
            if j == 0:
                ax.set_ylabel(path.name, fontsize=8)
            hax = axes[2 * i + 1, j]
            lum = 0.299 * y[..., 0] + 0.587 * y[..., 1] + 0.114 * y[..., 2]
            hax.hist(lum.ravel(), bins=64, range=(0, 255), color="0.3")
            hax.set_yticks([])
            hax.set_xticks([0, 128, 255])
            hax.tick_params(labelsize=6)
    return _png_bytes(fig)


def _png_bytes(fig) -> bytes:  # noqa: ANN001 - a matplotlib figure
    import matplotlib.pyplot as plt
    from PIL import Image

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", facecolor="white")
    plt.close(fig)
    buf.seek(0)
    with Image.open(buf) as im:  # opaque figure: RGB, a quarter smaller than matplotlib's RGBA
        out = io.BytesIO()
        im.convert("RGB").save(out, format="PNG", optimize=True)
    return out.getvalue()


def exposure_series(summary: Mapping[str, Mapping[str, float]]) -> dict[str, list[tuple[float, float]]]:
    """Requested exposure vs achieved mean brightness, per method family (labels minus ``exposure=``).

    Example:
        >>> s = {"model:m,exposure=0.5": {"brightness": 0.49}, "model:m,exposure=0.4": {"brightness": 0.41}}
        >>> exposure_series(s)
        {'model:m': [(0.4, 0.41), (0.5, 0.49)]}
    """
    series: dict[str, list[tuple[float, float]]] = {}
    for label, row in summary.items():
        parts = label.split(",")
        level = [p for p in parts if p.startswith("exposure=")]
        if len(level) != 1 or "brightness" not in row:
            continue
        family = ",".join(p for p in parts if not p.startswith("exposure="))
        series.setdefault(family, []).append((float(level[0].split("=", 1)[1]), float(row["brightness"])))
    return {k: sorted(v) for k, v in series.items() if len(v) >= 2}


def _exposure_png(series: Mapping[str, list[tuple[float, float]]], title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=100)
    lo = min(v for pts in series.values() for pair in pts for v in pair)
    hi = max(v for pts in series.values() for pair in pts for v in pair)
    ax.plot([lo, hi], [lo, hi], color="0.7", lw=1, ls="--", label="achieved = requested")
    for family, pts in series.items():
        ax.plot(*zip(*pts, strict=True), "o-", label=family)
    ax.set_xlabel("requested exposure (--exposure)")
    ax.set_ylabel("achieved mean brightness (BT.601 luma)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _png_bytes(fig)


def write_report(
    out: Path,
    rows: Sequence[Mapping[str, object]],
    summary: Mapping[str, Mapping[str, float]],
    header: str = "",
    show: Sequence[Path] = (),
    methods: Mapping[str, Method] | None = None,
) -> list[Path]:
    """Write per_image.csv, summary.json, summary.md, grid.png when images are shown, and
    exposure.png (requested vs achieved brightness) when a method was run at several exposures."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "per_image.csv", out / "summary.json", out / "summary.md"]
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(written[0], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    written[1].write_text(json.dumps(summary, indent=1))
    written[2].write_text((header + "\n\n" if header else "") + markdown_table(summary))
    series = exposure_series(summary)
    if (show and methods) or series:
        try:
            import matplotlib  # noqa: F401 - the figures' only optional dependency
        except ImportError:
            log.warning("the report's figures (grid.png, exposure.png) need the 'eval' extra (matplotlib): "
                        "pip install 'zerodce[eval]'; the tables are written")  # fmt: skip
            return written
    if show and methods:
        (out / "grid.png").write_bytes(_grid_png(show, methods))
        written.append(out / "grid.png")
    if series:
        (out / "exposure.png").write_bytes(_exposure_png(series, header))
        written.append(out / "exposure.png")
    return written


def default_methods() -> list[str]:
    """Every classical baseline and every bundled model."""
    from ..options import BUNDLED_MODELS

    return [*DEFAULT_BASELINES, *(f"model:{name}" for name in BUNDLED_MODELS)]


HELP = """\
Paired (--low and --high, files paired by name): PSNR, SSIM, MAE per image and as means, plus
the outputs' no-reference statistics. Unpaired (--low only, sub-folders included):
no-reference statistics.

  psnr   10 log10(255^2 / MSE) on 8-bit RGB, MSE over all pixels and channels
  ssim   skimage.metrics.structural_similarity(a, b, channel_axis=2, data_range=255):
         7x7 uniform window, K1=0.01, K2=0.03; the project's bars use this one
  ssim_gaussian  --ssim-variant gaussian: Gaussian window sigma 1.5, population covariance
  ssim_luma      --ssim-variant luma: default SSIM on BT.601 luma
  mae    mean |a - b| on 0..255
  brightness, contrast  mean and std of BT.601 luma / 255
  colourfulness         Hasler & Suesstrunk 2003;  noise  Immerkaer 1996 sigma of luma (0..255)
  clipped / crushed     fraction of pixels with a channel at 255 / all channels at 0
  cast                  max - min of the channel means / 255 (colour cast)
  hue_median, hue_p99   hue rotation of the output against its input, degrees, over pixels with HSV
                        saturation >= 0.25 and value >= 0.08 in both; false_colour: share rotated
                        > 30 degrees; the summary adds each method's worst image (_worst)

Methods: identity, gamma:G, gamma-mean:L, he, clahe, bilateral, model:NAME_OR_PATH with options
as key=value, the names, values and rules of zerodce enhance's (model:NAME,paper or
model:NAME,preset=P,strength=S,exposure=E,metering=M,balance=B,denoise=D,denoiser=N, also
backend=, precision=, tile=, device=), and chains A+B+C such as the post-filter
baseline model:AUTHORS.pth,paper+bilateral+gamma-mean:0.45 (default: all baselines and every
bundled model with its defaults; --model PATH adds model:PATH).
"""


def add_evaluate_parser(
    sub: argparse._SubParsersAction,
    func: Callable,
    parents: Sequence[argparse.ArgumentParser] = (),
    model_type: Callable[[str], str] = str,
) -> None:
    """The ``evaluate`` command; ``model_type`` checks each ``--model`` (the CLI's bundled-name check)."""
    e = sub.add_parser(
        "evaluate",
        help="metrics for baselines and models, paired or unpaired",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=list(parents),
    )
    e.add_argument("--low", "--input", dest="low", required=True, help="folder of low-light inputs")
    e.add_argument("--high", default=None, help="folder of references with the same file names (paired mode)")
    e.add_argument("--method", action="append", default=None,
                   help="method spec, see below (repeatable; default: every baseline and bundled model, "
                   "none with --model)")  # fmt: skip
    e.add_argument("--model", action="append", default=[], type=model_type,
                   help="bundled model name or weights path (repeatable)")  # fmt: skip
    e.add_argument("--ssim-variant", action="append", default=[], choices=sorted(SSIM_VARIANTS),
                   help="also report SSIM computed this way (repeatable; paired mode)")  # fmt: skip
    e.add_argument("--report", default=None, help="folder for per_image.csv, summary.json, summary.md, grid.png")
    e.add_argument("--show", action="append", default=None,
                   help="file name to show in grid.png (repeatable; default: the first two)")  # fmt: skip
    e.add_argument("--limit", type=int, default=None, help="only the first N images (sorted by name)")
    e.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ... (default: %(default)s)")
    e.set_defaults(func=func)


def main_evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..files.io import list_images

    specs = list(args.method or ([] if args.model else default_methods())) + [f"model:{m}" for m in args.model]
    if args.show and not args.report:
        log.warning("--show: no effect without --report (it chooses the images of grid.png)")
    if args.ssim_variant and not args.high:
        log.warning("--ssim-variant: no effect without --high (SSIM needs references)")
    try:
        methods = {spec: parse_method(spec, args.device) for spec in dict.fromkeys(specs)}
        low = Path(args.low)
        if args.high:
            pairs = pair_folders(low, Path(args.high))[: args.limit]
            files = [p for p, _ in pairs]
        else:
            files = list_images(low, recursive=True)[: args.limit]
            if not files:
                raise ValueError(f"{low}: no images")
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with tqdm(total=len(files) * len(methods), desc="evaluate", unit="img", file=sys.stderr) as bar:
        if args.high:
            rows = evaluate_paired(pairs, methods, args.ssim_variant, bar.update)
        else:
            rows = evaluate_unpaired(files, methods, bar.update, root=low)
    summary = summarise(rows)
    mode = f"paired: {args.low} vs {args.high}" if args.high else f"unpaired: {args.low}"
    header = f"{len(files)} images, {mode}"
    print(header)
    print(markdown_table(summary), end="")
    if args.report:
        by_name = {**{f.name: f for f in files}, **{str(f.relative_to(low)): f for f in files}}
        show = [by_name[n] for n in (args.show or []) if n in by_name] or files[:2]
        for path in write_report(Path(args.report), rows, summary, header, show, methods):
            print(f"wrote {path}")
    return 0
