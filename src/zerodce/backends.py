"""Where the curve maps are computed: PyTorch (fp32 or bf16 autocast) or onnxruntime (fp32 or int8).

A backend is a callable ``maps(x)``: (B, 3, H, W) float32 -> curve maps (B, 3n or 3, H, W) on
``x``'s device: float32, or for the int8 graph :class:`~zerodce.coded.CodedMaps` (uint8 codes and a
table of their values; :func:`~zerodce.coded.dense_maps` decodes them). The curves themselves,
exposure, balance, denoising and tiling stay in :class:`~zerodce.enhance.Enhancer`, identical for
every backend.

``backend="auto"`` picks onnxruntime for fp32 on CPU when it is installed (it runs DCE-Net's
convolutions at about the machine's matrix-multiply rate; README, "Speed"), else PyTorch. For a
bundled model the fp32 graph is the one shipped beside its weights when that graph records those
weights' hash (:data:`~zerodce.export.BUNDLED_GRAPHS`): exporting it from the network at every start
took about 1.4 s of a CLI run (docs/startup.md); other weights are exported as before.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from .coded import CodedMaps, tanh_table
from .presets import BACKENDS, PRECISIONS  # noqa: F401 - re-exported: the CLI's choices need no torch

__all__ = ["Backend", "Precision", "make_backend", "onnxruntime_available", "INT8_MODELS"]

Backend = Literal["auto", "torch", "onnxruntime"]
Precision = Literal["fp32", "bf16", "int8"]
from .options import INT8_MODELS  # noqa: E402 - torch-free home of the name

log = logging.getLogger(__name__)


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class TorchMaps:
    """The network's own ``curve_maps``, optionally under bf16 autocast (maps returned in fp32)."""

    name = "torch"

    def __init__(self, net: nn.Module, precision: Precision = "fp32") -> None:
        self.net = net
        self.precision = precision

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.precision == "bf16":
            with torch.autocast(x.device.type, dtype=torch.bfloat16):
                return self.net.curve_maps(x).float()
        return self.net.curve_maps(x)


class OrtMaps:
    """An onnxruntime session of the curve-map graph (exported from the network, or a file)."""

    name = "onnxruntime"

    def __init__(self, graph: bytes | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.inter_op_num_threads = 1
        src = graph if isinstance(graph, bytes) else str(graph)
        self.session = ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
        self.coded: tuple[float, int] | None = None  # (scale, zero point) of a graph that outputs codes
        if self.session.get_outputs()[0].type == "tensor(uint8)":
            from .export import CODES_SCALE, CODES_ZERO_POINT

            meta = self.session.get_modelmeta().custom_metadata_map
            self.coded = float(meta[CODES_SCALE]), int(meta[CODES_ZERO_POINT])

    @classmethod
    def from_net(cls, net: nn.Module) -> OrtMaps:
        from .export import maps_graph_bytes

        return cls(maps_graph_bytes(net))

    @classmethod
    def bundled(cls, net: nn.Module, model_name: str | None) -> OrtMaps | None:
        """The prebuilt maps graph of bundled model ``model_name``, or None when there is none or it
        does not record the weights file's SHA-256, ``net``'s config and fp32 (then export instead)."""
        from .export import BUNDLED_GRAPHS, bundled_graph, graph_metadata
        from .weights import bundled_path, weights_sha256

        path = bundled_graph(model_name) if model_name in BUNDLED_GRAPHS else None
        if path is None or not path.is_file():
            return None
        maps = cls(path)
        meta = maps.session.get_modelmeta().custom_metadata_map
        want = graph_metadata(net, weights_sha256(bundled_path(model_name)))
        differ = sorted(k for k, v in want.items() if meta.get(k) != v)
        io = maps.session.get_inputs()[0], maps.session.get_outputs()[0]
        if not differ and all(t.type == "tensor(float)" for t in io) and io[0].shape[1] == 3:
            return maps
        # A package whose graph was not rebuilt with its weights (scripts/build_onnx.py): still correct.
        why = ", ".join(differ) or "input/output types"
        log.warning("%s does not match its weights (%s); exporting the graph instead", path, why)
        return None

    def __call__(self, x: torch.Tensor) -> torch.Tensor | CodedMaps:
        xn = x.detach().cpu().contiguous().numpy()
        (maps,) = self.session.run(None, {"input": xn})
        if self.coded is not None:
            codes = torch.from_numpy(maps)
            return CodedMaps(codes, tanh_table(*self.coded, codes.shape[0], codes.shape[1]))
        return torch.from_numpy(maps).to(x.device)


def _int8_graph(model_name: str | None) -> Path:
    if model_name not in INT8_MODELS:
        raise ValueError(
            f"int8 precision needs a quantised graph; bundled ones: {sorted(INT8_MODELS)} "
            "(make one for other weights with scripts/quantize.py and pass --model)"
        )
    return Path(str(resources.files("zerodce") / "models" / INT8_MODELS[model_name]))


def make_backend(
    net: nn.Module,
    device: torch.device,
    backend: Backend = "auto",
    precision: Precision = "fp32",
    model_name: str | None = None,
) -> TorchMaps | OrtMaps:
    """Choose and build the curve-map backend (see the module docstring)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {PRECISIONS}")
    if precision == "int8":
        if backend == "torch" or device.type != "cpu":
            raise ValueError("int8 runs on onnxruntime on the CPU")
        return OrtMaps(_int8_graph(model_name))
    if precision == "bf16":
        if backend == "onnxruntime":
            raise ValueError("bf16 runs on the PyTorch backend")
        return TorchMaps(net, "bf16")
    if backend == "onnxruntime" or (backend == "auto" and device.type == "cpu" and onnxruntime_available()):
        if device.type != "cpu":
            raise ValueError("the onnxruntime backend runs on the CPU")
        return OrtMaps.bundled(net, model_name) or OrtMaps.from_net(net)
    return TorchMaps(net)
