"""int8 curve maps kept as uint8 codes: the table, the fused curve loop and the cut graph."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zerodce import coded
from zerodce.adjust import luma
from zerodce.coded import CodedMaps, apply_coded_curves, tanh_table


def _random_coded(b: int, c: int, h: int, w: int, seed: int = 0) -> CodedMaps:
    gen = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 256, (b, c, h, w), generator=gen, dtype=torch.uint8)
    lut = torch.rand(b, c, 256, generator=gen) * 2 - 1
    return CodedMaps(codes, lut)


def _paper_curves(x: np.ndarray, codes: np.ndarray, lut: np.ndarray, n_iter: int) -> np.ndarray:
    """Independent reference in float64: decode each map by indexing, LE_n = LE + A LE (1 - LE)."""
    y = x.astype(np.float64)
    b_n, m = codes.shape[:2]
    for n in range(n_iter):
        for c in range(3):
            k = 3 * n + c if m > 3 else c
            a = np.stack([lut[b, k][codes[b, k]] for b in range(b_n)])
            y[:, c] = y[:, c] + a * y[:, c] * (1 - y[:, c])
    return y


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("channels", [24, 3])
def test_coded_curves_match_the_formula(monkeypatch, fused, channels):
    if not fused:
        monkeypatch.setattr(coded, "NUMBA_INSTALLED", False)  # the decode-then-apply fallback
    elif not coded.NUMBA_INSTALLED:
        pytest.skip("numba not installed")
    maps = _random_coded(2, channels, 13, 17)
    x = torch.rand(2, 3, 13, 17, generator=torch.Generator().manual_seed(1))
    want = _paper_curves(x.numpy(), maps.codes.numpy(), maps.lut.numpy(), 8)
    y = apply_coded_curves(x.clone(), maps, 8)
    assert np.abs(y.numpy() - want).max() < 1e-5
    # A crop (strided codes) as the tiled path passes it, and the input updated in place.
    crop = maps[..., 2:9, 3:15]
    xc = x[..., 2:9, 3:15].clone()
    out = apply_coded_curves(xc, crop, 8)
    assert out.data_ptr() == xc.data_ptr()
    assert np.abs(out.numpy() - want[..., 2:9, 3:15]).max() < 1e-5


def test_tanh_table_is_the_dequantised_tanh():
    lut = tanh_table(0.01, 128, 2, 24)
    assert lut.shape == (2, 24, 256)
    assert lut[1, 5, 128] == 0 and abs(float(lut[0, 0, 228]) - np.tanh(1.0)) < 1e-6


def test_cut_graph_decodes_to_the_quantised_graph(tmp_path, small_model):
    """quantize_static on a small DCE-Net, then cut: table-decoded codes == the QDQ graph's maps."""
    quant = pytest.importorskip("onnxruntime.quantization")
    from zerodce.backends import OrtMaps
    from zerodce.export import ExportError, coded_graph, maps_graph_bytes

    gen = np.random.default_rng(0)
    batches = iter([{"input": (gen.random((1, 3, 40, 48)) * 0.5).astype(np.float32)} for _ in range(2)])

    class Reader(quant.CalibrationDataReader):
        def get_next(self):  # noqa: ANN202
            return next(batches, None)

    fp32, qdq = tmp_path / "maps.onnx", tmp_path / "qdq.onnx"
    fp32.write_bytes(maps_graph_bytes(small_model))
    quant.quantize_static(str(fp32), str(qdq), Reader(), quant_format=quant.QuantFormat.QDQ, per_channel=True,
                          activation_type=quant.QuantType.QUInt8, weight_type=quant.QuantType.QInt8)  # fmt: skip
    full, cut = OrtMaps(qdq.read_bytes()), OrtMaps(coded_graph(qdq.read_bytes()))
    assert full.coded is None and cut.coded is not None
    x = torch.rand(1, 3, 37, 53) * 0.4
    codes = cut(x)
    assert isinstance(codes, CodedMaps) and codes.codes.dtype == torch.uint8
    assert (codes.dense() - full(x)).abs().max() < 1e-5
    with pytest.raises(ExportError, match="DequantizeLinear -> Tanh"):
        coded_graph(fp32.read_bytes())


def test_bundled_int8_tiles_and_options():
    from zerodce.enhance import Enhancer

    x = torch.rand(1, 3, 70, 90, generator=torch.Generator().manual_seed(2)) * 0.3
    opts = {"exposure": 0.5, "metering": "mean", "denoise": 1.0}
    whole = Enhancer("zerodce", precision="int8", tile=None, **opts)
    tiled = Enhancer("zerodce", precision="int8", tile=32, **opts)
    assert isinstance(whole.maps(x), CodedMaps)
    y = whole(x)
    assert (tiled(x) - y).abs().max() < 1e-5
    assert abs(float(luma(y).mean()) - 0.5) < 0.02  # exposure applied to the decoded maps


def test_coded_curves_from_several_threads():
    """The service enhances in worker threads: concurrent calls give the sequential results."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(torch.rand(1, 3, 40, 50, generator=torch.Generator().manual_seed(i)), _random_coded(1, 24, 40, 50, i))
            for i in range(8)]  # fmt: skip
    want = [apply_coded_curves(x.clone(), m, 8) for x, m in jobs]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda job: apply_coded_curves(job[0].clone(), job[1], 8), jobs))
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


def test_padded_input_graph_gives_the_same_maps(small_model):
    """scripts/quantize.py pads the input to 4 channels (zero weights): the maps must not change."""
    from zerodce.backends import OrtMaps
    from zerodce.export import maps_graph_bytes, pad_input_channels

    plain = maps_graph_bytes(small_model)
    x = torch.rand(1, 3, 21, 34) * 0.5
    assert (OrtMaps(pad_input_channels(plain))(x) - OrtMaps(plain)(x)).abs().max() < 1e-6
