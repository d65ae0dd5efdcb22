"""Backends (onnxruntime, bf16, int8) against the PyTorch reference; ONNX export and its check;
the Zero-DCE++ band path and padding against the network's own forward."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from zerodce.enhance import Enhancer
from zerodce.model import ModelConfig, build_model

pytest.importorskip("onnxruntime")

PLAIN = {"paper": True, "tile": None}


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1 / max(float(((a - b) ** 2).mean()), 1e-20))


@pytest.fixture
def fast_net():
    torch.manual_seed(1)
    return build_model(ModelConfig(arch="dcenet++", scale=12)).eval()


@pytest.mark.parametrize("which", ["full", "fast"])
def test_onnxruntime_matches_torch(small_model, fast_net, which):
    net = small_model if which == "full" else fast_net
    x = torch.rand(2, 3, 61, 83) * 0.4  # not a multiple of 12
    ort = Enhancer(net, backend="onnxruntime", **PLAIN)
    ref = Enhancer(net, backend="torch", **PLAIN)
    assert ort.backend == "onnxruntime" and ref.backend == "torch"
    assert (ort(x) - ref(x)).abs().max() < 1e-5
    with torch.no_grad():
        assert (ort.maps(x) - net.curve_maps(x)).abs().max() < 1e-5


def test_auto_picks_onnxruntime_on_cpu(small_model):
    assert Enhancer(small_model).backend == "onnxruntime"


def test_enhancers_built_in_threads_at_once(small_model):
    # Service requests build enhancers concurrently; the ONNX export behind each must not collide.
    import threading

    x = torch.rand(1, 3, 20, 24, generator=torch.Generator().manual_seed(3))
    built: list[Enhancer] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def build() -> None:
        start.wait()
        try:
            built.append(Enhancer(small_model, backend="onnxruntime", tile=None, paper=True))
        except BaseException as exc:  # noqa: BLE001 - collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(built) == 4
    first = built[0](x)
    assert all(torch.equal(e(x), first) for e in built[1:])


def test_bundled_int8_and_bf16_close_to_fp32():
    gen = torch.Generator().manual_seed(0)
    base = torch.rand(1, 3, 8, 8, generator=gen) * 0.3
    x = torch.nn.functional.interpolate(base, size=(120, 160), mode="bilinear") + 0.01 * torch.rand(
        1, 3, 120, 160, generator=gen
    )
    ref = Enhancer("zerodce", backend="torch", **PLAIN)(x)
    assert _psnr(Enhancer("zerodce", precision="int8", **PLAIN)(x), ref) > 40
    assert _psnr(Enhancer("zerodce", precision="bf16", **PLAIN)(x), ref) > 40
    with pytest.raises(ValueError, match="int8"):
        Enhancer("fast", precision="int8")


def test_fast_band_path_equals_network_forward(fast_net):
    x = torch.rand(1, 3, 157, 203) * 0.4  # bands of 16 rows, sizes not multiples of 12
    y = Enhancer(fast_net, backend="torch", **PLAIN)(x)
    with torch.no_grad():
        ref, maps = fast_net(x)
    assert maps.shape[-2:] == x.shape[-2:]  # padded, never cropped
    assert (y - ref.clamp(0, 1)).abs().max() < 1e-5


def test_export_checks_itself_and_runs_alone(tmp_path, small_model):
    import onnxruntime as ort

    from zerodce.export import ExportError, check_onnx, export_onnx

    path = export_onnx(small_model, tmp_path / "m.onnx")
    x = np.random.default_rng(0).random((1, 3, 45, 70), dtype=np.float32) * 0.3
    (y,) = ort.InferenceSession(str(path)).run(None, {"input": x})
    with torch.no_grad():
        ref, _ = small_model(torch.from_numpy(x))
    assert np.abs(y - ref.clamp(0, 1).numpy()).max() < 1e-5
    with torch.no_grad():
        small_model.conv7.bias.add_(0.5)  # the file no longer matches the network: the check must say so
    with pytest.raises(ExportError, match="differs"):
        check_onnx(path, small_model)


def test_export_cli(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "zerodce", "export", "-o", str(tmp_path / "fast.onnx"), "--model", "fast"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "checked" in r.stdout and (tmp_path / "fast.onnx").stat().st_size > 10_000


# ---- prebuilt graphs shipped beside the bundled weights (scripts/build_onnx.py) ------------------


@pytest.mark.parametrize("name", ["zerodce", "fast"])
def test_shipped_graph_records_its_weights(name):
    # Fails when a bundled .safetensors changed without rerunning scripts/build_onnx.py (and committing).
    import onnxruntime as ort

    from zerodce.export import BUNDLED_GRAPHS, bundled_graph, graph_metadata
    from zerodce.weights import bundled_path, load_model, weights_sha256

    assert name in BUNDLED_GRAPHS
    meta = ort.InferenceSession(str(bundled_graph(name))).get_modelmeta().custom_metadata_map
    want = graph_metadata(load_model(name), weights_sha256(bundled_path(name)))
    assert {k: meta.get(k) for k in want} == want, "stale: run scripts/build_onnx.py and commit its output"
    assert bundled_graph(name).stat().st_size < 1.25 * bundled_path(name).stat().st_size + 16 * 1024


@pytest.mark.parametrize("name", ["zerodce", "fast"])
def test_shipped_graph_equals_torch(name):
    import onnxruntime as ort

    from zerodce.export import bundled_graph
    from zerodce.weights import load_model

    net = load_model(name)
    x = torch.rand(2, 3, 37, 53, generator=torch.Generator().manual_seed(5)) * 0.5  # 37, 53: not multiples of 12
    (got,) = ort.InferenceSession(str(bundled_graph(name))).run(None, {"input": x.numpy()})
    with torch.no_grad():
        ref = net.curve_maps(x).numpy()
    assert got.shape == ref.shape and np.abs(got - ref).max() < 1e-5


def _no_export(*args, **kwargs):
    raise AssertionError("torch.onnx.export called")


@pytest.mark.parametrize("name", ["zerodce", "fast"])
def test_bundled_model_starts_without_export(monkeypatch, name):
    x = torch.rand(1, 3, 30, 41, generator=torch.Generator().manual_seed(2)) * 0.3
    ref = Enhancer(name, backend="torch", **PLAIN)
    monkeypatch.setattr(torch.onnx, "export", _no_export)
    enh = Enhancer(name, backend="onnxruntime", **PLAIN)
    assert enh.backend == "onnxruntime"
    assert (enh(x) - ref(x)).abs().max() < 1e-5
    assert (enh.with_curves_of(x, x) - ref(x)).abs().max() < 1e-5  # the maps graph itself, also for "fast"


def test_stale_shipped_graph_is_not_used(monkeypatch, tmp_path, caplog):
    import zerodce.export as export
    from zerodce.weights import load_model

    stale = tmp_path / "zerodce-maps.onnx"
    shipped = export.bundled_graph("zerodce").read_bytes()
    stale.write_bytes(export.with_metadata(shipped, {export.META_WEIGHTS_SHA256: "0" * 64}))
    monkeypatch.setattr(export, "bundled_graph", lambda name: stale)
    monkeypatch.setattr(torch.onnx, "export", _no_export)
    with pytest.raises(AssertionError, match="torch.onnx.export called"):
        Enhancer("zerodce", backend="onnxruntime", **PLAIN)
    monkeypatch.undo()
    monkeypatch.setattr(export, "bundled_graph", lambda name: stale)
    with caplog.at_level("WARNING"):
        enh = Enhancer("zerodce", backend="onnxruntime", **PLAIN)
    assert "does not match its weights (zerodce.weights_sha256)" in caplog.text
    x = torch.rand(1, 3, 20, 24, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert (enh.maps(x) - load_model("zerodce").curve_maps(x)).abs().max() < 1e-5
