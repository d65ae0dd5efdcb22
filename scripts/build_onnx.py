"""Build the ONNX graphs shipped beside the bundled weights; stamp and check the int8 one.

    .venv/bin/python scripts/build_onnx.py            # rewrite the graphs in src/zerodce/models/
    .venv/bin/python scripts/build_onnx.py --check    # report each graph current / STALE; exit 1 if any is stale

The graphs are those of ``zerodce.runtime.graphs.GRAPHS``:

- ``zerodce-maps.onnx``, ``fast-maps.onnx``: a model's curve maps at full resolution, exported exactly
  as the onnxruntime backend would export them at start (``zerodce.export.maps_graph_bytes``);
- ``fast-small.onnx``: Zero-DCE++'s estimator alone, on the image already downscaled by its scale;
- ``denoiser-logits.onnx``: the learned denoiser's blend logits, padding and crop included;
- ``zerodce-int8.onnx``: made by ``scripts/quantize.py`` from calibration images, never rebuilt here.

Each fp32 graph is exported from the PyTorch module with, in its ``metadata_props``, the SHA-256 of
the ``.safetensors`` it came from, that file's config, the graph kind and the precision
(``zerodce.export.graph_metadata``), then run in onnxruntime against the module on sizes that are not
multiples of its scale, and written (atomically) only if ``|onnxruntime - torch| / max(1, |torch|)``
stays within 1e-5 everywhere: the absolute difference for the curve maps (in [-1, 1]), a relative one
for the denoiser's logits, which reach about 65, where one float32 step is 8e-6 (PyTorch's own float32
logits differ from float64 by 2e-5 there).

The int8 graph's quantised weights are compared with the bundled weights: quantised from them, each is
within half a quantisation step. Then its metadata is stamped (only ``metadata_props`` change; its
output is checked bit-identical); otherwise it is STALE and must be re-quantised.

With ``--check`` nothing is written: a graph is current when its metadata records the current weights'
hash, config, kind and precision, and (fp32) it still matches the PyTorch module, which also catches
a change to the network code that left the weights alone.

Rerun this after changing a bundled ``.safetensors`` or a network, and commit the result (the tests in
``tests/test_graphs.py`` fail until then).
"""

from __future__ import annotations

import argparse
import sys

TOL = 1e-5  # on |onnxruntime - torch| / max(1, |torch|)
INT8_STEPS = 0.5 + 1e-3  # rounding, plus float32 rounding of the quantiser's own division


def _inputs(kind: str, seed: int = 0) -> list:
    """Inputs on which a graph is compared with PyTorch: batches of 2 and 1, sizes not multiples of 4 or 12."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    if kind == "denoiser":
        sizes = ((2, 45, 61), (1, 16, 20), (1, 18, 23), (1, 3, 2))  # every residue mod 4 on some axis
        # features: RGB in [0, 1], predicted noise / NOISE_SCALE in about [0, 2], sqrt(local luma)
        spread = torch.tensor([1.0, 1.0, 1.0, 2.0, 1.0]).view(1, 5, 1, 1)
        return [torch.rand(b, 5, h, w, generator=gen) * spread for b, h, w in sizes]
    sizes = ((2, 7, 11), (1, 1, 2)) if kind == "small" else ((2, 45, 61), (1, 13, 7))
    return [torch.rand(b, 3, h, w, generator=gen) * 0.5 for b, h, w in sizes]


def _reference(kind: str, net, x):  # noqa: ANN001, ANN202
    if kind == "denoiser":
        return net.logits(x)
    return net._estimate(x) if kind == "small" else net.curve_maps(x)


def compare(kind: str, net, graph: bytes) -> tuple[float, float]:  # noqa: ANN001
    """(max |onnxruntime - torch|, max |onnxruntime - torch| / max(1, |torch|)) over :func:`_inputs`."""
    import numpy as np
    import onnxruntime as ort
    import torch

    sess = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    worst_abs = worst_scaled = 0.0
    for x in _inputs(kind):
        (got,) = sess.run(None, {name: x.numpy()})
        with torch.inference_mode():
            ref = _reference(kind, net, x).numpy()
        if got.shape != ref.shape:
            return float("inf"), float("inf")
        d = np.abs(got.astype(np.float64) - ref)
        worst_abs = max(worst_abs, float(d.max()))
        worst_scaled = max(worst_scaled, float((d / np.maximum(1.0, np.abs(ref))).max()))
    return worst_abs, worst_scaled


def _recorded(graph: bytes) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load_from_string(graph).metadata_props}


def _int8(check: bool) -> bool:
    """Check the int8 graph and, unless ``check``, stamp its metadata; True when it is current."""
    import numpy as np
    import onnxruntime as ort

    from zerodce.export import graph_metadata, quantised_weights_error, with_metadata
    from zerodce.files._atomic import atomic_write_bytes
    from zerodce.runtime.graphs import KINDS, REQUANTISE, bundled_graph_path, bundled_weights_path, file_sha256
    from zerodce.weights import load_model

    path, weights = bundled_graph_path("int8", "zerodce"), bundled_weights_path("int8", "zerodce")
    if not path.is_file():
        print(f"{path.name}: STALE (missing; {REQUANTISE})")
        return False
    graph = path.read_bytes()
    net = load_model(weights)
    steps = quantised_weights_error(graph, {k: v.numpy() for k, v in net.state_dict().items()})
    meta = graph_metadata(net, file_sha256(weights), *KINDS["int8"])
    sha = meta["zerodce.weights_sha256"][:12]
    if steps > INT8_STEPS:
        off = f"quantised from other weights than {weights.name}: {steps:.1f} steps off"
        print(f"{path.name}: STALE ({off}; {REQUANTISE})")
        return False
    differ = sorted(k for k, v in meta.items() if _recorded(graph).get(k) != v)
    what = f"({weights.name} sha256 {sha}..., quantised weights within {steps:.3f} steps)"
    if check or not differ:
        why = f"; differs: {', '.join(differ)}" if differ else ""
        print(f"{path.name}: {'STALE' if differ else 'current'} {what}{why}")
        return not differ
    stamped = with_metadata(graph, meta)
    x = _inputs("maps")[0].numpy()
    sessions = [ort.InferenceSession(g, providers=["CPUExecutionProvider"]) for g in (graph, stamped)]
    runs = [sess.run(None, {"input": x})[0] for sess in sessions]
    if not np.array_equal(*runs):
        print(f"{path.name}: stamping changed its output; not written", file=sys.stderr)
        return False
    atomic_write_bytes(path, stamped)
    print(f"stamped {path} ({', '.join(differ)}) {what}")
    return True


def main() -> int:
    import onnx

    from zerodce.denoiser import load_denoiser
    from zerodce.export import (
        denoiser_logits_graph_bytes,
        graph_metadata,
        maps_graph_bytes,
        small_maps_graph_bytes,
        with_metadata,
    )
    from zerodce.files._atomic import atomic_write_bytes
    from zerodce.runtime.graphs import GRAPHS, KINDS, bundled_graph_path, bundled_weights_path, file_sha256
    from zerodce.weights import load_model

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="only report whether the shipped graphs are current")
    args = p.parse_args()

    export = {"maps": maps_graph_bytes, "small": small_maps_graph_bytes, "denoiser": denoiser_logits_graph_bytes}
    stale = 0
    for kind, model in GRAPHS:
        if kind == "int8":
            stale += not _int8(args.check)
            continue
        path, weights = bundled_graph_path(kind, model), bundled_weights_path(kind, model)
        net = load_denoiser(weights) if kind == "denoiser" else load_model(weights)
        meta = graph_metadata(net, file_sha256(weights), *KINDS[kind])
        sha = meta["zerodce.weights_sha256"][:12]
        if args.check:
            if not path.is_file():
                print(f"{path.name}: STALE (missing)")
                stale += 1
                continue
            graph = path.read_bytes()
            differ = sorted(k for k, v in meta.items() if _recorded(graph).get(k) != v)
            diff, scaled = compare(kind, net, graph)
            current = not differ and scaled <= TOL
            why = f"; differs: {', '.join(differ)}" if differ else ""
            print(f"{path.name}: {'current' if current else 'STALE'} ({weights.name} sha256 {sha}..., "
                  f"max |onnxruntime - torch| {diff:.1e}, scaled {scaled:.1e}{why})")  # fmt: skip
            stale += not current
            continue
        graph = with_metadata(export[kind](net), meta)
        onnx.checker.check_model(onnx.load_from_string(graph))
        diff, scaled = compare(kind, net, graph)
        if scaled > TOL:
            print(f"{path.name}: onnxruntime differs from PyTorch by {diff:.2e} ({scaled:.2e} scaled); not written",
                  file=sys.stderr)  # fmt: skip
            return 1
        atomic_write_bytes(path, graph)
        print(f"wrote {path} ({len(graph) / 1024:.0f} KiB, max |onnxruntime - torch| {diff:.1e}, scaled {scaled:.1e})")
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
