"""Zero-DCE training: the authors' recipe, seeded, checkpointed every epoch and resumable.

Determinism: the weights are initialised from ``seed`` and epoch ``e`` visits the training set
in the order ``randperm(n, seed=(seed, e))``; nothing else is random. A run killed and resumed
from its last epoch checkpoint therefore repeats exactly what the uninterrupted run would do.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from ..files._atomic import atomic_write_bytes, remove_stale_parts
from ..model import ModelConfig, build_model, count_parameters, init_weights
from ..weights import save_weights
from .data import ImageSet, list_images, read_split, split_files, split_json
from .losses import LossWeights, zero_dce_loss

__all__ = ["TrainConfig", "train", "Progress"]

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
WEIGHTS = "model.safetensors"
SPLIT = "split.json"
LOG_CSV = "log.csv"
CURVE_PNG = "loss_curve.png"
CONFIG = "config.json"
TERMS = ("spatial", "exposure", "color", "smoothness")


class Progress(Protocol):
    """What the trainer needs from a progress bar (tqdm satisfies it)."""

    def update(self, n: int = 1) -> Any: ...
    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> Any: ...
    def close(self) -> Any: ...


ProgressFactory = Callable[[int, str], Progress]


class _NoProgress:
    def update(self, n: int = 1) -> None: ...
    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> None: ...
    def close(self) -> None: ...


@dataclass
class TrainConfig:
    """A training run; the defaults are the authors' released recipe (LOSSES.md)."""

    data: Path
    out: Path
    epochs: int = 6
    batch_size: int = 8
    size: int = 256
    lr: float = 1e-4
    weight_decay: float = 1e-4
    grad_clip: float = 0.1
    seed: int = 0
    held_out: float = 0.2
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    resume: bool = False
    device: str = "cpu"
    train_scale: int = 1  # Zero-DCE++ only: curve maps at full training resolution (the authors' choice)
    # Zero-DCE++ only: cycle the curve-map scale over these values, one per step (overrides train_scale)
    train_scales: tuple[int, ...] = ()
    # Distil from this trained model's outputs (L1) instead of the four non-reference losses
    teacher: Path | None = None
    max_steps: int | None = None  # stop after this many optimiser steps (tests, benchmarks)
    overwrite: bool = False  # write into a non-empty --out that holds no run of ours

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        if self.size < 16:
            raise ValueError(f"size must be >= 16 (the exposure loss works on 16x16 patches), got {self.size}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if not 0.0 <= self.held_out < 1.0:
            raise ValueError(f"held-out fraction must be in [0, 1), got {self.held_out}")

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["data"], d["out"] = str(self.data), str(self.out)
        d["teacher"] = None if self.teacher is None else str(self.teacher)
        d["train_scales"] = list(self.train_scales)
        return d


def _save_as(net: torch.nn.Module, config: ModelConfig, path: Path, meta: dict[str, str]) -> None:
    """Save with the inference config (a Zero-DCE++ trained at scale 1 ships with its scale)."""
    trained = net.config
    net.config = config
    try:
        save_weights(net, path, meta)
    finally:
        net.config = trained


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def _write_log(out: Path, history: list[dict[str, float]]) -> None:
    if not history:
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    atomic_write_bytes(out / LOG_CSV, buf.getvalue().encode())
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plotting is optional
        return
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train_loss"] for h in history], "o-", label="train (mean over epoch)")
    held = [(h["epoch"], h["heldout_loss"]) for h in history if "heldout_loss" in h]  # none without held-out images
    if held:
        ax.plot(*zip(*held, strict=True), "s-", label="held-out")
    ax.set_xlabel("epoch")
    ax.set_ylabel("total non-reference loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png")
    plt.close(fig)
    atomic_write_bytes(out / CURVE_PNG, png.getvalue())


_RUN_FILES = {CHECKPOINT, WEIGHTS, SPLIT, LOG_CSV, CURVE_PNG, CONFIG}
_CONFIG_KEYS = {"data", "out", "epochs", "batch_size", "size", "seed", "model", "loss"}


def _ours(p: Path) -> bool:
    name = p.name
    return p.is_file() and (
        name in _RUN_FILES
        or (name.startswith("epoch") and name.endswith(".safetensors") and name[5:-12].isdigit())
        or (name.startswith(".") and name.endswith(".part"))
    )


def _run_config(out: Path) -> dict[str, Any] | None:
    """The ``config.json`` of a run of ours in ``out``, or None when there is none (or it is someone else's)."""
    try:
        doc = json.loads((out / CONFIG).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) and _CONFIG_KEYS <= doc.keys() else None


def _check_out(cfg: TrainConfig) -> None:
    """Refuse an ``--out`` that holds files of the user's: only an empty folder or a run of ours is written to."""
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out}: --out must be a folder")
    entries = sorted(out.iterdir()) if out.is_dir() else []
    if not entries or cfg.overwrite:
        return
    if _run_config(out) is None or not all(_ours(p) for p in entries):
        names = ", ".join(p.name for p in entries[:4]) + (", ..." if len(entries) > 4 else "")
        raise FileExistsError(
            f"{out}: not empty and not a zerodce run ({names}); choose an empty or new --out, or pass --overwrite"
        )


def _prepare_split(cfg: TrainConfig, resuming: bool) -> tuple[list[Path], list[Path]]:
    """The resumed run's split, or a fresh one: a split.json without a checkpoint is a failed start's, not a run's."""
    split_path = cfg.out / SPLIT
    data = Path(cfg.data)
    if resuming and split_path.exists():
        try:
            return read_split(split_path, data)
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
            raise ValueError(f"{split_path}: unreadable split ({exc})") from None
    files = list_images(data)
    if not files:
        raise FileNotFoundError(f"{data}: no images (jpg, png, bmp, tif) found")
    return split_files(files, cfg.held_out, cfg.seed)


def _load_checkpoint(
    cfg: TrainConfig, path: Path, net: torch.nn.Module, opt: torch.optim.Optimizer, device: torch.device
) -> dict[str, Any]:
    """Restore model and optimiser from the run's checkpoint, with one-line errors and nothing changed on failure."""
    import warnings

    from ..weights import load_state_dict

    run = _run_config(cfg.out)
    if run is not None and isinstance(run.get("model"), dict):
        arch, scale = run["model"].get("arch"), run["model"].get("scale")
        if (arch, scale) != (cfg.model.arch, cfg.model.scale):
            raise ValueError(
                f"{cfg.out}: this run trains arch {arch} (scale {scale}); resume it with the same --arch and --scale"
            )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - UnpicklingError, RuntimeError, EOFError ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: not a zerodce checkpoint ({first})") from None
    if not isinstance(state, dict) or not {"model", "optimizer", "epoch", "history"} <= state.keys():
        raise ValueError(f"{path}: not a zerodce checkpoint (expected model, optimizer, epoch and history)")
    load_state_dict(net, state["model"], str(path))
    try:
        opt.load_state_dict(state["optimizer"])
    except (ValueError, KeyError, RuntimeError) as exc:
        raise ValueError(f"{path}: optimiser state does not match the model ({exc})") from None
    return state


class _Teacher:
    """A trained model's outputs on the training images, computed once and kept (float16)."""

    def __init__(self, path: Path, n: int, device: torch.device) -> None:
        from ..weights import load_model

        self.net = load_model(path).to(device).eval()
        self.device = device
        self.cache: list[torch.Tensor | None] = [None] * n

    @torch.no_grad()
    def outputs(self, images: ImageSet, idx: torch.Tensor) -> torch.Tensor:
        missing = [int(i) for i in idx if self.cache[int(i)] is None]
        if missing:
            y, _ = self.net(images.batch(torch.tensor(missing)).to(self.device))
            for i, yi in zip(missing, y.clamp(0, 1), strict=True):
                self.cache[i] = yi.to(torch.float16)
        return torch.stack([self.cache[int(i)] for i in idx]).float()  # type: ignore[misc]


@dataclass
class _Dist:
    """Process-group facts; world 1 means plain single-process training."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> _Dist:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def main(self) -> bool:
        return self.rank == 0


@torch.inference_mode()
def heldout_loss(
    model: torch.nn.Module,
    images: ImageSet,
    weights: LossWeights,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
) -> float:
    """Mean total loss over a held-out image set (NaN when it is empty)."""
    if len(images) == 0:
        return math.nan
    model.eval()
    total = 0.0
    for start in range(0, len(images), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(images)))
        x = images.batch(idx).to(device)
        y, a = model(x)
        loss, _ = zero_dce_loss(x, y, a, weights)
        total += float(loss) * len(idx)
    model.train()
    return total / len(images)


def _heldout(net: torch.nn.Module, cfg: TrainConfig, images: ImageSet, device: torch.device) -> float:
    if cfg.train_scales:  # always measured at the first scale, whatever step the cycle is at
        net.config = dataclasses.replace(net.config, scale=cfg.train_scales[0])
    return heldout_loss(net, images, cfg.loss, device=device)


def _say_no_heldout(cfg: TrainConfig, files: int, held: int) -> None:
    """One line on why this run measures no held-out loss (its log and weights then carry none):
    a mean over no images is NaN, which is no loss to print."""
    if cfg.held_out == 0:
        log.info("--held-out 0: no held-out images; the held-out loss is not measured")
    elif held == 0:
        log.warning(
            "%s: %d image%s, too few to hold any out (--held-out %g); the held-out loss is not measured: "
            "add images to see whether training generalises",
            cfg.data, files, "s"[: files != 1], cfg.held_out,
        )  # fmt: skip
    else:
        log.warning("%s: none of the %d held-out images could be decoded; the held-out loss is not measured",
                    cfg.data, held)  # fmt: skip


def _setup_device(cfg: TrainConfig, dist: _Dist) -> torch.device:
    device = torch.device(cfg.device)
    if device.type == "cuda" and dist.world > 1:
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    if dist.world > 1:
        import torch.distributed as td

        if not td.is_initialized():
            td.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cpu":  # share the cores between the local processes
            local = int(os.environ.get("LOCAL_WORLD_SIZE", dist.world))
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))
    return device


def train(cfg: TrainConfig, progress: ProgressFactory | None = None) -> Path:
    """Run (or resume) training; returns the path of the final ``model.safetensors``.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) it trains with DistributedDataParallel (gloo on
    CPU, NCCL on GPU): ``batch_size`` is the global batch, each step's batch is cut into
    near-equal contiguous shares, one per rank, and each rank's loss is weighted by its share
    so that the averaged gradient equals the single-process gradient of the same batch. Rank 0
    alone writes the split, logs, checkpoints and weights.
    """
    dist = _Dist.from_env()
    device = _setup_device(cfg, dist)
    make_bar = (progress if dist.main else None) or (lambda total, desc: _NoProgress())
    out = Path(cfg.out)
    if dist.main:
        _check_out(cfg)
    ckpt_path = out / CHECKPOINT
    if ckpt_path.exists() and not cfg.resume and not cfg.overwrite:
        raise FileExistsError(
            f"{out} already holds a run; pass --resume to continue it, --overwrite to start it afresh, "
            "or choose another --out"
        )
    resuming = cfg.resume and ckpt_path.exists()

    # Nothing is written before the data has loaded: a failed start leaves no split that the next run would reuse.
    train_files, test_files = _prepare_split(cfg, resuming)
    bar = make_bar(len(train_files) + len(test_files), "decoding")
    train_set = ImageSet(train_files, cfg.size, bar.update)
    test_set = ImageSet(test_files, cfg.size, bar.update) if dist.main else ImageSet([], cfg.size)
    bar.close()
    if len(train_set) == 0:
        unread = len(train_files) + (len(test_files) if dist.main else 0) - len(test_set)
        raise ValueError(f"{cfg.data}: no readable training images ({unread} files could not be decoded)")
    if dist.main and len(test_set) == 0:
        _say_no_heldout(cfg, len(train_files) + len(test_files), len(test_files))

    torch.manual_seed(cfg.seed)
    plus = cfg.model.arch == "dcenet++"
    # Zero-DCE++ is trained with its curve maps at full resolution and applied at 1/scale; its
    # authors keep PyTorch's default initialisation, Zero-DCE's use N(0, 0.02).
    net = build_model(dataclasses.replace(cfg.model, scale=cfg.train_scale) if plus else cfg.model)
    if not plus:
        init_weights(net, torch.Generator().manual_seed(cfg.seed))
    net = net.to(device, memory_format=torch.channels_last).train()
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history: list[dict[str, float]] = []
    start_epoch = 0
    if resuming:
        state = _load_checkpoint(cfg, ckpt_path, net, opt, device)
        history = state["history"]
        start_epoch = int(state["epoch"])
        log.info("resuming %s after epoch %d", out, start_epoch)
    teacher = _Teacher(cfg.teacher, len(train_set), device) if cfg.teacher else None
    model: torch.nn.Module = net
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        remove_stale_parts(out)  # temporaries of a killed run; the files they were replacing are intact
        if not resuming:  # every rank computed the same split; only rank 0 writes it (atomically)
            split = split_json(Path(cfg.data), train_files, test_files, cfg.seed, cfg.held_out)
            atomic_write_bytes(out / SPLIT, split.encode())
        atomic_write_bytes(out / CONFIG, json.dumps(cfg.to_json(), indent=1).encode())
        log.info("%d parameters; %d training / %d held-out images; %d process(es), global batch %d",
                 count_parameters(net), len(train_set), len(test_set), dist.world, cfg.batch_size)  # fmt: skip

    n = len(train_set)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    step = start_epoch * steps_per_epoch
    for epoch in range(start_epoch, cfg.epochs):
        order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch))
        sums = torch.zeros(len(TERMS) + 2, dtype=torch.float64)  # total, terms..., images seen
        t0 = time.perf_counter()
        bar = make_bar(n, f"epoch {epoch + 1}/{cfg.epochs}")
        for start in range(0, n, cfg.batch_size):
            if cfg.max_steps is not None and step >= cfg.max_steps:
                break
            idx = order[start : start + cfg.batch_size]
            share = torch.tensor_split(idx, dist.world)[dist.rank] if dist.world > 1 else idx
            weight = 1.0
            if dist.world > 1:
                # Weighted so that the mean of the ranks' gradients is the gradient of the whole batch;
                # a rank with no image this step joins the all-reduce with a zero-weighted dummy.
                weight = dist.world * len(share) / len(idx)
                if len(share) == 0:
                    share = idx[:1]
            x = train_set.batch(share).to(device)
            if cfg.train_scales:
                net.config = dataclasses.replace(net.config, scale=cfg.train_scales[step % len(cfg.train_scales)])
            y, a = model(x)
            if teacher is not None:
                with torch.no_grad():
                    _, terms = zero_dce_loss(x, y, a, cfg.loss)
                loss = (y - teacher.outputs(train_set, share)).abs().mean()
            else:
                loss, terms = zero_dce_loss(x, y, a, cfg.loss)
            opt.zero_grad(set_to_none=True)
            (loss * weight if dist.world > 1 else loss).backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            opt.step()
            step += 1
            b = len(share) if weight > 0 else 0
            value = loss.item()
            sums += torch.tensor([value * b, *(terms[k].item() * b for k in TERMS), b], dtype=torch.float64)
            bar.update(len(idx))
            bar.set_postfix(loss=f"{value:.4f}", refresh=False)
        bar.close()
        seconds = time.perf_counter() - t0
        if dist.world > 1:
            import torch.distributed as td

            td.all_reduce(sums)
        seen = int(sums[-1])
        if seen == 0:
            break
        if dist.main:
            record = {
                "epoch": epoch + 1,
                "step": step,
                "train_loss": float(sums[0]) / seen,
                **{f"train_{k}": float(sums[i + 1]) / seen for i, k in enumerate(TERMS)},
            }
            if len(test_set):  # no held-out images: no held-out loss (not NaN), said once above
                record["heldout_loss"] = _heldout(net, cfg, test_set, device)
            record.update(images_per_s=seen / seconds, seconds=seconds)
            history.append(record)
            log.info("epoch %d: %s", epoch + 1, json.dumps({k: round(v, 5) for k, v in record.items()}))
            _save_checkpoint(
                ckpt_path,
                {"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1, "history": history},
            )
            _save_as(net, cfg.model, out / f"epoch{epoch + 1:03d}.safetensors", {"zerodce.epoch": str(epoch + 1)})
            _write_log(out, history)
        if cfg.max_steps is not None and step >= cfg.max_steps:
            break

    final = out / WEIGHTS
    if dist.main:
        meta = {"zerodce.epochs": str(len(history)), "zerodce.training.train": json.dumps(cfg.to_json())}
        if history and "heldout_loss" in history[-1]:
            meta["zerodce.heldout_loss"] = f"{history[-1]['heldout_loss']:.6f}"
        _save_as(net.to(memory_format=torch.contiguous_format), cfg.model, final, meta)
    if dist.world > 1:
        import torch.distributed as td

        td.barrier()
        td.destroy_process_group()
    return final
