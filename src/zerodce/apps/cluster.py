"""Batch enhancement on a Ray cluster with Ray Data (optional extra: ``pip install zerodce[ray]``).

Each actor loads the pipeline of one :class:`~zerodce.options.Options` (the driver's, pickled) once
and enhances batches of files with the same per-file logic as the local CLI
(:func:`zerodce.files.batch.enhance_file`): outputs are written atomically, failures are reported per
file, nothing stops the rest of the batch. Inputs and outputs must be visible to every
node at the same paths (a shared filesystem), as on most clusters.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..files.batch import Job, enhance_file, error_line
from ..options import BUNDLED_MODELS, Options

__all__ = ["enhance_on_ray"]

log = logging.getLogger(__name__)


class _EnhanceActor:
    """A Ray Data callable class: one loaded pipeline per actor, one row per file."""

    def __init__(self, options: Options, threads: int, opts: dict) -> None:
        from .._runtime import tune_allocator
        from ..enhance import pipeline, torch_installed
        from ..runtime.graphs import set_threads

        set_threads(threads)  # the light runtime's onnxruntime sessions
        if torch_installed():  # the PyTorch pipeline's, when the options need it
            import torch

            torch.set_num_threads(threads)
        tune_allocator()
        self.enhancer = pipeline(options)
        self.opts = opts

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        status, error = [], []
        for src, dst in zip(batch["src"], batch["dst"], strict=True):
            job = Job(Path(str(src)), Path(str(dst)))
            try:
                status.append(enhance_file(job, self.enhancer, **self.opts))
                error.append("")
            except Exception as exc:  # noqa: BLE001 - reported per file, like the local CLI
                status.append("failed")
                error.append(error_line(job, exc))
        return {"src": batch["src"], "dst": batch["dst"], "status": np.array(status), "error": np.array(error)}


def enhance_on_ray(
    jobs: list[Job],
    options: Options,
    *,
    address: str | None = None,
    workers: int = 2,
    batch_size: int = 4,
    threads_per_worker: int = 1,
    overwrite: bool = False,
    skip_existing: bool = False,
    quality: int = 95,
    smooth: float = 0.8,
) -> list[tuple[Job, str, str]]:
    """Enhance ``jobs`` with ``workers`` Ray actors; returns ``(job, status, error)`` per file, in order.

    Args:
        options: every actor's :class:`~zerodce.options.Options` (model, device, backend, precision,
            tile and the controls), pickled to it as it is; ``"cuda"`` needs a GPU on every node
            that runs an actor.
        address: a running cluster (``"auto"`` or ``"ray://head:10001"``); ``None`` starts a local
            Ray instance sized to ``workers * threads_per_worker`` CPUs.
        smooth: temporal smoothing of videos (:func:`zerodce.apps.video.enhance_video`), as the local CLI.
    """
    model = Path(options.model)
    if options.model not in BUNDLED_MODELS and model.exists():  # actors may run elsewhere: an absolute path
        options = options.replace(model=str(model.resolve()))
    from ..errors import require

    ray = require("ray", "--ray")
    started = False
    if not ray.is_initialized():
        kwargs = {"address": address} if address else {"num_cpus": workers * threads_per_worker}
        ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING, **kwargs)
        started = True
    try:
        items = [{"src": str(j.src), "dst": str(j.dst)} for j in jobs]
        ds = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), workers * 4)))
        out = ds.map_batches(
            _EnhanceActor,
            fn_constructor_kwargs={
                "options": options,
                "threads": threads_per_worker,
                "opts": {"overwrite": overwrite, "skip_existing": skip_existing, "quality": quality, "smooth": smooth},
            },
            batch_size=batch_size,
            concurrency=workers,
            num_cpus=threads_per_worker,
        ).take_all()
    finally:
        if started:
            ray.shutdown()
    by_src = {(r["src"], r["dst"]): (str(r["status"]), str(r["error"])) for r in out}
    return [(j, *by_src[(str(j.src), str(j.dst))]) for j in jobs]
