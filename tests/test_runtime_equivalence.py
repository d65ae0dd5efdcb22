"""The light runtime (numpy + onnxruntime, :class:`zerodce.runtime.session.Session`) against the
PyTorch pipeline (:class:`zerodce.torch_enhance.Enhancer`): every bundled model and option
combination on small inputs, whole and tiled, float and 8-bit.

The networks differ only by float rounding (onnxruntime against PyTorch: about 1e-7 on the maps),
and the maths after them is the same, so float outputs must agree within 1e-5 (measured: at most
8.3e-7 over these cases) and 8-bit outputs within one level. (The exposure search compares a metered
level with its target 18 times: an input whose level lands within rounding of a bisection midpoint
could move the exposure scalar by one step, 11 / 2^18; these inputs do not.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zerodce.options import Options
from zerodce.runtime.session import Session
from zerodce.torch_enhance import Enhancer

pytest.importorskip("onnxruntime")

CONTROLS = [
    {},
    {"preset": "bright"},
    {"preset": "night"},
    {"paper": True},
    {"strength": 0.5, "balance": 1.0},
    {"exposure": 0.6, "metering": "mean"},
    {"exposure": 0.3, "metering": "linear", "denoise": 0.0},
    {"denoiser": "learned", "denoise": 1.0},
]


def _image(h: int, w: int, seed: int) -> np.ndarray:
    g = np.random.default_rng(seed)
    ramp = np.linspace(0.02, 0.35, w, dtype=np.float32)[None, None, None, :]
    tint = np.array([1.0, 0.8, 0.6], np.float32)[None, :, None, None]
    x = ramp * tint + g.normal(0, 0.02, (1, 3, h, w)).astype(np.float32)
    return np.clip(x, 0, 1).astype(np.float32)


@pytest.mark.parametrize("model", ["zerodce", "fast"])
@pytest.mark.parametrize("controls", CONTROLS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default")
def test_session_equals_the_torch_pipeline(model, controls):
    opts = Options(model=model, backend="onnxruntime", tile=None, **controls)
    x = _image(37, 53, 1)
    got = Session(opts).run_float(x)
    want = Enhancer(options=opts)(torch.from_numpy(x)).numpy()
    diff = float(np.abs(got - want).max())
    assert diff < 1e-5, f"max difference {diff:.2e}"


@pytest.mark.parametrize("model,tile", [("zerodce", 24), ("fast", 16)])
def test_session_tiled_equals_torch_whole(model, tile):
    opts = Options(model=model, backend="onnxruntime", preset="night")
    x = _image(50, 70, 2)
    got = Session(opts.replace(tile=tile)).run_float(x)
    want = Enhancer(options=opts.replace(tile=None))(torch.from_numpy(x)).numpy()
    assert float(np.abs(got - want).max()) < 1e-5


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_session_integer_path_within_one_level_of_torch(precision):
    opts = Options(backend="onnxruntime", precision=precision, tile=None)
    img = (_image(41, 29, 3) * 255).round().astype(np.uint8)
    x = img.transpose(0, 1, 2, 3)
    got = Session(opts).run_integer(x, 255)
    want = Enhancer(options=opts).enhance_integer(torch.from_numpy(np.ascontiguousarray(x)), 255).numpy()
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_session_video_scalars_equal_torch():
    opts = Options(backend="onnxruntime", tile=None)
    x = np.concatenate([_image(30, 40, s) for s in range(3)])
    follow = lambda levels: np.full_like(levels, float(levels.mean()))  # noqa: E731
    got = Session(opts).follow_scalars(x, follow)
    want = Enhancer(options=opts).follow_scalars(x, follow)
    np.testing.assert_allclose(got, want, atol=1e-3)
