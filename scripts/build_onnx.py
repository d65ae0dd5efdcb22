"""Build the prebuilt fp32 curve-map graphs shipped beside the bundled weights.

    .venv/bin/python scripts/build_onnx.py            # rewrite src/zerodce/models/*-maps.onnx
    .venv/bin/python scripts/build_onnx.py --check    # exit 1 when a shipped graph is stale

For each bundled model in ``zerodce.export.BUNDLED_GRAPHS``: the maps graph exported exactly as the
onnxruntime backend would export it at start (``maps_graph_bytes``), with the SHA-256 of the
``.safetensors`` it came from, the model config and the precision in its ``metadata_props``
(``graph_metadata``). The enhancer uses a shipped graph only when that record matches its weights,
so rerun this after changing a bundled ``.safetensors`` and commit the result (a test fails until
then). Each graph is run in onnxruntime against the PyTorch network before it is written.

The int8 graph (``zerodce-int8.onnx``) is not built here: it needs calibration images
(``scripts/quantize.py``).
"""

from __future__ import annotations

import argparse
import sys


def main() -> int:
    import numpy as np
    import onnxruntime as ort
    import torch

    from zerodce._atomic import atomic_write_bytes
    from zerodce.export import BUNDLED_GRAPHS, bundled_graph, graph_metadata, maps_graph_bytes, with_metadata
    from zerodce.weights import bundled_path, load_model, weights_sha256

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="only report whether the shipped graphs are current")
    args = p.parse_args()

    stale = 0
    for name in BUNDLED_GRAPHS:
        path, weights = bundled_graph(name), bundled_path(name)
        net = load_model(name)
        meta = graph_metadata(net, weights_sha256(weights))
        if args.check:
            recorded = {}
            if path.is_file():
                sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
                recorded = sess.get_modelmeta().custom_metadata_map
            current = all(recorded.get(k) == v for k, v in meta.items())
            sha = meta["zerodce.weights_sha256"][:12]
            print(f"{path.name}: {'current' if current else 'STALE'} ({weights.name} sha256 {sha}...)")
            stale += not current
            continue
        graph = with_metadata(maps_graph_bytes(net), meta)
        sess = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
        x = torch.rand(2, 3, 45, 61, generator=torch.Generator().manual_seed(0)) * 0.5
        (got,) = sess.run(None, {"input": x.numpy()})
        with torch.inference_mode():
            diff = float(np.abs(got - net.curve_maps(x).numpy()).max())
        if diff > 1e-5:
            print(f"{name}: onnxruntime differs from PyTorch by {diff:.2e}; not written", file=sys.stderr)
            return 1
        atomic_write_bytes(path, graph)
        print(f"wrote {path} ({len(graph) / 1024:.0f} KiB, max |onnxruntime - torch| {diff:.1e})")
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
