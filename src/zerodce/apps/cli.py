"""Command-line interface: ``zerodce enhance | serve | models | export | train | convert | evaluate``.

Thin by design: parse arguments, call library functions, draw progress bars, print summaries.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from ..model import ModelConfig
    from ..options import Options
    from ..training.train import TrainConfig

__all__ = ["main", "run"]

log = logging.getLogger("zerodce")

# What --quality, --smooth and --workers mean when not given (None tells "given" from "default":
# an option given where it has no effect is a warning).
QUALITY, SMOOTH, WORKERS = 95, 0.8, 2


def _bar(total: int, desc: str):  # noqa: ANN202 - tqdm instance
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", dynamic_ncols=True, file=sys.stderr)


def _cmd_train(args: argparse.Namespace) -> int:
    import torch

    from .._runtime import tune_allocator
    from ..model import ModelConfig
    from ..training.train import train

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
    from ..training.losses import LossWeights
    from ..training.train import TrainConfig
    from ..weights import resolve_model

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


def options_from_args(args: argparse.Namespace) -> Options:
    """The one :class:`~zerodce.options.Options` of a command's arguments (``enhance``, ``serve``).

    Every argument named like an Options field is passed as given (a string, or ``--paper``'s bool);
    :meth:`Options.parse <zerodce.options.Options.parse>` converts them and applies every rule, so the
    CLI refuses what the service and ``evaluate`` refuse, with the same message.

    Raises:
        ValueError: a value or a combination the options model refuses (one line).
    """
    import dataclasses

    from ..options import Options

    names = [f.name for f in dataclasses.fields(Options)]
    return Options.parse({n: getattr(args, n) for n in names if hasattr(args, n)})


def _option(name: str):  # noqa: ANN202 - an argparse type
    """An argparse type for the option ``name``: checked as :class:`~zerodce.options.Options` checks it
    (same rule, same message), returned as given for :func:`options_from_args` to parse."""

    def check(value: str) -> str:
        from ..options import Options

        try:
            Options.parse({name: value})
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return value

    check.__name__ = name  # argparse's "invalid <name> value" names the option, not "check"
    return check


def _smooth(value: str) -> float:
    """--smooth: a number in [0, 1), as :func:`zerodce.apps.video.enhance_video` accepts."""
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {value!r}") from None
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return v


def _quality(value: str) -> int:
    """--quality: an integer in 1..100, as the service accepts."""
    try:
        q = int(value)
    except ValueError:
        q = 0
    if not 1 <= q <= 100:
        raise argparse.ArgumentTypeError(f"must be an integer in 1..100, got {value!r}")
    return q


def model_name(value: str) -> str:
    """--model: a bundled model's name or a weights file; a name that is neither is a usage error
    listing the bundled ones (a path to a missing file is left to the loader, which names it)."""
    from difflib import get_close_matches

    from ..options import BUNDLED_MODELS

    path = Path(value)
    looks_like_path = path.suffix in (".safetensors", ".pth", ".pt") or "/" in value or os.sep in value
    if value in BUNDLED_MODELS or looks_like_path or path.exists():
        return value
    near = get_close_matches(value, BUNDLED_MODELS, n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    names = ", ".join(BUNDLED_MODELS)
    raise argparse.ArgumentTypeError(f"unknown model {value!r}{hint}; choose {names}, or a path to a .safetensors file")


def add_adjust_arguments(p: argparse.ArgumentParser) -> None:
    """--preset, --strength, --exposure, --metering, --balance, --denoise, --denoiser (every command that enhances)."""
    from ..presets import DEFAULT_DENOISE, DEFAULT_PRESET, DENOISERS, LEARNED_STRENGTH, METERINGS, PRESETS

    def by_preset(field: str) -> str:
        """Each preset's value of ``field``, said once when they agree."""
        values = {q.name: getattr(q, field) for q in PRESETS.values()}
        fmt = {k: f"{v:g}" if isinstance(v, float) else str(v) for k, v in values.items()}
        if len(set(fmt.values())) == 1:
            return f"{next(iter(fmt.values()))} in every preset"
        return ", ".join(f"{k} {v}" for k, v in fmt.items())

    lines = "; ".join(f"{q.name}: {q.help}" for q in PRESETS.values())
    p.add_argument("--preset", choices=list(PRESETS), default=None,
                   help=f"named settings (default: {DEFAULT_PRESET}). {lines}")  # fmt: skip
    p.add_argument("--paper", action="store_true",
                   help="the paper's Zero-DCE exactly (per-channel curves, nothing added; may shift hue), "
                   "for comparison; takes no other control")  # fmt: skip
    p.add_argument(
        "--strength",
        type=_option("strength"),
        default=None,
        help="0..1: how much of the effect to apply (0 = the input, 1 = full; default: 1)",
    )
    p.add_argument(
        "--exposure",
        type=_option("exposure"),
        default=None,
        help="target brightness of the output, e.g. 0.3 (darker) .. 0.7 (brighter), as --metering measures "
        "it, applied to every photo (the presets instead leave well-exposed photos alone); default: the "
        f"preset's ({by_preset('exposure')})",
    )
    p.add_argument(
        "--metering",
        choices=METERINGS,
        default=None,
        help="what the exposure level measures: mean = mean brightness; linear / centre = linear-light "
        "luminance over the frame / centre-weighted, as a camera meters (0.46 = middle grey); default: the "
        f"preset's ({by_preset('metering')})",
    )
    p.add_argument(
        "--balance",
        type=_option("balance"),
        default=None,
        help="share of the colour cast to remove, 0 (keep the photo's colours) .. 1; bounded, so coloured "
        f"light stays its colour; default: the preset's ({by_preset('balance')})",
    )
    # The Enhancer's rule: the preset's strength with the preset's denoiser, else the chosen denoiser's own.
    own = {"guided": DEFAULT_DENOISE, "learned": LEARNED_STRENGTH}
    if len(set(own.values())) == 1:
        other = f"{DEFAULT_DENOISE:g}"
    else:
        other = " / ".join(f"{own[d]:g} ({d})" for d in DENOISERS)
    p.add_argument(
        "--denoise",
        type=_option("denoise"),
        default=None,
        help=f"denoising strength 0..10, 0 = off; default: the preset's ({by_preset('denoise')}), or {other} "
        "when --denoiser is not the preset's",
    )
    p.add_argument(
        "--denoiser",
        choices=DENOISERS,
        default=None,
        help="guided: the fast classical filter; learned: the bundled denoising network (better on noisy "
        f"photos, slower); default: the preset's ({by_preset('denoiser')})",
    )


def add_session_arguments(p: argparse.ArgumentParser) -> None:
    """--device, --backend, --precision, --tile: how the model runs (the options' session), for
    every command that loads one (``enhance``, ``serve``)."""
    from ..presets import BACKENDS, PRECISIONS

    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ... (default: %(default)s)")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="where the curve maps are computed: auto = onnxruntime on CPU when installed, else "
                   "PyTorch (default: %(default)s)")  # fmt: skip
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="bf16: PyTorch autocast; int8: the bundled quantised graph of the zerodce model, "
                   "onnxruntime on CPU (default: %(default)s)")  # fmt: skip
    p.add_argument("--tile", type=_option("tile"), default="auto",
                   help="tile side for large images: auto (from the memory available), none (or 0), or pixels, 16 "
                   "or more; tiled results equal whole-image ones (default: %(default)s)")  # fmt: skip


def _device_error(device: str) -> str | None:
    """Why ``--device`` cannot be used here, in one line (None when it can)."""
    from ..enhance import torch_installed
    from ..errors import needs_torch

    if not torch_installed():
        return needs_torch(f"--device {device}")
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


def _output_folder_error(out: Path) -> str | None:
    """Why ``-o out`` cannot hold the outputs, in one line (None when it can; it is created then)."""
    if out.exists() and not out.is_dir():
        return f"-o {out}: exists and is not a folder"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"-o {out}: cannot create the folder ({exc.strerror or exc})"
    if not os.access(out, os.W_OK | os.X_OK):
        return f"-o {out}: the folder is not writable"
    return None


def _run_enhance(args: argparse.Namespace, options: Options, jobs: list, opts: dict, results: list) -> int | None:
    """Enhance ``jobs``, appending ``(job, status, error)`` to ``results`` as each file ends (so
    that an interrupted batch can say how many were done); an exit code when it cannot start."""
    from tqdm import tqdm

    from .._runtime import tune_allocator
    from ..enhance import pipeline
    from ..errors import WeightsError
    from ..files.batch import claim_error, enhance_file, error_line

    smooth = SMOOTH if args.smooth is None else args.smooth
    if args.ray is not None:
        from .cluster import enhance_on_ray

        # Ray rebuilds each Job from (src, dst): the planned claims are enforced here.
        results += [(j, "failed", error_line(j, claim_error(j))) for j in jobs if j.clash is not None]
        results += enhance_on_ray(
            [j for j in jobs if j.clash is None],
            options,
            address=args.ray or None,
            workers=WORKERS if args.workers is None else args.workers,
            smooth=smooth,
            **opts,
        )
    else:
        tune_allocator()
        try:
            enhancer = pipeline(options)
        except (WeightsError, ValueError, RuntimeError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        from ..files.batch import enhance_files
        from .video import VIDEO_EXTENSIONS, video_frames

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
        for k, job in enumerate(videos, 1):
            total = None if args.quiet else video_frames(job.src)
            name = job.src.name if len(videos) == 1 else f"[{k}/{len(videos)}] {job.src.name}"
            shape = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} frames [{elapsed}<{remaining}, {rate_fmt}]"
            try:
                with tqdm(total=total, desc=name, unit="frame", file=sys.stderr, disable=args.quiet,
                          bar_format=shape if total else None) as fb:  # fmt: skip
                    status = enhance_file(job, enhancer, smooth=smooth, progress=fb.update, **opts)
                results.append((job, status, ""))
            except (OSError, ValueError, TypeError, RuntimeError) as exc:
                results.append((job, "failed", error_line(job, exc)))
                tqdm.write(f"error: {results[-1][2]}", file=sys.stderr)
    return None


def _enhance_flags_error(args: argparse.Namespace) -> str | None:
    """Flags of ``zerodce enhance`` that cannot be honoured together (one line), before anything runs."""
    if args.overwrite and args.skip_existing:
        return "--overwrite and --skip-existing contradict each other (replace outputs, or keep them): choose one"
    return None


def _warn_without_effect(args: argparse.Namespace, options: Options, jobs: list) -> None:
    """One warning line for each option given where it changes nothing (it is not an error: the
    same command line may be meant for other inputs)."""
    from ..files.io import takes_quality
    from .video import VIDEO_EXTENSIONS

    videos = sum(j.src.suffix.lower() in VIDEO_EXTENSIONS for j in jobs)
    if args.smooth is not None and not videos:
        log.warning("--smooth: no effect, no video among the inputs (it smooths a video's brightness over time)")
    elif args.smooth is not None and options.paper:
        log.warning("--smooth: no effect with --paper (the paper's method has no exposure level to smooth)")
    if args.quality is not None and jobs and not any(takes_quality(j.dst) for j in jobs):
        log.warning("--quality: no effect, no output is JPEG, WebP or HEIC")
    if args.format is not None and jobs and videos == len(jobs):
        log.warning("--format: no effect on videos (they keep their format)")
    if args.workers is not None and args.ray is None:
        log.warning("--workers: no effect without --ray")


def _cmd_enhance(args: argparse.Namespace) -> int:
    from ..files.batch import plan_jobs

    try:  # every option and combination is checked before a file is listed or a model loaded
        options = options_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    error = _enhance_flags_error(args) or (_device_error(options.device) if options.device != "cpu" else None)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out_dir = Path(args.output)
    try:
        jobs = plan_jobs(args.inputs, out_dir, args.suffix, args.recursive, args.format)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not jobs:
        print("error: no input images", file=sys.stderr)
        return 2
    # The -o folder is checked (and made) when there is something to put in it: with only missing
    # inputs each fails in one line as usual, and no empty folder is left behind.
    error = _output_folder_error(out_dir) if any(j.src.exists() for j in jobs) else None
    if error:  # said once, before anything is enhanced, rather than once per photo after its work
        print(f"error: {error}", file=sys.stderr)
        return 2
    same = [j for j in jobs if j.dst.resolve() == j.src.resolve()]
    if same and not args.overwrite:  # refused before anything is written, once rather than per photo
        print(f"error: -o {out_dir} is where the inputs are: {len(same)} output(s) would replace their input "
              f"(e.g. {same[0].src}); add --suffix _lit, or choose another -o", file=sys.stderr)  # fmt: skip
        return 2
    _warn_without_effect(args, options, jobs)
    there: list = []
    if not (args.overwrite or args.skip_existing):
        # Outputs of an earlier run: one line for all of them, not one failure per file.
        todo: list = []
        for job in jobs:
            (there if job.clash is None and job.dst.exists() else todo).append(job)
        jobs = todo
    from ..files._atomic import remove_stale_parts

    folders: dict[Path, set[str]] = {}
    for job in jobs:
        folders.setdefault(job.dst.parent, set()).add(job.dst.name)
    for folder, names in folders.items():  # only our temporaries, only where this run writes
        for stale in remove_stale_parts(folder, names):
            log.info("removed %s, left by an interrupted run", stale)
    quality = QUALITY if args.quality is None else args.quality
    opts = {"overwrite": args.overwrite, "skip_existing": args.skip_existing, "quality": quality}
    results: list = []
    try:
        code = _run_enhance(args, options, jobs, opts, results) if jobs else None
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
    if there:
        print(f"  {len(there)} already there (use --skip-existing or --overwrite)")
    for msg in failures:
        print(f"  failed: {msg}")
    return 1 if failures or there else 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from ..weights import WeightsError, convert_checkpoint

    try:
        path = convert_checkpoint(args.src, args.dst, scale=args.scale)
    except (WeightsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from ..enhance import pipeline
    from ..errors import WeightsError
    from .service import Limits, serve

    try:
        options = options_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    error = _device_error(options.device) if options.device != "cpu" else None
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:  # loaded before the server listens: a model it cannot run is said here, not on each request
        pipeline(options)
    except (WeightsError, ValueError, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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
        body_timeout_s=args.body_timeout,
    )
    serve(args.host, args.port, options, limits, tuple(args.allow_host))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from ..export import ExportError, export_onnx
    from ..weights import WeightsError, load_model

    try:
        net = load_model(args.model)
        path = export_onnx(net, args.output, "maps" if args.maps else "image")
    except (WeightsError, ExportError, OSError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path} (checked: onnx.checker and onnxruntime vs PyTorch within 1e-4)")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import importlib.util

    from ..evaluation.evaluate import main_evaluate

    error = _device_error(args.device) if args.device != "cpu" else None
    if not error and args.high and importlib.util.find_spec("skimage") is None:
        error = "paired evaluation (SSIM) needs scikit-image: scripts/setup.sh eval, or pip install -e '.[eval]'"
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return main_evaluate(args)


def _cmd_models(args: argparse.Namespace) -> int:
    from ..options import BUNDLED_MODELS, DEFAULT_MODEL
    from ..runtime.graphs import bundled_weights_path, weights_summary

    for name in BUNDLED_MODELS:
        path = bundled_weights_path("maps", name)
        cfg, params = weights_summary(path)  # the header alone: no torch needed
        scale = cfg.get("scale", 1)
        arch = f"{cfg['arch']} (maps at 1/{scale})" if cfg["arch"] == "dcenet++" and scale > 1 else cfg["arch"]
        size = path.stat().st_size
        default = "  (default)" if name == DEFAULT_MODEL else ""
        print(f"{name:<8} {arch:<24} {params:>7,} parameters {size / 1000:>6.1f} kB{default}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse's parser with two-line usage errors: the command's short usage, then the error.
    argparse prints the whole wrapped usage first (11 lines for ``enhance``), above the line that matters."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.short_usage()}\n{self.prog}: error: {message}\n")

    def short_usage(self) -> str:
        """``usage: zerodce enhance [options] -o OUTPUT inputs ... (all options: zerodce enhance --help)``."""
        words = [self.prog, "[options]"]
        for a in self._actions:
            if a.option_strings and a.required:
                words.append(f"{a.option_strings[0]} {a.metavar or a.dest.upper()}")
        for a in self._actions:
            if not a.option_strings:
                words.append(str(a.metavar or a.dest) + (" ..." if a.nargs in ("+", "*", argparse.PARSER) else ""))
        return f"usage: {' '.join(words)} (all options: {self.prog} --help)"


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    model_help = "a bundled model (see: zerodce models) or a weights file (default: %(default)s)"
    p = _Parser(prog="zerodce", description="Low-light image enhancement with Zero-DCE.")
    p.add_argument("--version", action="version", version=f"zerodce {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    # -v after the command too; SUPPRESS: not given there, the top-level value stands
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log more")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, **kwargs) -> argparse.ArgumentParser:  # noqa: A002, ANN003
        return sub.add_parser(name, help=help, description=kwargs.pop("description", help), parents=[common], **kwargs)

    e = command("enhance", "enhance images and videos: files, folders or glob patterns")
    e.add_argument("inputs", nargs="+", help="image or video files, folders or glob patterns")
    e.add_argument("-o", "--output", required=True, help="output folder")
    e.add_argument("--model", type=model_name, default="zerodce", help=model_help)
    add_session_arguments(e)
    e.add_argument("--recursive", action="store_true", help="descend into sub-folders (mirrored in the output)")
    e.add_argument("--suffix", default="", help="appended to each output file's stem, e.g. _lit (default: none)")
    e.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    e.add_argument("--skip-existing", action="store_true", help="skip inputs whose output exists (resume a batch)")
    e.add_argument("--quality", type=_quality, default=None,
                   help=f"JPEG/WebP/HEIC quality, 1..100 (default: {QUALITY})")  # fmt: skip
    e.add_argument(
        "--format",
        default=None,
        help="output image format: jpeg, png, tiff, webp, bmp, heic (the heif extra) (default: the input's); "
        "videos keep theirs",
    )
    e.add_argument(
        "--smooth",
        type=_smooth,
        default=None,
        help=f"video: temporal smoothing of the curves' brightness, 0 (per frame) .. 0.99 (default: {SMOOTH})",
    )
    e.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="run on a Ray cluster (needs zerodce[ray]); no ADDRESS starts a local one",
    )
    e.add_argument("--workers", type=int, default=None, help=f"with --ray: model-holding actors (default: {WORKERS})")
    add_adjust_arguments(e)
    e.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=_cmd_enhance)

    s = command("serve", "web page and HTTP API (needs zerodce[serve])")
    s.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s, this machine only)")
    s.add_argument("--port", type=int, default=8000, help="TCP port (default: %(default)s)")
    s.add_argument("--model", type=model_name, default="zerodce", help="requests' and the page's model: " + model_help)
    add_session_arguments(s)
    s.add_argument("--max-upload-mb", type=int, default=40,
                   help="largest upload accepted, MiB; 413 above (default: %(default)s)")  # fmt: skip
    s.add_argument("--max-megapixels", type=float, default=40.0,
                   help="largest image accepted; 413 above (default: %(default)s)")  # fmt: skip
    s.add_argument("--jobs", type=int, default=1, help="enhancements running at once (default: %(default)s)")
    s.add_argument("--queue", type=int, default=8,
                   help="requests waiting beyond --jobs before 503 (default: %(default)s)")  # fmt: skip
    s.add_argument("--timeout", type=float, default=120.0,
                   help="seconds per request before 504, the work stopped (default: %(default)s)")  # fmt: skip
    s.add_argument("--header-timeout", type=float, default=10.0,
                   help="seconds a client has to send its headers (default: %(default)s)")  # fmt: skip
    s.add_argument("--idle-timeout", type=float, default=30.0,
                   help="seconds an upload may stall before it is dropped (default: %(default)s)")  # fmt: skip
    s.add_argument("--body-timeout", type=float, default=60.0,
                   help="seconds an upload may take in all before it is dropped (default: %(default)s)")  # fmt: skip
    s.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a Host name the server answers besides its address and localhost (a proxy's or the "
                        "LAN's name; .example.org for a domain; * for any); repeatable. Others get 400")  # fmt: skip
    s.set_defaults(func=_cmd_serve)

    m = command("models", "list the bundled models: architecture, trainable parameters, file size")
    m.set_defaults(func=_cmd_models)

    x = command("export", "export a model to ONNX (dynamic size, curves inside), checked")
    x.add_argument("-o", "--output", required=True, help="the .onnx file")
    x.add_argument("--model", type=model_name, default="zerodce", help=model_help)
    x.add_argument("--format", default="onnx", choices=["onnx"], help="the only one so far (default: %(default)s)")
    x.add_argument("--maps", action="store_true", help="export the curve-map graph instead of the image graph")
    x.set_defaults(func=_cmd_export)

    t = command("train", "train a model on a folder of images (no references needed)")
    t.add_argument("--data", required=True, help="folder of training images (jpg, png, bmp, tif)")
    t.add_argument("--out", required=True, help="run folder: split, log, checkpoints, weights")
    t.add_argument("--epochs", type=int, default=6, help="passes over the training split (default: %(default)s)")
    t.add_argument("--batch-size", type=int, default=8, help="images per step (default: %(default)s)")
    t.add_argument("--size", type=int, default=256,
                   help="training images are resized to SIZE x SIZE (default: %(default)s)")  # fmt: skip
    t.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default: %(default)s)")
    t.add_argument("--weight-decay", type=float, default=1e-4, help="Adam weight decay (default: %(default)s)")
    t.add_argument("--grad-clip", type=float, default=0.1, help="gradient-norm clipping (default: %(default)s)")
    t.add_argument("--seed", type=int, default=0,
                   help="seeds the split, the initial weights and the batch order (default: %(default)s)")  # fmt: skip
    t.add_argument("--held-out", type=float, default=0.2,
                   help="fraction held out for the per-epoch test loss (default: %(default)s)")  # fmt: skip
    t.add_argument("--arch", choices=["dcenet", "dcenet++"], default="dcenet",
                   help="dcenet: Zero-DCE; dcenet++: Zero-DCE++, curve maps at a reduced scale "
                   "(default: %(default)s)")  # fmt: skip
    t.add_argument(
        "--scale",
        type=int,
        default=12,
        help="dcenet++ only: downscale factor recorded for inference (training runs at full size; "
        "default: %(default)s)",
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
        type=model_name,
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
    t.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    t.add_argument("--device", default="cpu",
                   help="cpu or cuda (cuda:LOCAL_RANK under torchrun; default: %(default)s)")  # fmt: skip
    t.add_argument(
        "--nproc",
        type=int,
        default=None,
        help="train with N DistributedDataParallel processes on this machine (runs torchrun)",
    )
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    t.set_defaults(func=_cmd_train)

    c = command("convert", "convert a checkpoint (the authors' .pth) to zerodce .safetensors")
    c.add_argument("src", help="the checkpoint: the authors' .pth, or a zerodce .safetensors")
    c.add_argument("dst", help="the .safetensors file to write")
    c.add_argument("--scale", type=int, default=None,
                   help="Zero-DCE++ downscale factor to record (default: the checkpoint's; "
                   "the authors': 12)")  # fmt: skip
    c.set_defaults(func=_cmd_convert)

    from ..evaluation.evaluate import add_evaluate_parser

    add_evaluate_parser(sub, _cmd_evaluate, parents=[common], model_type=model_name)
    return p


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _did_you_mean(parser: argparse.ArgumentParser, extra: list[str]) -> str:
    """' (did you mean --preset?)' for the first unknown option close to one of ``parser``'s."""
    from difflib import get_close_matches

    known = [o for a in parser._actions for o in a.option_strings if o.startswith("--")]  # noqa: SLF001
    for token in extra:
        if token.startswith("--"):
            near = get_close_matches(token.split("=")[0], known, n=1)
            if near:
                return f" (did you mean {near[0]}?)"
    return ""


def run() -> None:
    """The ``zerodce`` command (and ``python -m zerodce``): :func:`main`, then exit.

    The command's work is done and written by then. Left alone, the interpreter's final garbage
    collection walks every object torch created on import, about 0.3 s of each run on 2 cores
    (docs/startup.md); frozen objects are skipped by it and freed with the process. atexit handlers
    still run.
    """
    import gc

    code = main()
    gc.freeze()
    raise SystemExit(code)


TORCH_COMMANDS = ("train", "convert", "export")  # the commands that need PyTorch (the light install has none)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # argparse would answer with the top-level usage; the command's is the one that helps
        cmd = _subparsers(parser)[args.command]
        cmd.error(f"unrecognized arguments: {' '.join(extra)}{_did_you_mean(cmd, extra)}")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    if args.command in TORCH_COMMANDS:
        from ..enhance import torch_installed
        from ..errors import needs_torch

        if not torch_installed():
            print(f"error: {needs_torch(f'zerodce {args.command}')}", file=sys.stderr)
            return 2
    from ..errors import MissingExtra, missing_extra

    try:
        return int(args.func(args))
    except KeyboardInterrupt:  # before or after a command's own handling: one line, no traceback
        print("interrupted", file=sys.stderr)
        return 130
    except MissingExtra as exc:  # an optional dependency a command needs: which extra adds it
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        print(f"error: {missing_extra(exc.name, f'zerodce {args.command}')}", file=sys.stderr)
        return 2
