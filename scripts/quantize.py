"""Make the int8 curve-map graph shipped for ``--precision int8`` (onnxruntime static quantisation).

    .venv/bin/python scripts/quantize.py --data ../shared/data/sice-part1 \
        --split training/zerodce-sice/split.json --out src/zerodce/models/zerodce-int8.onnx

Calibration: 32 images of the model's own training split (never LOL), at 512 px on the long side;
weights int8 per output channel, activations uint8 per tensor (MinMax), QDQ format, so that
onnxruntime runs the convolutions with VNNI integer dot products. The graph is then cut before
its final dequantise + tanh (``zerodce.export.coded_graph``): it outputs the uint8 codes, which
the enhancer decodes with a 256-entry table inside the fused curve loop (``zerodce.coded``).
Its metadata records the SHA-256 of the weights file, its config and ``int8`` (``graph_metadata``),
as ``scripts/build_onnx.py --check`` and the runtime (``zerodce.runtime.graphs``) expect.
Before quantisation the input is zero-padded to 4 channels inside the graph (conv1 gets a zero
weight for the extra channel): 3x3x4 = 36 products per output fit VNNI's groups of 4 bytes,
where 3x3x3 = 27 left conv1 the slowest convolution per multiply-add.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from zerodce.export import coded_graph, graph_metadata, maps_graph_bytes, pad_input_channels, with_metadata
    from zerodce.runtime.graphs import KINDS, file_sha256
    from zerodce.training.data import read_split
    from zerodce.weights import load_model, resolve_model

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="zerodce")
    p.add_argument("--data", required=True)
    p.add_argument("--split", required=True, help="split.json of the model's training run")
    p.add_argument("--out", required=True)
    p.add_argument("--images", type=int, default=32)
    args = p.parse_args()

    train, _ = read_split(Path(args.split), Path(args.data))
    batches = []
    for f in train[: args.images]:
        im = Image.open(f).convert("RGB")
        im.thumbnail((512, 512))
        batches.append({"input": (np.asarray(im, np.float32) / 255.0).transpose(2, 0, 1)[None].copy()})

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(batches)

        def get_next(self):  # noqa: ANN202
            return next(self.it, None)

    with tempfile.TemporaryDirectory() as tmp:
        fp32, qdq = Path(tmp) / "maps.onnx", Path(tmp) / "qdq.onnx"
        net = load_model(args.model)
        fp32.write_bytes(pad_input_channels(maps_graph_bytes(net)))
        quantize_static(
            str(fp32),
            str(qdq),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        meta = graph_metadata(net, file_sha256(resolve_model(args.model)), *KINDS["int8"])
        Path(args.out).write_bytes(with_metadata(coded_graph(qdq.read_bytes()), meta))
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
