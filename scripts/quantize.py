"""Make the int8 curve-map graph shipped for ``--precision int8`` (onnxruntime static quantisation).

    .venv/bin/python scripts/quantize.py --data ../shared/data/sice-part1 \
        --split training/zerodce-sice/split.json --out src/zerodce/models/zerodce-int8.onnx

Calibration: 32 images of the model's own training split (never LOL), at 512 px on the long side;
weights int8 per output channel, activations uint8 per tensor (MinMax), QDQ format, so that
onnxruntime runs the convolutions with VNNI integer dot products. The graph is then cut before
its final dequantise + tanh (``zerodce.export.coded_graph``): it outputs the uint8 codes, which
the enhancer decodes with a 256-entry table inside the fused curve loop (``zerodce.coded``).
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


def pad_input_channels(model: bytes, channels: int = 4) -> bytes:
    """The maps graph with its 3-channel input zero-padded to ``channels`` before conv1."""
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


def main() -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from zerodce.data import read_split
    from zerodce.export import coded_graph, maps_graph_bytes
    from zerodce.weights import load_model

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
        fp32.write_bytes(pad_input_channels(maps_graph_bytes(load_model(args.model))))
        quantize_static(
            str(fp32),
            str(qdq),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        Path(args.out).write_bytes(coded_graph(qdq.read_bytes()))
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
