"""What the controls do to photos, in one run: writes docs/quality/ (tables, contact sheets, summary.json).

    .venv/bin/python scripts/quality_report.py [--shared ../shared] [--out docs/quality] [--workers 2]

1. **LOL, cross-validated.** Every candidate setting of each preset family, and the baselines'
   levels, scored on the 100 lol-val100 pairs. 5 folds (a permutation with seed 0): for each fold
   the setting with the best mean ``PSNR + 20 SSIM`` on the other four folds is scored on it; the
   table quotes only these held-out scores (100 images, each scored by a setting chosen without it).
   The shipped value of each preset is the one chosen on all 100 pairs (``chosen`` in the table).
2. **Hue fidelity** (output against its own input, :func:`zerodce.evaluation.metrics.hue_fidelity`) on
   ``real-lowlight`` (73 photos) and on well-exposed photos: lol-val100's references and the SICE
   frames of the shipped model's held-out split whose mean luma is 0.35..0.6 with under 5% clipped
   pixels. Methods: each preset, the paper's method, and the documented ``--exposure`` range (0.3,
   0.5, 0.7: darker and brighter) under every metering, every ``--balance`` (0, 0.5 in the
   default, 1) and ``--strength 0.5``, each with the other controls at their defaults.
3. **Do no harm**: PSNR of ``enhance(x)`` against ``x`` on the well-exposed photos.
4. **The noise estimate**: on clean well-exposed photos and synthetic textures (estimate in 8-bit
   levels; with grey Gaussian noise of known sigma added); the default denoiser's change on clean
   photos darkened to a quarter (gain about 4), against the Laplacian estimate it replaced.
5. **Contact sheets**: all 73 real photos and 20 well-exposed ones; input, paper, each preset.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import pickle
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FOLDS, SEED, SSIM_WEIGHT = 5, 0, 20.0
LEVELS = (0.3, 0.5, 0.7)  # the documented range of --exposure: its ends and its middle
METERINGS = ("mean", "linear", "centre")
AUTHORS = "reference/zerodce-authors-epoch99.pth"

# Candidate settings per preset family (each preset's other controls as shipped).
FAMILIES: dict[str, tuple[dict[str, float], ...]] = {
    # up to middle grey (a camera's own exposure); the guided filter at its default or stronger
    "natural": tuple({"exposure": e, "denoise": d} for e in (0.40, 0.46) for d in (2.0, 3.0)),
    "bright": tuple({"exposure": e} for e in (0.50, 0.55)),  # brighter than a camera would
    "night": ({"exposure": 0.32},),  # fixed: LOL has no night scenes to choose its level on
}
BASELINE_LEVELS = (0.40, 0.45, 0.50)  # gamma-mean targets, alone and after authors + bilateral


def _lol_methods() -> dict[str, tuple[str, dict]]:
    """label -> (kind, options) for the LOL run; kinds: preset, paper, authors, chain, gamma."""
    out: dict[str, tuple[str, dict]] = {}
    for fam, settings in FAMILIES.items():
        for opts in settings:
            label = ", ".join(f"{k}={v}" for k, v in opts.items())
            out[f"{fam}|{label}"] = ("preset", {"family": fam, **opts})
    out["paper|ours"] = ("paper", {})
    out["authors|-"] = ("authors", {})
    for lv in BASELINE_LEVELS:
        out[f"authors+bilateral+gamma-mean|level={lv}"] = ("chain", {"level": lv})
        out[f"gamma-mean|level={lv}"] = ("gamma", {"level": lv})
    return out


def _sweep_methods() -> dict[str, dict]:
    """label -> Enhancer options for the hue and do-no-harm runs."""
    out: dict[str, dict] = {"paper": {"paper": True}, "natural (default)": {}, "bright": {"preset": "bright"}}
    out["night"] = {"preset": "night"}
    for m in METERINGS:
        for lv in LEVELS:
            out[f"--exposure {lv} --metering {m}"] = {"exposure": lv, "metering": m}
    for b in (0.0, 1.0):  # 0.5 is the default's
        out[f"--balance {b}"] = {"balance": b}
    out["--strength 0.5"] = {"strength": 0.5}
    return out


SHEET_COLUMNS = ("paper", "natural (default)", "bright", "night")

_W: dict[str, object] = {}  # per-worker state


class _SharedMaps:
    """One model's curve maps, computed once per distinct input and shared by every method built on
    it (each method would otherwise run the same network on the same photo again)."""

    def __init__(self, net: object) -> None:
        from collections import OrderedDict

        self.net, self.cache = net, OrderedDict()

    def __call__(self, x):  # noqa: ANN001, ANN204 - tensors
        import hashlib

        import torch

        key = (tuple(x.shape), hashlib.blake2b(x.contiguous().numpy().tobytes(), digest_size=16).digest())
        if key not in self.cache:
            with torch.inference_mode():
                self.cache[key] = self.net.curve_maps(x.contiguous())  # type: ignore[attr-defined]
            while len(self.cache) > 4:
                self.cache.popitem(last=False)
        return self.cache[key]


def _enhancer(maps: _SharedMaps, **opts: object):  # noqa: ANN202
    from zerodce.enhance import Enhancer

    enh = Enhancer(maps.net, backend="torch", **opts)  # type: ignore[arg-type]
    enh.maps = maps  # type: ignore[assignment]
    return enh


def _init(shared: str) -> None:
    import torch

    torch.set_num_threads(1)
    from zerodce.presets import PRESETS
    from zerodce.weights import load_model

    ours, authors = _SharedMaps(load_model("zerodce")), _SharedMaps(load_model(Path(shared) / AUTHORS))
    lol: dict[str, object] = {}
    for label, (kind, opts) in _lol_methods().items():
        if kind == "preset":
            fam = opts["family"]
            preset = dataclasses.replace(PRESETS[fam], **{k: v for k, v in opts.items() if k != "family"})
            lol[label] = _enhancer(ours, preset=preset)
    lol["paper|ours"] = _enhancer(ours, paper=True)
    lol["authors|-"] = _enhancer(authors, paper=True)
    _W["lol"] = lol
    _W["sweep"] = {label: _enhancer(ours, **opts) for label, opts in _sweep_methods().items()}
    _W["denoise-off"] = _enhancer(ours, denoise=0.0)


def _read(path: str) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


def _lol_task(pair: tuple[str, str]) -> dict[str, tuple[float, float]]:
    from zerodce.enhance import enhance
    from zerodce.evaluation.baselines import bilateral, gamma_to_mean
    from zerodce.evaluation.metrics import psnr, ssim

    x, ref = _read(pair[0]), _read(pair[1])
    out: dict[str, tuple[float, float]] = {}
    authors = None
    for label, (kind, opts) in _lol_methods().items():
        if kind in ("preset", "paper", "authors"):
            y = enhance(x, _W["lol"][label])  # type: ignore[index]
            if kind == "authors":
                authors = bilateral(y)
        elif kind == "chain":
            continue  # after the authors' output is known
        else:
            y = gamma_to_mean(x, opts["level"])
        out[label] = (psnr(y, ref), ssim(y, ref))
    for label, (kind, opts) in _lol_methods().items():
        if kind == "chain":
            y = gamma_to_mean(authors, opts["level"])  # type: ignore[arg-type]
            out[label] = (psnr(y, ref), ssim(y, ref))
    return out


PSNR_CAP = 60.0  # an unchanged image (PSNR infinite) counts as 60 dB in a mean
SWEEP_SIDE = 400  # the sweep runs on photos resized to this long side (hue and do-no-harm; 25+ methods each)


def _thumb(a: np.ndarray, side: int = 224) -> np.ndarray:
    from PIL import Image

    im = Image.fromarray(a)
    im.thumbnail((side, side), Image.Resampling.LANCZOS)
    return np.asarray(im)


def _sweep_task(job: tuple[str, str, bool]) -> dict[str, object]:
    """One photo through every sweep method: hue fidelity, PSNR against the input, thumbnails."""
    from zerodce.enhance import enhance
    from zerodce.evaluation.metrics import hue_fidelity, psnr

    path, group, sheet = job
    x = _thumb(_read(path), SWEEP_SIDE)
    res: dict[str, object] = {"path": path, "group": group, "methods": {}}
    thumbs = {"input": _thumb(x)} if sheet else {}
    for label, enh in _W["sweep"].items():  # type: ignore[union-attr]
        y = enhance(x, enh)
        res["methods"][label] = {**hue_fidelity(x, y), "psnr_vs_input": psnr(y, x)}  # type: ignore[index]
        if sheet and label in SHEET_COLUMNS:
            thumbs[label] = _thumb(y)
    res["thumbs"] = thumbs
    return res


def _noise_task(path: str) -> dict[str, float]:
    """The noise estimate on a clean photo, with known noise added, and the denoiser's change."""
    import torch

    from zerodce.adjust import chroma_noise_level, gain_aware_denoise, noise_level, noise_sigma

    x8 = _read(path)
    x = torch.from_numpy(x8.astype(np.float32) / 255).permute(2, 0, 1)[None]
    g = torch.Generator().manual_seed(0)
    out = {"clean": float(noise_level(x)) * 255, "clean_laplacian": float(noise_sigma(x)) * 255}
    for s in (5.0, 10.0, 20.0):
        noisy = x + s / 255 * torch.randn(1, 1, *x.shape[-2:], generator=g)  # grey noise: luma sigma = s
        est = float(noise_level(noisy)) * 255
        out[f"sigma{int(s)}"] = est / s
        # The photo's own noise is there too: variances add, so the added noise as estimated is this.
        out[f"sigma{int(s)}_added"] = math.sqrt(max(est * est - out["clean"] ** 2, 0.0)) / s
    # A clean photo darkened to a quarter and enhanced by the defaults (gain about 4): what the default
    # denoiser changes, with this estimate and with the Laplacian one it replaced.
    dark = x * 0.25
    enh = _W["sweep"]["natural (default)"]  # type: ignore[index]
    y = _W["denoise-off"](dark)  # type: ignore[operator]
    with torch.inference_mode():
        new = gain_aware_denoise(y.clone(), dark, enh.denoise, noise_level(dark), chroma_sigma=chroma_noise_level(dark))
        old = gain_aware_denoise(y.clone(), dark, enh.denoise, noise_sigma(dark))
    out["change_levels"] = float((new - y).abs().mean()) * 255
    out["change_levels_laplacian"] = float((old - y).abs().mean()) * 255
    return out


def _well_exposed_sice(shared: Path) -> list[Path]:
    """SICE frames of the shipped model's held-out split with mean luma 0.35..0.6 and < 5% clipped."""
    from PIL import Image

    split = json.loads((REPO / "training/zerodce-sice/split.json").read_text())
    keep = []
    for name in sorted(split["test"], key=lambda n: int(Path(n).stem) if Path(n).stem.isdigit() else 0):
        with Image.open(shared / "data/sice-part1" / name) as im:
            im.draft("RGB", (128, 128))
            a = np.asarray(im.convert("RGB").resize((128, 128)), dtype=np.float64) / 255
        y = a @ np.array([0.299, 0.587, 0.114])
        if 0.35 <= y.mean() <= 0.6 and (a >= 254 / 255).any(axis=-1).mean() < 0.05:
            keep.append(shared / "data/sice-part1" / name)
    return keep


def _cv(scores: dict[str, np.ndarray], labels: list[str]) -> dict[str, object]:
    """5-fold selection among ``labels`` by mean PSNR + 20 SSIM; held-out per-image scores."""
    n = next(iter(scores.values())).shape[0]
    perm = np.random.default_rng(SEED).permutation(n)
    folds = np.array_split(perm, FOLDS)
    held = np.zeros((n, 2))
    picks = []
    for k in range(FOLDS):
        train = np.concatenate([folds[j] for j in range(FOLDS) if j != k])
        crit = {lb: scores[lb][train, 0].mean() + SSIM_WEIGHT * scores[lb][train, 1].mean() for lb in labels}
        best = max(labels, key=lambda lb: crit[lb])
        picks.append(best)
        held[folds[k]] = scores[best][folds[k]]
    chosen = max(labels, key=lambda lb: scores[lb][:, 0].mean() + SSIM_WEIGHT * scores[lb][:, 1].mean())
    return {
        "psnr": float(held[:, 0].mean()),
        "ssim": float(held[:, 1].mean()),
        "fold_picks": picks,
        "chosen": chosen,
        "chosen_in_sample": [float(v) for v in scores[chosen].mean(0)],
    }


def _sheet(rows: list[dict], columns: tuple[str, ...], path: Path, title: str) -> None:
    from PIL import Image, ImageDraw

    cell, pad, head, label_w = 224, 4, 28, 0
    w = len(columns) * (cell + pad) + pad
    heights = [max(t.shape[0] for t in r["thumbs"].values()) for r in rows]
    h = head + sum(hh + 18 + pad for hh in heights) + pad
    sheet = Image.new("RGB", (w, h + label_w), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((pad, 4), title, fill="black")
    for j, c in enumerate(columns):
        draw.text((pad + j * (cell + pad), 16), c, fill="black")
    y = head
    for r, hh in zip(rows, heights, strict=True):
        draw.text((pad, y), Path(r["path"]).parent.name + "/" + Path(r["path"]).name, fill="black")
        for j, c in enumerate(columns):
            t = r["thumbs"][c]
            sheet.paste(Image.fromarray(t), (pad + j * (cell + pad) + (cell - t.shape[1]) // 2, y + 14))
        y += hh + 18 + pad
    sheet.save(path, quality=82, optimize=True)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("ZERODCE_SHARED", REPO.parent / "shared")))
    ap.add_argument("--out", type=Path, default=REPO / "docs/quality")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--limit", type=int, default=None, help="only N images per set (a quick check, not the report)")
    ap.add_argument(
        "--raw",
        type=Path,
        default=Path("/tmp/zerodce_quality_raw.pkl"),
        help="where the per-image results are kept, so that --reuse can rewrite the report from them",
    )
    ap.add_argument("--reuse", action="store_true", help="rewrite the report from --raw without enhancing again")
    ap.add_argument(
        "--reuse-lol",
        action="store_true",
        help="take the LOL scores from --raw (they do not depend on the shipped presets) and run the rest again",
    )
    args = ap.parse_args()
    from tqdm import tqdm

    shared: Path = args.shared
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    lim = slice(None, args.limit)
    lows = sorted((shared / "data/lol-val100/low").iterdir())[lim]
    pairs = [(str(p), str(shared / "data/lol-val100/high" / p.name)) for p in lows]
    real = sorted((shared / "data/real-lowlight").glob("*/*"))[lim]
    lol_refs = sorted((shared / "data/lol-val100/high").iterdir())[lim]
    sice = _well_exposed_sice(shared)[lim]
    jobs = [(str(p), "real", True) for p in real]
    jobs += [(str(p), "lol-high", i < 10) for i, p in enumerate(lol_refs)]
    jobs += [(str(p), "sice-well", i < 10) for i, p in enumerate(sice)]
    if args.reuse:
        with open(args.raw, "rb") as f:
            lol_rows, sweep, noise, seconds = pickle.load(f)
    else:
        lol_rows = None
        if args.reuse_lol:
            with open(args.raw, "rb") as f:
                lol_rows, _, _, lol_seconds = pickle.load(f)
        with ProcessPoolExecutor(args.workers, initializer=_init, initargs=(str(shared),)) as pool:
            if lol_rows is None:
                lol_rows = list(tqdm(pool.map(_lol_task, pairs), total=len(pairs), desc="LOL pairs", file=sys.stderr))
            clean = [str(p) for p in lol_refs[:20] + sice[:20]]
            noise = list(tqdm(pool.map(_noise_task, clean), total=len(clean), desc="noise", file=sys.stderr))
            sweep = list(tqdm(pool.map(_sweep_task, jobs), total=len(jobs), desc="photos", file=sys.stderr))
        seconds = round(time.time() - t0)
        if args.reuse_lol:  # the LOL part's time is not known apart: say what the total is made of
            seconds = f"{seconds} s (the LOL scores from an earlier run that took {lol_seconds} s in all)"
        with open(args.raw, "wb") as f:
            pickle.dump((lol_rows, sweep, noise, seconds), f)
    summary: dict[str, object] = {"seconds": seconds, "cpu": _cpu()}

    # 1. LOL, cross-validated
    labels = list(lol_rows[0])
    scores = {lb: np.array([r[lb] for r in lol_rows]) for lb in labels}
    fams = {lb.split("|")[0] for lb in labels}
    lol = {f: _cv(scores, [lb for lb in labels if lb.split("|")[0] == f]) for f in sorted(fams)}
    summary["lol"] = lol
    order = ["natural", "bright", "night", "paper", "authors", "authors+bilateral+gamma-mean", "gamma-mean"]
    names = {"natural": "natural (the default)", "paper": "paper's method, our model", "authors": "authors' model"}
    rows = []
    for f in order:
        r = lol[f]
        picks = "; ".join(p.split("|")[1] for p in r["fold_picks"])  # type: ignore[union-attr]
        chosen = r["chosen"].split("|")[1]  # type: ignore[union-attr]
        rows.append([names.get(f, f), f"{r['psnr']:.2f}", f"{r['ssim']:.4f}", chosen, picks])
    lol_md = _table(["method", "PSNR (held-out)", "SSIM (held-out)", "chosen on all 100", "chosen per fold"], rows)

    # 2. hue fidelity and 3. do no harm
    groups = {"real": "real-lowlight (73)", "lol-high": "lol-val100 references", "sice-well": "SICE well-exposed"}
    hue: dict[str, dict[str, dict[str, float]]] = {}
    for g in groups:
        mine = [s for s in sweep if s["group"] == g]
        hue[g] = {}
        for label in _sweep_methods():
            fc = np.array([s["methods"][label]["false_colour"] for s in mine])
            p99 = np.array([s["methods"][label]["hue_p99"] for s in mine])
            ps = np.array([s["methods"][label]["psnr_vs_input"] for s in mine])
            mse = 255.0**2 * 10 ** (-np.minimum(ps, 1e6) / 10)  # an identical image: MSE 0
            worst = mine[int(fc.argmax())]["path"]
            hue[g][label] = {
                "n": len(mine),
                "false_colour_mean": float(fc.mean()),
                "false_colour_worst": float(fc.max()),
                "worst_image": str(Path(worst).relative_to(shared / "data")),
                "hue_p99_mean": float(p99.mean()),
                "psnr_vs_input": float(np.minimum(ps, PSNR_CAP).mean()),
                "psnr_pooled": float(10 * np.log10(255.0**2 / max(mse.mean(), 1e-12))),
                "unchanged": float((ps >= PSNR_CAP).mean()),
            }
    summary["hue"] = hue
    hue_rows = []
    for label in _sweep_methods():
        cells = [label]
        for g in groups:
            h = hue[g][label]
            cells.append(f"{100 * h['false_colour_mean']:.2f}% / {100 * h['false_colour_worst']:.2f}%")
        cells.append(hue["real"][label]["worst_image"])
        hue_rows.append(cells)
    hue_md = _table(["method", *(f"{v}: false colour mean / worst" for v in groups.values()), "worst real photo"],
                    hue_rows)  # fmt: skip
    harm_rows = [
        [label, *(f"{hue[g][label]['psnr_vs_input']:.2f} / {hue[g][label]['psnr_pooled']:.2f} / "
                  f"{100 * hue[g][label]['unchanged']:.0f}%" for g in ("lol-high", "sice-well"))]
        for label in ("paper", "natural (default)", "bright", "night", "--strength 0.5")
    ]  # fmt: skip
    harm_md = _table(["method", "lol-val100 references: mean PSNR / pooled PSNR (dB) / unchanged",
                      "SICE well-exposed: the same"], harm_rows)  # fmt: skip

    # 4. noise
    keys = list(noise[0])
    nz = {k: np.array([r[k] for r in noise]) for k in keys}
    summary["noise"] = {k: {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max())}
                        for k, v in nz.items()}  # fmt: skip
    noise_md = _table(
        ["quantity (over 40 clean photos)", "mean", "min", "max"],
        [[k, f"{v.mean():.3f}", f"{v.min():.3f}", f"{v.max():.3f}"] for k, v in nz.items()],
    )

    # 5. contact sheets
    sheets = []
    cols = ("input", *SHEET_COLUMNS)
    real_rows = [s for s in sweep if s["group"] == "real"]
    for i in range(0, len(real_rows), 12):
        p = args.out / f"real-{i // 12 + 1:02d}.jpg"
        _sheet(real_rows[i : i + 12], cols, p, f"real-lowlight photos {i + 1}..{min(i + 12, len(real_rows))}")
        sheets.append(p.name)
    well_rows = [s for s in sweep if s["group"] != "real" and s["thumbs"]]
    for i in range(0, len(well_rows), 10):
        p = args.out / f"well-exposed-{i // 10 + 1:02d}.jpg"
        _sheet(well_rows[i : i + 10], cols, p, "well-exposed photos (lol-val100 references, SICE)")
        sheets.append(p.name)
    summary["sheets"] = sheets
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    md = [
        "# Quality report",
        "",
        f"Written by `.venv/bin/python scripts/quality_report.py` in {_secs(summary['seconds'])} on {summary['cpu']}.",
        "",
        "## LOL (lol-val100), 5-fold cross-validated: held-out scores only",
        "",
        lol_md,
        "## Hue fidelity: false colour (pixels turned by more than 30 degrees), mean and worst photo",
        "",
        hue_md,
        "## Do no harm: well-exposed photos through each method, PSNR against themselves",
        "",
        f"Mean PSNR counts an image at {PSNR_CAP:.0f} dB or more (an unchanged one: infinite) as {PSNR_CAP:.0f} dB;",
        "pooled PSNR is that of the mean squared error over the set (no cap: the worst images dominate it);",
        f"unchanged: the share at {PSNR_CAP:.0f} dB or more. Photos resized to {SWEEP_SIDE} px on the long side",
        "for this sweep and the hue table.",
        "",
        harm_md,
        "## The noise estimate (8-bit levels; sigmaN: estimate / N with grey noise of N levels added)",
        "",
        noise_md,
        "## Contact sheets",
        "",
        *(f"- [{s}]({s})" for s in sheets),
        "",
    ]
    (args.out / "README.md").write_text("\n".join(md))
    print("\n".join(md))


def _secs(v: object) -> str:
    return f"{v} s" if isinstance(v, int) else str(v)


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return f"{os.cpu_count()} cores"


if __name__ == "__main__":
    main()
