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
