"""The ONNX graphs shipped in zerodce/models/ (scripts/build_onnx.py) and their torch-free loader
(zerodce.runtime.graphs): each records the weights shipped beside it, matches its PyTorch module on
sizes that are not multiples of its scale, and loads and runs without importing torch."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open

pytest.importorskip("onnxruntime")

from zerodce.runtime import graphs  # noqa: E402 - after the skip: onnxruntime is optional
from zerodce.runtime.graphs import (  # noqa: E402
    GRAPHS,
    KINDS,
    DenoiserLogitsGraph,
    GraphError,
    MapsGraph,
    SmallMapsGraph,
    bundled_graph_path,
    bundled_weights_path,
    check_graph,
    graph_config,
    load_graph,
)

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _weights_meta(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="np") as f:
        return dict(f.metadata() or {})


@pytest.fixture(scope="module")
def denoiser():
    from zerodce.denoiser import load_denoiser

    return load_denoiser()


@pytest.mark.parametrize(("kind", "model"), sorted(GRAPHS))
def test_shipped_graph_records_its_weights(kind, model):
    # Fails when a bundled .safetensors changed without rerunning scripts/build_onnx.py (and committing).
    weights = bundled_weights_path(kind, model)
    sess = load_graph(bundled_graph_path(kind, model), threads=1)
    meta = sess.get_modelmeta().custom_metadata_map
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert meta.get("zerodce.weights_sha256") == sha, "stale: run scripts/build_onnx.py and commit its output"
    recorded = _weights_meta(weights)
    config = json.loads(recorded["zerodce.denoiser"] if kind == "denoiser" else recorded["zerodce.config"])
    assert graph_config(sess) == config
    assert (meta["zerodce.graph"], meta["zerodce.precision"]) == KINDS[kind]
    check_graph(sess, kind, model)  # and the loader agrees


def test_stale_or_foreign_graph_is_refused(tmp_path, monkeypatch):
    from zerodce.export import with_metadata

    stale = tmp_path / "fast-small.onnx"
    shipped = bundled_graph_path("small", "fast").read_bytes()
    stale.write_bytes(with_metadata(shipped, {"zerodce.weights_sha256": "0" * 64}))
    with pytest.raises(GraphError, match=r"^fast-small.onnx is stale: .* fast.safetensors .*scripts/build_onnx.py$"):
        check_graph(load_graph(stale, threads=1), "small", "fast")
    with pytest.raises(GraphError, match="is not a maps graph"):
        check_graph(load_graph(bundled_graph_path("small", "fast"), threads=1), "maps", "fast")
    monkeypatch.setattr(graphs, "bundled_graph_path", lambda kind, model: stale)
    with pytest.raises(GraphError, match="stale"):
        SmallMapsGraph(threads=1)
    assert SmallMapsGraph(threads=1, verify=False).scale == 12
    monkeypatch.undo()
    with pytest.raises(GraphError, match="no shipped 'small' graph for model 'zerodce'"):
        SmallMapsGraph("zerodce")


@pytest.mark.parametrize("model", ["zerodce", "fast"])
def test_maps_graph_equals_torch(model):
    from zerodce.weights import load_model

    x = torch.rand(2, 3, 19, 23, generator=torch.Generator().manual_seed(1)) * 0.5  # not multiples of 12
    got = MapsGraph(model, threads=1)(x.numpy())
    with torch.inference_mode():
        ref = load_model(model).curve_maps(x).numpy()
    assert got.dtype == np.float32 and got.shape == ref.shape
    assert np.abs(got - ref).max() < 1e-5


def test_small_graph_equals_torch_and_gives_the_curve_maps():
    from zerodce.model import downscale
    from zerodce.weights import load_model

    net, small = load_model("fast"), SmallMapsGraph(threads=1)
    x = torch.rand(2, 3, 29, 41, generator=torch.Generator().manual_seed(2)) * 0.5  # pads to 36 x 48
    xs = downscale(x, small.scale)  # (2, 3, 3, 4)
    got = small(xs.numpy())
    with torch.inference_mode():
        assert np.abs(got - net._estimate(xs).numpy()).max() < 1e-5
        # The caller's part: bilinear (align_corners=True) to the padded size, crop: the model's maps.
        full = F.interpolate(torch.from_numpy(got), size=(36, 48), mode="bilinear", align_corners=True)[..., :29, :41]
        assert (full - net.curve_maps(x)).abs().max() < 1e-5


@pytest.mark.parametrize(("h", "w"), [(19, 22), (13, 9), (2, 3), (16, 20)])
def test_denoiser_logits_graph_equals_torch(denoiser, h, w):
    from zerodce.denoiser import denoise_features

    gen = torch.Generator().manual_seed(h * w)
    x = torch.rand(2, 3, h, w, generator=gen) * 0.2
    feats = denoise_features((x * 3).clamp(0, 1), x, torch.tensor([0.02, 0.06]), 1.0)  # (2, 5, h, w)
    got = DenoiserLogitsGraph(threads=1)(feats.numpy())
    with torch.inference_mode():
        ref = denoiser.logits(feats).numpy()
    assert got.shape == ref.shape == (2, 8, h, w)
    # The shipped logits reach tens, where one float32 step is several 1e-6 (PyTorch's own float32 is
    # 2e-5 from float64 there): 1e-5 absolute where |logit| <= 1, relative above.
    assert (np.abs(got - ref) <= 1e-5 * np.maximum(1.0, np.abs(ref))).all()


def test_int8_graph_metadata_weights_and_maps():
    from zerodce.export import quantised_weights_error

    codes_graph = MapsGraph("zerodce", "int8", threads=1)
    meta = codes_graph.session.get_modelmeta().custom_metadata_map
    assert codes_graph.coded == (float(meta["zerodce.codes_scale"]), int(meta["zerodce.codes_zero_point"]))
    assert codes_graph.config == {"arch": "dcenet", "channels": 32, "n_iter": 8, "scale": 1}
    # Quantised from the shipped weights: each weight within half a quantisation step; 2 steps off is caught.
    model = bundled_graph_path("int8", "zerodce").read_bytes()
    with safe_open(str(bundled_weights_path("int8", "zerodce")), framework="np") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
    assert quantised_weights_error(model, state) <= 0.501
    step = float(np.abs(state["conv5.weight"][0]).max()) / 127  # per-channel symmetric int8
    state["conv5.weight"][0, 0, 1, 1] += 2 * step
    assert quantised_weights_error(model, state) > 1.4
    # Its maps are the fp32 graph's to int8 precision.
    x = np.random.default_rng(0).random((1, 3, 24, 31), dtype=np.float32) * 0.4
    codes = codes_graph(x)
    scale, zero_point = codes_graph.coded
    maps = np.tanh((codes.astype(np.float32) - zero_point) * scale)
    ref = MapsGraph("zerodce", threads=1)(x)
    assert codes.dtype == np.uint8 and codes.shape == ref.shape
    assert np.abs(maps - ref).mean() < 0.003 and np.abs(maps - ref).max() < 0.02


def test_wrong_input_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\(B, 5, H, W\)"):
        DenoiserLogitsGraph(threads=1)(np.zeros((1, 3, 8, 8), np.float32))
    with pytest.raises(ValueError, match="fp32 or int8"):
        MapsGraph("zerodce", "bf16")


def test_runtime_runs_every_graph_without_torch():
    code = (
        "import sys, numpy as np\n"
        "from zerodce.runtime.graphs import DenoiserLogitsGraph, MapsGraph, SmallMapsGraph\n"
        "x = np.full((1, 3, 5, 7), 0.2, np.float32)\n"
        "MapsGraph('zerodce', threads=1)(x), MapsGraph('fast', threads=1)(x), SmallMapsGraph(threads=1)(x)\n"
        "assert MapsGraph('zerodce', 'int8', threads=1)(x).dtype == np.uint8\n"
        "assert DenoiserLogitsGraph(threads=1)(np.zeros((1, 5, 6, 9), np.float32)).shape == (1, 8, 6, 9)\n"
        "print(sorted(m for m in ('torch', 'onnx') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
