"""Command-line interface: ``zerodce train | enhance | convert | evaluate``.

Thin by design: parse arguments, call library functions, draw progress bars, print summaries.
"""

from __future__ import annotations

import argparse
import glob
import logging
import sys
from pathlib import Path

__all__ = ["main"]

log = logging.getLogger("zerodce")


def _bar(total: int, desc: str):  # noqa: ANN202 - tqdm instance
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", dynamic_ncols=True, file=sys.stderr)


def _cmd_train(args: argparse.Namespace) -> int:
    import torch

    from ._runtime import tune_allocator
    from .model import ModelConfig
    from .train import TrainConfig, train

    tune_allocator()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = ModelConfig(arch="dcenet++", scale=args.scale) if args.arch == "dcenet++" else ModelConfig()
    cfg = TrainConfig(
        data=Path(args.data),
        out=Path(args.out),
        epochs=args.epochs,
        batch_size=args.batch_size,
        size=args.size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        grad_clip=args.grad_clip,
        seed=args.seed,
        held_out=args.held_out,
        model=model,
        resume=args.resume,
        max_steps=args.max_steps,
    )
    path = train(cfg, progress=None if args.quiet else _bar)
    print(f"weights: {path}")
    return 0


def _expand_inputs(items: list[str], recursive: bool) -> list[tuple[Path, Path]]:
    """(file, path relative to the output folder) for files, folders and glob patterns."""
    from .data import IMAGE_EXTENSIONS

    found: list[tuple[Path, Path]] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            pattern = "**/*" if recursive else "*"
            for f in sorted(p.glob(pattern)):
                if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS | {".webp", ".gif"}:
                    found.append((f, f.relative_to(p)))
        elif p.exists():
            found.append((p, Path(p.name)))
        elif glob.has_magic(item):
            for f in sorted(glob.glob(item, recursive=recursive)):
                if Path(f).is_file():
                    found.append((Path(f), Path(Path(f).name)))
        else:
            found.append((p, Path(p.name)))  # reported as a failure, the batch goes on
    return found


def _cmd_enhance(args: argparse.Namespace) -> int:
    from ._runtime import tune_allocator
    from .enhance import Enhancer, enhance
    from .io import ImageReadError, read_image, write_image
    from .weights import WeightsError

    tune_allocator()
    try:
        enhancer = Enhancer(args.model, args.device, tile=args.tile)
    except (WeightsError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    jobs = _expand_inputs(args.inputs, args.recursive)
    if not jobs:
        print("error: no input images", file=sys.stderr)
        return 2
    out_dir = Path(args.output)
    failures: list[str] = []
    done = skipped = 0
    from tqdm import tqdm

    for src, rel in tqdm(jobs, desc="enhance", unit="img", file=sys.stderr, disable=args.quiet or len(jobs) < 2):
        dst = out_dir / rel.parent / f"{rel.stem}{args.suffix}{rel.suffix}"
        try:
            if dst.resolve() == src.resolve() and not args.overwrite:
                raise ValueError("output would overwrite the input (use --suffix or --overwrite)")
            if dst.exists() and not args.overwrite:
                if args.skip_existing:
                    skipped += 1
                    continue
                raise FileExistsError(f"{dst} exists (use --overwrite or --skip-existing)")
            im = read_image(src)
            write_image(enhance(im, enhancer), dst, source=im, quality=args.quality)
            done += 1
        except (ImageReadError, OSError, ValueError, TypeError, RuntimeError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if str(src) not in msg:
                msg = f"{src}: {msg}"
            failures.append(msg)
            tqdm.write(f"error: {msg}", file=sys.stderr)
    summary = f"enhanced {done}, failed {len(failures)}" + (f", skipped {skipped}" if skipped else "")
    print(f"{summary} -> {out_dir}")
    for msg in failures:
        print(f"  failed: {msg}")
    return 1 if failures else 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from .weights import WeightsError, convert_checkpoint

    try:
        path = convert_checkpoint(args.src, args.dst, scale=args.scale)
    except (WeightsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import main_evaluate

    return main_evaluate(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zerodce", description="Low-light image enhancement with Zero-DCE.")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model on a folder of images (no references needed)")
    t.add_argument("--data", required=True, help="folder of training images (jpg, png, bmp, tif)")
    t.add_argument("--out", required=True, help="run folder: split, log, checkpoints, weights")
    t.add_argument("--epochs", type=int, default=6)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--size", type=int, default=256, help="training images are resized to SIZE x SIZE")
    t.add_argument("--lr", type=float, default=1e-4)
    t.add_argument("--weight-decay", type=float, default=1e-4)
    t.add_argument("--grad-clip", type=float, default=0.1, help="gradient-norm clipping")
    t.add_argument("--seed", type=int, default=0, help="seeds the split, the initial weights and the batch order")
    t.add_argument("--held-out", type=float, default=0.2, help="fraction held out for the per-epoch test loss")
    t.add_argument("--arch", choices=["dcenet", "dcenet++"], default="dcenet")
    t.add_argument("--scale", type=int, default=12, help="dcenet++ only: downscale factor for curve estimation")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    t.add_argument("--max-steps", type=int, default=None, help=argparse.SUPPRESS)
    t.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("enhance", help="enhance image files, folders or glob patterns")
    e.add_argument("inputs", nargs="+", help="files, folders or glob patterns")
    e.add_argument("-o", "--output", required=True, help="output folder")
    e.add_argument("--model", default="zerodce", help="bundled model name or weights path (default: zerodce)")
    e.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    e.add_argument("--recursive", action="store_true", help="descend into sub-folders (mirrored in the output)")
    e.add_argument("--suffix", default="", help="appended to each output file's stem, e.g. _enhanced")
    e.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    e.add_argument("--skip-existing", action="store_true", help="skip inputs whose output exists (resume a batch)")
    e.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality (default 95)")
    e.add_argument(
        "--tile",
        type=lambda s: None if s == "none" else (s if s == "auto" else int(s)),
        default="auto",
        help="tile side for large images: auto (default), none, or pixels",
    )
    e.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=_cmd_enhance)

    c = sub.add_parser("convert", help="convert a checkpoint (the authors' .pth) to zerodce .safetensors")
    c.add_argument("src")
    c.add_argument("dst")
    c.add_argument("--scale", type=int, default=None, help="Zero-DCE++ downscale factor to record (default 12)")
    c.set_defaults(func=_cmd_convert)

    from .evaluate import add_evaluate_parser

    add_evaluate_parser(sub, _cmd_evaluate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    return int(args.func(args))
