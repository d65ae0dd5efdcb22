"""The ONNX graphs shipped beside the bundled weights, loaded and run without torch.

Each graph is one network's convolutions; what surrounds them (resampling, curves, blending) is the
caller's, in numpy. Graphs (``zerodce/models/``, built by ``scripts/build_onnx.py``; the int8 one by
``scripts/quantize.py``):

============  ============  ========================  ==================================================
kind          model         file                      input -> output
============  ============  ========================  ==================================================
``maps``      ``zerodce``   ``zerodce-maps.onnx``     ``input`` (B, 3, H, W) -> ``maps`` (B, 24, H, W)
``maps``      ``fast``      ``fast-maps.onnx``        ``input`` (B, 3, H, W) -> ``maps`` (B, 3, H, W)
``small``     ``fast``      ``fast-small.onnx``       ``input`` (B, 3, h, w) -> ``maps`` (B, 3, h, w)
``int8``      ``zerodce``   ``zerodce-int8.onnx``     ``input`` (B, 3, H, W) -> ``codes`` uint8 (B, 24, H, W)
``denoiser``  ``denoiser``  ``denoiser-logits.onnx``  ``features`` (B, 5, H, W) -> ``logits`` (B, 8, H, W)
============  ============  ========================  ==================================================

``small`` is Zero-DCE++'s estimator alone: its input is the image edge-replicated to a multiple of
the config's ``scale`` and bilinearly downscaled by it (align_corners=False), and its map is
upsampled back to the padded size (bilinear, align_corners=True) and cropped by the caller.
``int8`` outputs the uint8 codes of its last convolution: the maps are
``tanh((codes - zero_point) * scale)`` (:attr:`MapsGraph.coded`). ``denoiser`` does its own padding,
pixel-unshuffle, upsampling and crop: any H, W.

Every graph records in its metadata the SHA-256 of the weights file it was made from, that file's
config (JSON) and the graph's kind and precision (:data:`META_WEIGHTS_SHA256` ...). The classes check
the record against the shipped weights when they load (:func:`check_graph`), so a package whose
weights were changed without rebuilding its graphs fails loudly instead of running old weights.

Only the bundled models run here: other weights files go through the PyTorch code (which exports
their graphs when it starts), so reading a weights file's config without torch is not provided.
onnxruntime is imported when a graph is loaded, not with this module.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .threads import LazyPool

if TYPE_CHECKING:
    import onnxruntime

__all__ = [
    "GraphError",
    "GRAPHS",
    "load_graph",
    "on_ort_thread",
    "bundled_graph_path",
    "bundled_weights_path",
    "graph_config",
    "file_sha256",
    "check_graph",
    "MapsGraph",
    "SmallMapsGraph",
    "DenoiserLogitsGraph",
]

# Metadata every shipped graph carries (written by zerodce.export.graph_metadata).
META_WEIGHTS_SHA256 = "zerodce.weights_sha256"
META_CONFIG = "zerodce.config"
META_GRAPH = "zerodce.graph"
META_PRECISION = "zerodce.precision"
# The int8 graph's output quantisation: maps = tanh((codes - zero_point) * scale).
CODES_SCALE, CODES_ZERO_POINT = "zerodce.codes_scale", "zerodce.codes_zero_point"

# (kind, model) -> (graph file, weights file it is made from), both in zerodce/models/.
GRAPHS = {
    ("maps", "zerodce"): ("zerodce-maps.onnx", "zerodce.safetensors"),
    ("maps", "fast"): ("fast-maps.onnx", "fast.safetensors"),
    ("small", "fast"): ("fast-small.onnx", "fast.safetensors"),
    ("int8", "zerodce"): ("zerodce-int8.onnx", "zerodce.safetensors"),
    ("denoiser", "denoiser"): ("denoiser-logits.onnx", "denoiser.safetensors"),
}
# kind -> (zerodce.graph, zerodce.precision) its metadata must say.
KINDS = {
    "maps": ("maps", "fp32"),
    "small": ("small", "fp32"),
    "int8": ("codes", "int8"),
    "denoiser": ("denoiser-logits", "fp32"),
}
REBUILD = "python scripts/build_onnx.py"
REQUANTISE = "python scripts/quantize.py (calibration images: see its docstring)"


class GraphError(RuntimeError):
    """A shipped graph is missing, unknown, or does not record the weights shipped beside it."""


_THREADS: int | None = None


def set_threads(n: int | None) -> None:
    """onnxruntime threads for graphs loaded from now on (None: the CPUs this process may use);
    Ray's actors share a machine and take a few each."""
    global _THREADS
    _THREADS = None if n is None else max(1, int(n))


def _default_threads() -> int:
    # The CPUs this process may run on (a container's or taskset's share), not the machine's.
    if _THREADS is not None:
        return _THREADS
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


# onnxruntime's sessions are created and run in one thread of their own, with denormal floats flushed
# to zero there and in onnxruntime's pool: Zero-DCE++'s depthwise convolutions meet denormal partial
# products, and the small map of a 12 MP photo then took about twice as long (outputs identical on
# the examples). onnxruntime sets the flush on the thread that creates a session, so creating them in
# the caller's thread would change the caller's floating-point environment.
_ORT = LazyPool("zerodce-onnxruntime", 1)


def on_ort_thread(fn: Callable, *args: object) -> object:
    """``fn(*args)`` in onnxruntime's thread (sessions are created and run there); its result."""
    return _ORT.submit(fn, *args).result()


def load_graph(path: str | Path, threads: int | None = None) -> onnxruntime.InferenceSession:
    """An onnxruntime CPU session of the graph at ``path``: all graph optimisations, ``threads``
    intra-op threads (default: the CPUs this process may use), one inter-op thread, denormals
    flushed to zero (created in onnxruntime's own thread: :func:`on_ort_thread`)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or _default_threads()
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.set_denormal_as_zero", "1")
    # No memory pattern: with it, the second run at a new size re-planned and took about twice the
    # steady time (1.6-2.0 s against 0.77 s for DCE-Net at 1200x900: a folder's second photo paid
    # it); without it the same runs take the steady time, and later runs are as fast (0.785 s median
    # either way).
    opts.enable_mem_pattern = False
    return on_ort_thread(ort.InferenceSession, str(path), opts, ["CPUExecutionProvider"])


def _entry(kind: str, model: str) -> tuple[str, str]:
    if (kind, model) not in GRAPHS:
        raise GraphError(f"no shipped {kind!r} graph for model {model!r}; shipped: {sorted(GRAPHS)}")
    return GRAPHS[(kind, model)]


def _models_dir() -> Path:
    return Path(str(resources.files("zerodce") / "models"))


def bundled_graph_path(kind: str, model: str) -> Path:
    """Path of the shipped graph of ``kind`` (``maps``, ``small``, ``int8``, ``denoiser``) for ``model``.

    Example:
        >>> bundled_graph_path("small", "fast").name
        'fast-small.onnx'
    """
    return _models_dir() / _entry(kind, model)[0]


def bundled_weights_path(kind: str, model: str) -> Path:
    """Path of the weights file the shipped graph of ``kind`` for ``model`` is made from."""
    return _models_dir() / _entry(kind, model)[1]


def weights_summary(path: str | Path) -> tuple[dict, int]:
    """The model config and the number of parameters of a .safetensors file, from its header alone
    (8 bytes of length, then JSON: each tensor's dtype, shape and offsets; ``__metadata__``), so
    that ``zerodce models`` needs neither torch nor the safetensors package.

    Example:
        >>> cfg, n = weights_summary(bundled_weights_path("maps", "zerodce"))
        >>> cfg["arch"], n
        ('dcenet', 79416)
    """
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        if size > 100 * 2**20:
            raise GraphError(f"{path}: safetensors header of {size} bytes")
        header = json.loads(f.read(size))
    meta = header.pop("__metadata__", {}) or {}
    n = sum(math.prod(t["shape"]) for t in header.values())
    return json.loads(meta.get("zerodce.config", "{}")), n


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes: what a graph records of the weights it was made from."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _metadata(session: onnxruntime.InferenceSession) -> dict[str, str]:
    return dict(session.get_modelmeta().custom_metadata_map)


def graph_config(session: onnxruntime.InferenceSession) -> dict:
    """The config of the weights a graph was made from, as its metadata records it.

    For the curve models ``arch``, ``channels``, ``n_iter``, ``scale`` (``zerodce.model.ModelConfig``);
    for the denoiser ``arch``, ``width``, ``depth``, ``scale`` (``zerodce.denoiser.DenoiserConfig``).
    """
    raw = _metadata(session).get(META_CONFIG)
    if raw is None:
        raise GraphError(f"the graph records no {META_CONFIG}")
    try:
        config = json.loads(raw)
    except ValueError as e:
        raise GraphError(f"the graph's {META_CONFIG} is not JSON: {e}") from None
    if not isinstance(config, dict) or "arch" not in config:
        raise GraphError(f"the graph's {META_CONFIG} is not a config: {raw[:80]!r}")
    return config


def check_graph(session: onnxruntime.InferenceSession, kind: str, model: str) -> None:
    """Raise :class:`GraphError` unless ``session`` is a ``kind`` graph whose metadata records the
    SHA-256 of the weights shipped for ``model`` (a graph left stale by retraining, say)."""
    graph, weights = bundled_graph_path(kind, model), bundled_weights_path(kind, model)
    meta = _metadata(session)
    fix = REQUANTISE if kind == "int8" else REBUILD
    want = dict(zip((META_GRAPH, META_PRECISION), KINDS[kind], strict=True))
    wrong = sorted(k for k, v in want.items() if meta.get(k) != v)
    if wrong:
        got = ", ".join(f"{k}={meta.get(k)!r}" for k in wrong)
        raise GraphError(f"{graph.name} is not a {kind} graph ({got}); rebuild it: {fix}")
    recorded = meta.get(META_WEIGHTS_SHA256)
    if recorded is None:
        raise GraphError(f"{graph.name} records no weights hash; rebuild it: {fix}")
    current = file_sha256(weights)
    if recorded != current:
        raise GraphError(
            f"{graph.name} is stale: made from weights sha256 {recorded[:12]}..., "
            f"{weights.name} is {current[:12]}...; rebuild it: {fix}"
        )


class _Graph:
    """One shipped graph's session, checked against its weights when loaded."""

    kind = ""

    def __init__(self, model: str, threads: int | None = None, verify: bool = True) -> None:
        self.model = model
        self.path = bundled_graph_path(self.kind, model)
        if not self.path.is_file():
            raise GraphError(f"{self.path} is missing; build it: {REBUILD}")
        self.session = load_graph(self.path, threads)
        if verify:
            check_graph(self.session, self.kind, model)
        self.config = graph_config(self.session)
        self._input = self.session.get_inputs()[0].name

    def _run(self, x: np.ndarray, channels: int) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 4 or x.shape[1] != channels or 0 in x.shape:
            raise ValueError(f"expected a float32 array (B, {channels}, H, W), got shape {x.shape}")
        (out,) = on_ort_thread(self.session.run, None, {self._input: x})
        return out


class MapsGraph(_Graph):
    """Curve maps of a bundled model at full resolution: fp32, or int8 codes.

    Args:
        model: ``"zerodce"`` or ``"fast"`` (fp32); ``"zerodce"`` (int8).
        precision: ``"fp32"``, or ``"int8"`` for the statically quantised graph.
        threads: onnxruntime intra-op threads (default: the CPUs this process may use).
        verify: check that the graph records the shipped weights' hash (:func:`check_graph`).

    Shape:
        (B, 3, H, W) float32 in [0, 1] -> (B, 3 n_iter, H, W) float32 in [-1, 1] (Zero-DCE), or
        (B, 3, H, W) (Zero-DCE++); for int8 the uint8 codes of those maps, decoded with
        :attr:`coded` = (scale, zero_point) as ``tanh((codes - zero_point) * scale)``.

    Example:
        >>> maps = MapsGraph("zerodce")
        >>> maps(np.full((1, 3, 5, 7), 0.2, np.float32)).shape
        (1, 24, 5, 7)
    """

    def __init__(
        self, model: str = "zerodce", precision: str = "fp32", threads: int | None = None, verify: bool = True
    ) -> None:
        if precision not in ("fp32", "int8"):
            raise ValueError(f"shipped graphs are fp32 or int8, not {precision!r}")
        self.kind = "int8" if precision == "int8" else "maps"
        super().__init__(model, threads, verify)
        self.precision = precision
        self.coded: tuple[float, int] | None = None
        if precision == "int8":
            meta = _metadata(self.session)
            try:
                self.coded = float(meta[CODES_SCALE]), int(meta[CODES_ZERO_POINT])
            except (KeyError, ValueError) as e:
                raise GraphError(f"{self.path.name}: no codes scale / zero point in its metadata ({e})") from None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._run(x, 3)


class SmallMapsGraph(_Graph):
    """Zero-DCE++'s curve-map estimator on the already downscaled image (see the module docstring).

    Shape:
        (B, 3, h, w) float32 -> (B, 3, h, w) float32 in [-1, 1], any h, w; :attr:`scale` is the
        factor the image is to be downscaled by first.

    Example:
        >>> small = SmallMapsGraph("fast")
        >>> small.scale, small(np.full((2, 3, 3, 4), 0.2, np.float32)).shape
        (12, (2, 3, 3, 4))
    """

    kind = "small"

    def __init__(self, model: str = "fast", threads: int | None = None, verify: bool = True) -> None:
        super().__init__(model, threads, verify)
        self.scale = int(self.config["scale"])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._run(x, 3)


class DenoiserLogitsGraph(_Graph):
    """The learned denoiser's per-pixel blend logits (``zerodce.denoiser.DenoiseNet.logits``).

    Shape:
        features (B, 5, H, W) float32 (enhanced RGB, predicted noise / NOISE_SCALE, sqrt of the
        input's local luma) -> logits (B, 8, H, W): 4 for the luma bank, then 4 for the chroma bank.
        Any H, W: the graph pads to a multiple of :attr:`scale`, upsamples and crops itself.

    Example:
        >>> logits = DenoiserLogitsGraph()
        >>> logits(np.zeros((1, 5, 6, 9), np.float32)).shape
        (1, 8, 6, 9)
    """

    kind = "denoiser"

    def __init__(self, model: str = "denoiser", threads: int | None = None, verify: bool = True) -> None:
        super().__init__(model, threads, verify)
        self.scale = int(self.config["scale"])

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return self._run(features, 5)
