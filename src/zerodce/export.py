"""ONNX export with dynamic height and width, and a self-check before success is reported.

Two graphs from one model:

- ``"image"`` (what ``zerodce export`` writes): ``input`` (B, 3, H, W) float in [0, 1] -> ``output``
  (B, 3, H, W), the curves applied inside the graph and clamped: usable with onnxruntime alone.
- ``"maps"`` (what the onnxruntime backend of :class:`~zerodce.enhance.Enhancer` runs): ``input``
  -> ``maps``, the curve parameters; the enhancer applies the curves (with its exposure, balance,
  denoise and tiling) exactly as for the PyTorch backend.

The check: ``onnx.checker`` on the file, then onnxruntime on two sizes (one not a multiple of the
Zero-DCE++ scale) against the PyTorch forward, max abs difference <= ``tol`` (1e-4).

The bundled models' maps graphs are also shipped prebuilt (:data:`BUNDLED_GRAPHS`, made by
``scripts/build_onnx.py``), so that the onnxruntime backend starts without exporting: each records
the SHA-256 of the weights file it was exported from, the model config and its precision in its
metadata (:func:`graph_metadata`), and is used only when those match the weights in use. The same
script builds the graphs the torch-free runtime runs (:mod:`zerodce.runtime.graphs`): Zero-DCE++'s
estimator alone (:func:`small_maps_graph_bytes`) and the learned denoiser's logits
(:func:`denoiser_logits_graph_bytes`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from .curves import apply_curves
from .runtime.graphs import (  # noqa: F401 - the metadata keys, re-exported
    CODES_SCALE,
    CODES_ZERO_POINT,
    GRAPHS,
    META_CONFIG,
    META_GRAPH,
    META_PRECISION,
    META_WEIGHTS_SHA256,
)

__all__ = ["export_onnx", "check_onnx", "ExportError", "BUNDLED_GRAPHS", "bundled_graph", "graph_metadata"]

Graph = Literal["image", "maps"]

# Prebuilt fp32 maps graphs of the bundled models, beside their weights (scripts/build_onnx.py).
BUNDLED_GRAPHS = {model: files[0] for (kind, model), files in GRAPHS.items() if kind == "maps"}


class ExportError(RuntimeError):
    """The exported graph failed its check."""


class _MapsGraph(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.curve_maps(x)


class _ImageGraph(_MapsGraph):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return apply_curves(x, self.net.curve_maps(x), self.net.config.n_iter).clamp(0.0, 1.0)


class _SmallMapsGraph(_MapsGraph):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net._estimate(x)  # Zero-DCE++'s estimator on the downscaled image


class _LogitsGraph(_MapsGraph):
    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.net.logits(feats)  # (B, 5, H, W) -> (B, K, H, W), padding and crop included


def _reference(net: nn.Module, x: torch.Tensor, graph: Graph) -> torch.Tensor:
    with torch.inference_mode():
        return (_ImageGraph(net) if graph == "image" else _MapsGraph(net))(x)


# torch.onnx.export keeps global state: two threads exporting at once (two enhancers built by
# concurrent service requests) fail with "GLOBALS.in_onnx_export must be True". One at a time.
_EXPORT_LOCK = threading.Lock()


def _export(wrapper: nn.Module, f: object, out_name: str, example: torch.Tensor, in_name: str = "input") -> None:
    axes = {0: "batch", 2: "height", 3: "width"}
    with _EXPORT_LOCK:
        _torch_export(wrapper, f, out_name, example, axes, in_name)


def _torch_export(
    wrapper: nn.Module, f: object, out_name: str, example: torch.Tensor, axes: dict, in_name: str = "input"
) -> None:
    torch.onnx.export(
        wrapper,
        (example,),
        f,
        input_names=[in_name],
        output_names=[out_name],
        dynamic_axes={in_name: axes, out_name: axes},
        opset_version=17,
        dynamo=False,
    )


def _example(net: nn.Module) -> torch.Tensor:
    scale = getattr(net.config, "scale", 1)
    return torch.rand(1, 3, 4 * scale + 3, 5 * scale + 1, generator=torch.Generator().manual_seed(0))


def _graph_bytes(wrapper: nn.Module, out_name: str, example: torch.Tensor, in_name: str = "input") -> bytes:
    import io
    import warnings

    wrapper = wrapper.eval().to(memory_format=torch.contiguous_format)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape arithmetic: dynamic axes are declared
        _export(wrapper, buf, out_name, example, in_name)
    return buf.getvalue()


def maps_graph_bytes(net: nn.Module) -> bytes:
    """The curve-map graph in memory (for the onnxruntime backend; checked by the tests)."""
    return _graph_bytes(_MapsGraph(net), "maps", _example(net))


def small_maps_graph_bytes(net: nn.Module) -> bytes:
    """Zero-DCE++'s estimator alone: ``input`` (B, 3, h, w), the image already downscaled by
    ``net.config.scale`` -> ``maps`` (B, 3, h, w) at that size (the caller resamples)."""
    if net.config.arch != "dcenet++":
        raise ValueError(f"the small-map graph is Zero-DCE++'s; this model is {net.config.arch}")
    example = torch.rand(1, 3, 7, 9, generator=torch.Generator().manual_seed(0))
    return _graph_bytes(_SmallMapsGraph(net), "maps", example)


def denoiser_logits_graph_bytes(net: nn.Module) -> bytes:
    """The learned denoiser's blend logits: ``features`` (B, 5, H, W) -> ``logits`` (B, K, H, W).

    The padding to a multiple of the block size and the final crop are in the graph, with their
    amounts computed from the input's shape: the example is not a multiple of the block size on
    either axis, so the tracer records the (dynamic) padding rather than a branch without it.
    """
    s = net.config.scale
    example = torch.rand(1, 5, 4 * s + 1, 5 * s + 1, generator=torch.Generator().manual_seed(0))
    return _graph_bytes(_LogitsGraph(net), "logits", example, in_name="features")


def bundled_graph(name: str) -> Path:
    """Path of the prebuilt maps graph of bundled model ``name`` (a KeyError for other names)."""
    return Path(str(resources.files("zerodce") / "models" / BUNDLED_GRAPHS[name]))


def graph_metadata(net: nn.Module, weights_sha256: str, graph: str = "maps", precision: str = "fp32") -> dict[str, str]:
    """What a prebuilt graph records about its source, and what a loader compares.

    ``graph``: ``maps``, ``small``, ``codes`` (int8) or ``denoiser-logits``
    (:data:`zerodce.runtime.graphs.KINDS`); ``net.config`` is a model or a denoiser config.
    """
    return {
        META_WEIGHTS_SHA256: weights_sha256,
        META_CONFIG: json.dumps(net.config.to_dict(), sort_keys=True),
        META_GRAPH: graph,
        META_PRECISION: precision,
    }


def with_metadata(model: bytes, meta: Mapping[str, str]) -> bytes:
    """``model`` with ``meta`` in its ``metadata_props`` (replacing entries of the same keys)."""
    import onnx

    m = onnx.load_from_string(model)
    kept = [p for p in m.metadata_props if p.key not in meta]
    del m.metadata_props[:]
    m.metadata_props.extend(kept)
    for key, value in meta.items():
        m.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    return m.SerializeToString()


def export_onnx(
    net: nn.Module, path: str | Path, graph: Graph = "image", *, check: bool = True, tol: float = 1e-4
) -> Path:
    """Write ``net`` as ONNX (opset 17, dynamic batch, height and width); check it unless told not to."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = net.eval().to(memory_format=torch.contiguous_format)
    wrapper = _ImageGraph(net) if graph == "image" else _MapsGraph(net)
    out_name = "output" if graph == "image" else "maps"
    tmp = path.with_name(path.name + ".part")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _export(wrapper, str(tmp), out_name, _example(net))
    try:
        if check:
            check_onnx(tmp, net, graph, tol)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def check_onnx(path: str | Path, net: nn.Module, graph: Graph = "image", tol: float = 1e-4) -> float:
    """onnx.checker, then onnxruntime vs PyTorch on two sizes; returns the max abs difference."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(onnx.load(str(path)))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    scale = getattr(net.config, "scale", 1)
    worst = 0.0
    gen = torch.Generator().manual_seed(0)
    for h, w in ((37, 53), (6 * scale + 5, 3 * scale + 2)):
        x = torch.rand(2, 3, h, w, generator=gen) * 0.5
        (got,) = sess.run(None, {"input": x.numpy()})
        ref = _reference(net, x, graph).numpy()
        if got.shape != ref.shape:
            raise ExportError(f"{path}: onnxruntime output shape {got.shape} != PyTorch {ref.shape}")
        worst = max(worst, float(np.abs(got - ref).max()))
    if worst > tol:
        raise ExportError(f"{path}: onnxruntime differs from PyTorch by {worst:.2e} (> {tol:.0e})")
    return worst


def coded_graph(model: bytes) -> bytes:
    """Cut a quantised maps graph before its final ``DequantizeLinear -> Tanh``.

    The graph then outputs the uint8 codes ``q`` of the last convolution, and its metadata
    carries the scale and zero point with which ``tanh((q - zero_point) * scale)`` gives the
    maps (:mod:`zerodce.coded` decodes them with a table). Raises :class:`ExportError` when the
    graph does not end that way.
    """
    import onnx
    from onnx import numpy_helper

    m = onnx.load_from_string(model)
    g = m.graph
    producer = {o: n for n in g.node for o in n.output}
    tanh = producer.get(g.output[0].name)
    dq = producer.get(tanh.input[0]) if tanh is not None and tanh.op_type == "Tanh" else None
    if dq is None or dq.op_type != "DequantizeLinear" or len(g.output) != 1:
        raise ExportError("expected a quantised graph ending in DequantizeLinear -> Tanh")
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    scale, zero_point = inits.get(dq.input[1]), inits.get(dq.input[2])
    if scale is None or zero_point is None or scale.size != 1 or zero_point.dtype.name != "uint8":
        raise ExportError("the final DequantizeLinear must be per-tensor uint8 with constant parameters")
    q = producer[dq.input[0]]
    if any(dq.input[0] in n.input for n in g.node if n is not dq):
        raise ExportError("the final convolution's codes feed other nodes")
    q.output[0] = "codes"
    out = onnx.helper.make_tensor_value_info("codes", onnx.TensorProto.UINT8, None)
    out.type.tensor_type.shape.CopyFrom(g.output[0].type.tensor_type.shape)
    g.node.remove(tanh)
    g.node.remove(dq)
    del g.output[:]
    g.output.append(out)
    for key, value in ((CODES_SCALE, repr(float(scale))), (CODES_ZERO_POINT, str(int(zero_point)))):
        m.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    onnx.checker.check_model(m)
    return m.SerializeToString()


def pad_input_channels(model: bytes, channels: int = 4) -> bytes:
    """The maps graph with its 3-channel input zero-padded to ``channels`` before conv1."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load_from_string(model)
    g = m.graph
    conv1 = next(n for n in g.node if n.op_type == "Conv" and n.input[0] == g.input[0].name)
    weight = next(i for i in g.initializer if i.name == conv1.input[1])
    w = numpy_helper.to_array(weight)
    extra = np.zeros((w.shape[0], channels - w.shape[1], *w.shape[2:]), w.dtype)
    weight.CopyFrom(numpy_helper.from_array(np.concatenate([w, extra], 1), weight.name))
    g.initializer.append(numpy_helper.from_array(np.array([0, 0, 0, 0, 0, channels - 3, 0, 0], np.int64), "pad_c"))
    g.node.insert(0, helper.make_node("Pad", [g.input[0].name, "pad_c"], ["input_padded"], name="/pad_c"))
    conv1.input[0] = "input_padded"
    onnx.checker.check_model(m)
    return m.SerializeToString()


def quantised_weights_error(model: bytes, state: Mapping[str, object]) -> float:
    """How far a QDQ graph's quantised weights are from ``state``, in quantisation steps (max).

    Each ``net.<key>_quantized`` initializer of the int8 graph (``scripts/quantize.py``) is
    dequantised with its per-channel scale and zero point and compared with the float tensor
    ``state[key]``; input channels the graph added (:func:`pad_input_channels`) must be zero.
    A graph quantised from these weights is within half a step everywhere (rounding); a graph from
    other weights is not, so this says whether the int8 graph is current without its metadata.
    Raises :class:`ExportError` when a tensor is missing from the graph.
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper

    inits = {i.name: i for i in onnx.load_from_string(model).graph.initializer}
    worst = 0.0
    for key, value in state.items():
        q_name = f"net.{key}_quantized"
        prefix = f"net.{key}_" if key.endswith("weight") else f"net.{key}_quantized_"
        names = (q_name, prefix + "scale", prefix + "zero_point")
        if any(n not in inits for n in names):
            raise ExportError(f"the quantised graph has no {q_name} (with scale and zero point)")
        q, scale, zero = (numpy_helper.to_array(inits[n]).astype(np.float64) for n in names)
        per_channel = (-1,) + (1,) * (q.ndim - 1)
        step = scale.reshape(per_channel) if scale.ndim else scale
        deq = (q - (zero.reshape(per_channel) if zero.ndim else zero)) * step
        w = np.asarray(value, dtype=np.float64)
        if deq.ndim == 4 and deq.shape[1] > w.shape[1]:  # conv1's zero channel (VNNI padding)
            worst = max(worst, float(np.abs(deq[:, w.shape[1] :] / step).max()))
            deq = deq[:, : w.shape[1]]
        if deq.shape != w.shape:
            raise ExportError(f"{q_name} has shape {deq.shape}, the weights {w.shape}")
        worst = max(worst, float((np.abs(deq - w) / step).max()))
    return worst
