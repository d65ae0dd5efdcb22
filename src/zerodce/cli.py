"""Command-line interface: ``zerodce train | enhance | convert | evaluate``.

Thin by design: parse arguments, call library functions, draw progress bars, print summaries.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import ModelConfig
    from .train import TrainConfig

__all__ = ["main"]

log = logging.getLogger("zerodce")


def _bar(total: int, desc: str):  # noqa: ANN202 - tqdm instance
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", dynamic_ncols=True, file=sys.stderr)


def _cmd_train(args: argparse.Namespace) -> int:
    import torch

    from ._runtime import tune_allocator
    from .model import ModelConfig
    from .train import train

    if args.nproc and args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        return _relaunch_with_torchrun(args.nproc)
    tune_allocator()
    if args.threads:
        torch.set_num_threads(args.threads)
    plus = args.arch == "dcenet++"
    model = ModelConfig(arch="dcenet++", scale=args.scale) if plus else ModelConfig()
    smooth = args.smoothness_weight if args.smoothness_weight is not None else (1600.0 if plus else 200.0)
    try:
        cfg = _train_config(args, model, smooth)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        path = train(cfg, progress=None if args.quiet else _bar)
    except OSError as exc:
        if exc.filename is None and exc.strerror:  # a failed write (disk full): name the run, not a temporary
            print(f"error: {cfg.out}: cannot write the run ({exc.strerror}); its last checkpoint is intact: "
                  "free some space and rerun with --resume", file=sys.stderr)  # fmt: skip
        else:
            print(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
        return 1
    except ValueError as exc:  # unreadable data, a checkpoint or config that does not match (WeightsError too)
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"weights: {path}")
    return 0


def _train_config(args: argparse.Namespace, model: ModelConfig, smooth: float) -> TrainConfig:
    """The run's configuration; a ValueError names the first bad argument."""
    from .losses import LossWeights
    from .train import TrainConfig
    from .weights import resolve_model

    return TrainConfig(
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
        device=args.device,
        loss=LossWeights(smoothness=smooth),
        train_scales=tuple(int(v) for v in args.train_scales.split(",")) if args.train_scales else (),
        teacher=resolve_model(args.teacher) if args.teacher else None,
        overwrite=args.overwrite,
    )


def _without_nproc(argv: list[str]) -> list[str]:
    """``argv`` minus ``--nproc N`` / ``--nproc=N``.

    Example:
        >>> _without_nproc(["train", "--nproc", "2", "--data", "d", "--nproc=3", "--epochs", "1"])
        ['train', '--data', 'd', '--epochs', '1']
    """
    rest: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True  # and its value
        elif not a.startswith("--nproc="):
            rest.append(a)
    return rest


def _relaunch_with_torchrun(nproc: int) -> int:
    """``zerodce train --nproc N ...`` == ``torchrun --nproc-per-node N -m zerodce train ...``."""
    import subprocess

    rest = _without_nproc(sys.argv[1:])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "zerodce", *rest]  # fmt: skip
    return subprocess.call(cmd)


def _enhancer_options(args: argparse.Namespace) -> dict:
    return {
        "tile": args.tile,
        "preset": args.preset,
        "paper": args.paper,
        "strength": args.strength,
        "exposure": args.exposure,
        "balance": args.balance,
        "denoise": args.denoise,
        "denoiser": args.denoiser,
        "metering": args.metering,
    }


def _unit(name: str, open_ends: bool = False):  # noqa: ANN202 - an argparse type
    def parse(value: str) -> float:
        try:
            v = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {value!r}") from None
        if not (0.0 < v < 1.0 if open_ends else 0.0 <= v <= 1.0):
            raise argparse.ArgumentTypeError(f"{name} must be in {'(0, 1)' if open_ends else '[0, 1]'}, got {value}")
        return v

    return parse


def _quality(value: str) -> int:
    """--quality: an integer in 1..100, as the service accepts."""
    try:
        q = int(value)
    except ValueError:
        q = 0
    if not 1 <= q <= 100:
        raise argparse.ArgumentTypeError(f"must be an integer in 1..100, got {value!r}")
    return q


def add_adjust_arguments(p: argparse.ArgumentParser) -> None:
    """--preset, --strength, --exposure, --metering, --balance, --denoise, --denoiser (every command that enhances)."""
    from .presets import DEFAULT_PRESET, DENOISERS, LEARNED_STRENGTH, METERINGS, PRESETS

    lines = "; ".join(f"{p.name}: {p.help}" for p in PRESETS.values())
    p.add_argument("--preset", choices=list(PRESETS), default=None,
                   help=f"named settings (default {DEFAULT_PRESET}). {lines}")  # fmt: skip
    p.add_argument("--paper", action="store_true",
                   help="the paper's Zero-DCE exactly (per-channel curves, nothing added; may shift hue), "
                   "for comparison; takes no other control")  # fmt: skip
    p.add_argument(
        "--strength",
        type=_unit("--strength"),
        default=None,
        help="0..1: how much of the effect to apply (0 = the input, 1 = full; default 1)",
    )
    p.add_argument(
        "--exposure",
        type=_unit("--exposure", open_ends=True),
        default=None,
        help="target brightness of the output, e.g. 0.3 (darker) .. 0.7 (brighter), as --metering measures "
        "it, applied to every photo (the presets instead leave well-exposed photos alone); default: the preset's",
    )
    p.add_argument(
        "--metering",
        choices=METERINGS,
        default=None,
        help="what the exposure level measures: mean = mean brightness; linear / centre = linear-light "
        "luminance over the frame / centre-weighted, as a camera meters (0.46 = middle grey); default: the preset's",
    )
    p.add_argument(
        "--balance",
        type=_unit("--balance"),
        default=None,
        help="share of the colour cast to remove, 0 (keep the photo's colours) .. 1; bounded, so coloured "
        "light stays its colour; default: the preset's",
    )
    p.add_argument(
        "--denoise",
        type=float,
        default=None,
        help=f"denoising strength, 0 = off; default: the preset's, or {LEARNED_STRENGTH:g} when --denoiser "
        "names the other denoiser",
    )
    p.add_argument(
        "--denoiser",
        choices=DENOISERS,
        default=None,
        help="guided: the fast classical filter; learned: the bundled denoising network (better on noisy "
        "photos, slower); default: the preset's",
    )


def _device_error(device: str) -> str | None:
    """Why ``--device`` cannot be used here, in one line (None when it can)."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        return f"unknown --device {device!r}; use cpu, cuda or cuda:N"
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            return "no CUDA device; use --device cpu"
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            return f"no CUDA device {dev.index} ({torch.cuda.device_count()} present); use --device cuda:0 or cpu"
    return None


def _run_enhance(args: argparse.Namespace, jobs: list, opts: dict, results: list) -> int | None:
    """Enhance ``jobs``, appending ``(job, status, error)`` to ``results`` as each file ends (so
    that an interrupted batch can say how many were done); an exit code when it cannot start."""
    from tqdm import tqdm

    from ._runtime import tune_allocator
    from .batch import claim_error, enhance_file, error_line
    from .enhance import Enhancer
    from .weights import WeightsError

    if args.ray is not None:
        from .cluster import enhance_on_ray

        # Ray rebuilds each Job from (src, dst): the planned claims are enforced here.
        results += [(j, "failed", error_line(j, claim_error(j))) for j in jobs if j.clash is not None]
        results += enhance_on_ray(
            [j for j in jobs if j.clash is None],
            args.model,
            address=args.ray or None,
            workers=args.workers,
            enhancer_options=_enhancer_options(args),
            **opts,
        )
    else:
        tune_allocator()
        try:
            enhancer = Enhancer(args.model, args.device, **_enhancer_options(args))
        except (WeightsError, ValueError, RuntimeError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        from .batch import enhance_files
        from .video import VIDEO_EXTENSIONS

        videos = [j for j in jobs if j.src.suffix.lower() in VIDEO_EXTENSIONS]
        images = [j for j in jobs if j.src.suffix.lower() not in VIDEO_EXTENSIONS]
        from tqdm.contrib.logging import logging_redirect_tqdm

        with (
            logging_redirect_tqdm(),
            tqdm(  # warnings as whole lines above the bar
                total=len(images), desc="enhance", unit="img", file=sys.stderr, disable=args.quiet or len(images) < 2
            ) as bar,
        ):

            def done(job, status, msg) -> None:  # noqa: ANN001
                bar.update(1)
                results.append((job, status, msg))
                if status == "failed":
                    tqdm.write(f"error: {msg}", file=sys.stderr)

            enhance_files(images, enhancer, on_done=done, **opts)
        for job in videos:
            try:
                with tqdm(desc=job.src.name, unit="frame", file=sys.stderr, disable=args.quiet) as fb:
                    status = enhance_file(job, enhancer, smooth=args.smooth, progress=fb.update, **opts)
                results.append((job, status, ""))
            except (OSError, ValueError, TypeError, RuntimeError) as exc:
                results.append((job, "failed", error_line(job, exc)))
                tqdm.write(f"error: {results[-1][2]}", file=sys.stderr)
    return None


def _cmd_enhance(args: argparse.Namespace) -> int:
    from .batch import plan_jobs

    out_dir = Path(args.output)
    try:
        jobs = plan_jobs(args.inputs, out_dir, args.suffix, args.recursive, args.format)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not jobs:
        print("error: no input images", file=sys.stderr)
        return 2
    error = _device_error(args.device)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from ._atomic import remove_stale_parts

    folders: dict[Path, set[str]] = {}
    for job in jobs:
        folders.setdefault(job.dst.parent, set()).add(job.dst.name)
    for folder, names in folders.items():  # only our temporaries, only where this run writes
        for stale in remove_stale_parts(folder, names):
            log.info("removed %s, left by an interrupted run", stale)
    opts = {"overwrite": args.overwrite, "skip_existing": args.skip_existing, "quality": args.quality}
    results: list = []
    try:
        code = _run_enhance(args, jobs, opts, results)
    except KeyboardInterrupt:
        done = sum(status == "done" for _, status, _ in results)
        print(f"interrupted; {done} done, rerun with --skip-existing", file=sys.stderr)
        return 130
    if code is not None:
        return code
    order = {id(j): k for k, j in enumerate(jobs)}
    results.sort(key=lambda r: order[id(r[0])])
    failures = [msg for _, status, msg in results if status == "failed"]
    done = sum(status == "done" for _, status, _ in results)
    skipped = sum(status == "skipped" for _, status, _ in results)
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


def _cmd_serve(args: argparse.Namespace) -> int:
    from .service import Limits, serve

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s: reachable from the network; put it behind a proxy with TLS", args.host)
    limits = Limits(
        max_upload_bytes=args.max_upload_mb * 2**20,
        max_pixels=int(args.max_megapixels * 1e6),
        max_jobs=args.jobs,
        max_queue=args.queue,
        timeout_s=args.timeout,
        header_timeout_s=args.header_timeout,
        idle_timeout_s=args.idle_timeout,
    )
    serve(args.host, args.port, args.model, limits)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import ExportError, export_onnx
    from .weights import WeightsError, load_model

    try:
        net = load_model(args.model)
        path = export_onnx(net, args.output, "maps" if args.maps else "image")
    except (WeightsError, ExportError, OSError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path} (checked: onnx.checker and onnxruntime vs PyTorch within 1e-4)")
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
    t.add_argument(
        "--scale",
        type=int,
        default=12,
        help="dcenet++ only: downscale factor recorded for inference (training runs at full size)",
    )
    t.add_argument(
        "--smoothness-weight",
        type=float,
        default=None,
        help="illumination-smoothness loss weight (default: 200 for dcenet, 1600 for dcenet++ as the authors)",
    )
    t.add_argument(
        "--train-scales",
        default=None,
        help="dcenet++ only: comma-separated curve-map scales cycled one per step during training (e.g. 2,4,8)",
    )
    t.add_argument(
        "--teacher",
        default=None,
        help="distil: fit this trained model's outputs (L1) instead of the non-reference losses",
    )
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    t.add_argument(
        "--overwrite",
        action="store_true",
        help="write into --out even if it holds other files (a non-empty folder that is not a run is refused)",
    )
    t.add_argument("--max-steps", type=int, default=None, help=argparse.SUPPRESS)
    t.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    t.add_argument("--device", default="cpu", help="cpu or cuda (cuda:LOCAL_RANK under torchrun)")
    t.add_argument(
        "--nproc",
        type=int,
        default=None,
        help="train with N DistributedDataParallel processes on this machine (runs torchrun)",
    )
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("enhance", help="enhance images and videos: files, folders or glob patterns")
    e.add_argument("inputs", nargs="+", help="image or video files, folders or glob patterns")
    e.add_argument("-o", "--output", required=True, help="output folder")
    e.add_argument("--model", default="zerodce", help="bundled model name or weights path (default: zerodce)")
    e.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    e.add_argument("--recursive", action="store_true", help="descend into sub-folders (mirrored in the output)")
    e.add_argument("--suffix", default="", help="appended to each output file's stem, e.g. _enhanced")
    e.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    e.add_argument("--skip-existing", action="store_true", help="skip inputs whose output exists (resume a batch)")
    e.add_argument("--quality", type=_quality, default=95, help="JPEG/WebP/HEIC quality, 1..100 (default 95)")
    e.add_argument(
        "--format",
        default=None,
        help="output image format: jpeg, png, tiff, webp, bmp (default: the input's); videos keep theirs",
    )
    e.add_argument(
        "--smooth",
        type=float,
        default=0.8,
        help="video: temporal smoothing of the curves' brightness, 0 (per frame) .. 0.99 (default 0.8)",
    )
    e.add_argument(
        "--tile",
        type=lambda s: None if s == "none" else (s if s == "auto" else int(s)),
        default="auto",
        help="tile side for large images: auto (default), none, or pixels",
    )
    e.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="run on a Ray cluster (needs zerodce[ray]); no ADDRESS starts a local one",
    )
    e.add_argument("--workers", type=int, default=2, help="with --ray: model-holding actors (default 2)")
    add_adjust_arguments(e)
    e.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=_cmd_enhance)

    c = sub.add_parser("convert", help="convert a checkpoint (the authors' .pth) to zerodce .safetensors")
    c.add_argument("src")
    c.add_argument("dst")
    c.add_argument("--scale", type=int, default=None, help="Zero-DCE++ downscale factor to record (default 12)")
    c.set_defaults(func=_cmd_convert)

    s = sub.add_parser("serve", help="web page and HTTP API (needs zerodce[serve])")
    s.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--model", default="zerodce", help="default model")
    s.add_argument("--max-upload-mb", type=int, default=40, help="largest upload accepted (413 above)")
    s.add_argument("--max-megapixels", type=float, default=40.0, help="largest image accepted (413 above)")
    s.add_argument("--jobs", type=int, default=1, help="enhancements running at once")
    s.add_argument("--queue", type=int, default=8, help="requests waiting beyond --jobs before 503")
    s.add_argument("--timeout", type=float, default=120.0, help="seconds per request before 504 (the work stops)")
    s.add_argument("--header-timeout", type=float, default=10.0, help="seconds a client has to send its headers")
    s.add_argument("--idle-timeout", type=float, default=30.0, help="seconds an upload may stall before it is dropped")
    s.set_defaults(func=_cmd_serve)

    x = sub.add_parser("export", help="export a model to ONNX (dynamic size, curves inside), checked")
    x.add_argument("-o", "--output", required=True, help="the .onnx file")
    x.add_argument("--model", default="zerodce", help="bundled name or weights path")
    x.add_argument("--format", default="onnx", choices=["onnx"])
    x.add_argument("--maps", action="store_true", help="export the curve-map graph instead of the image graph")
    x.set_defaults(func=_cmd_export)

    from .evaluate import add_evaluate_parser

    add_evaluate_parser(sub, _cmd_evaluate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    try:
        return int(args.func(args))
    except KeyboardInterrupt:  # before or after a command's own handling: one line, no traceback
        print("interrupted", file=sys.stderr)
        return 130
