"""zerodce.core, the torch-free inference maths, pinned to the torch implementations it twins.

Every numpy function is run on the inputs its torch twin gets and compared: float32 results within
1e-5 absolute unless a test says why not (a different float32 summation order in a long sum, or a
search whose decisions sit at rounding distance from a threshold).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zerodce import adjust
from zerodce.core import color, filters, noise

ATOL = 1e-5
# Odd sizes, a single row and column, a batch of two.
SHAPES = [(1, 3, 1, 9), (1, 3, 9, 1), (2, 3, 7, 11), (1, 3, 16, 16), (1, 3, 33, 20)]


def _image(shape: tuple[int, ...], seed: int = 0, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """Uniform values in [lo, hi], with exact 0 and 1 and values next to them sprinkled in."""
    rng = np.random.default_rng(seed)
    x = (lo + (hi - lo) * rng.random(shape)).astype(np.float32)
    flat = x.reshape(-1)
    edges = np.array([0.0, 1e-4, 1e-3, 0.04045, 0.0031308, 1 - 1e-4, 1.0], np.float32)
    idx = rng.choice(flat.size, size=min(flat.size, 2 * len(edges)), replace=False)
    flat[idx] = np.resize(edges, idx.size)
    return x


def _maps(shape: tuple[int, ...], seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) * 2 - 1).astype(np.float32)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def _close(got: np.ndarray, want: torch.Tensor | np.ndarray, atol: float = ATOL) -> None:
    want = want.numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == np.float32, got.dtype
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    assert err.max(initial=0.0) <= atol, f"max error {err.max()} at {np.unravel_index(err.argmax(), err.shape)}"


def _rel_close(got: np.ndarray, want: torch.Tensor, rtol: float) -> None:
    want = want.numpy().astype(np.float64)
    assert got.shape == want.shape
    assert np.all(np.abs(got - want) <= rtol * np.abs(want) + 1e-12), (got, want)


# --- the package itself


def test_core_imports_no_torch():
    """Every core module imports, without torch and without numba (imported on first use only),
    in a fresh interpreter."""
    code = (
        "import importlib, pkgutil, sys\n"
        "import zerodce.core\n"
        "names = [m.name for m in pkgutil.iter_modules(zerodce.core.__path__)]\n"
        "assert {'color', 'filters', 'noise'} <= set(names), names\n"
        "for name in names:\n"
        "    importlib.import_module('zerodce.core.' + name)\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert 'numba' not in sys.modules, 'numba imported eagerly'\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# --- color


def test_adjust_constants_come_from_core():
    assert adjust.LUMA is color.LUMA and adjust.LUMINANCE_709 is color.LUMINANCE_709
    assert adjust.THUMB_SIDE == color.THUMB_SIDE and adjust.CHROMA_BOUND is filters.CHROMA_BOUND
    assert adjust.CHROMA_KNEE is filters.CHROMA_KNEE
    assert adjust.NOISE_PATCH == noise.NOISE_PATCH and adjust.NOISE_PATCHES == noise.NOISE_PATCHES
    assert adjust.texture_threshold is noise.texture_threshold  # the torch estimator's threshold is core's
    np.testing.assert_array_equal(adjust._RGB2YCC.numpy(), color.RGB_TO_YCC)
    # The inverse is what torch computed before the move (float64 inverse of the float32 matrix).
    want = torch.linalg.inv(torch.tensor(color.RGB_TO_YCC).double()).float().numpy()
    np.testing.assert_array_equal(color.YCC_TO_RGB, want)


@pytest.mark.parametrize("shape", SHAPES)
def test_colour_functions_match_torch(shape):
    x = _image(shape)
    _close(color.luma(x), adjust.luma(_t(x)))
    _close(color.srgb_to_linear(x), adjust.srgb_to_linear(_t(x)))
    _close(color.linear_to_srgb(x), adjust.linear_to_srgb(_t(x)))
    _close(color.to_ycc(x), torch.einsum("ij,bjhw->bihw", adjust._RGB2YCC, _t(x)))
    _close(color.from_ycc(color.to_ycc(x)), _t(x), 2e-6)  # the inverse
    _close(color.centre_weights(*shape[-2:]), adjust.centre_weights(*shape[-2:]), 1e-7)
    for m in color.METERINGS:
        _close(color.metered(x, m), adjust.metered(_t(x), m))


def test_colour_functions_on_views():
    """Non-contiguous inputs (a crop of a batch) give what their copies give."""
    x = _image((2, 3, 12, 15))[..., 2:9, 3:13]
    np.testing.assert_array_equal(color.luma(x), color.luma(x.copy()))
    np.testing.assert_array_equal(color.to_ycc(x), color.to_ycc(x.copy()))


def test_metered_rejects_unknown_metering():
    with pytest.raises(ValueError, match="metering"):
        color.metered(np.zeros((1, 3, 2, 2), np.float32), "spot")


@pytest.mark.parametrize("size", [(1200, 900), (1000, 777), (300, 257), (257, 300), (256, 100), (40, 3000)])
def test_thumbnail_matches_torch_area(size):
    """Bins overlap at non-integer factors (1200x900 -> 256x192, 1000x777 -> 256x199)."""
    x = _image((1, 3, *size), seed=2)
    got, want = color.thumbnail(x), adjust.thumbnail(_t(x))
    assert got.shape == tuple(want.shape)
    _close(got, want, 2e-6)


@pytest.mark.parametrize(("src", "dst"), [((7, 5), (3, 2)), ((9, 13), (4, 6)), ((5, 5), (5, 2)), ((10, 3), (1, 1))])
def test_area_resize_matches_adaptive_pooling(src, dst):
    x = _image((2, 2, *src), seed=3)
    _close(color.area_resize(x, dst), F.adaptive_avg_pool2d(_t(x), dst), 1e-6)


# --- noise


@pytest.mark.parametrize("shape", [(1, 3, 2, 9), (2, 3, 7, 11), (1, 1, 40, 30), (1, 3, 64, 48)])
def test_noise_sigma_matches_torch(shape):
    x = _image(shape, seed=4)
    got, want = noise.noise_sigma(x), adjust.noise_sigma(_t(x))
    assert got.shape == tuple(want.shape) and got.dtype == np.float32
    _rel_close(got, want, 1e-5)  # a float32 sum over the image, in another order


def test_gradient_form_and_eigenvalue_match_torch():
    np.testing.assert_allclose(noise.gradient_form(7), adjust._gradient_form(7).numpy(), atol=0)
    p = np.random.default_rng(5).random((500, 49))
    assert noise.smallest_eigenvalue(p) == pytest.approx(adjust._smallest_eigenvalue(torch.from_numpy(p)), rel=1e-9)


def test_texture_threshold_is_seeded_and_cached():
    assert noise.texture_threshold() == noise.texture_threshold()
    assert noise.texture_threshold.cache_info().hits >= 1
    # Against the value from a fresh simulation with the same seed, and the quantile's meaning.
    p = np.random.default_rng(0).standard_normal((20_000, 7, 7))
    e = np.square(np.diff(p, axis=1)).sum((1, 2)) + np.square(np.diff(p, axis=2)).sum((1, 2))
    assert np.mean(e <= noise.texture_threshold()) == pytest.approx(0.99, abs=1e-4)


def _noisy_scene(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """A smooth gradient with an edge and texture, plus Gaussian noise (values within [0, 1])."""
    b, c, h, w = shape
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = 0.2 + 0.4 * xx + 0.2 * (yy > 0.5) + 0.05 * np.sin(40 * xx) * (xx > 0.6)
    x = base[None, None] * np.array([1.0, 0.8, 0.6][:c])[None, :, None, None]
    x = x + rng.normal(0.0, 0.02, (b, c, h, w))
    return np.clip(x, 0, 1).astype(np.float32)


@pytest.mark.parametrize("shape", [(1, 3, 6, 40), (2, 3, 48, 37), (1, 3, 200, 150), (1, 1, 64, 64)])
def test_noise_levels_match_torch(shape):
    """Relative 1e-4: the float32 channel mix and the float64 sums run in another order, and a
    patch at the texture threshold may land on the other side."""
    x = _noisy_scene(shape, seed=6)
    _rel_close(noise.noise_level(x), adjust.noise_level(_t(x)), 1e-4)
    if shape[1] == 3:
        _rel_close(noise.chroma_noise_level(x), adjust.chroma_noise_level(_t(x)), 1e-4)
        (gl, gc), (wl, wc) = noise.luma_chroma_noise(x), adjust.luma_chroma_noise(_t(x))
        _rel_close(gl, wl, 1e-4)
        _rel_close(gc, wc, 1e-4)
        mixes = (color.LUMA, *noise.CHROMA_MIXES)
        _rel_close(noise.noise_levels(x, mixes, iters=1), adjust.noise_levels(_t(x), mixes, iters=1), 1e-4)


def test_noise_level_is_zero_below_a_patch():
    assert noise.noise_level(np.ones((2, 3, 6, 50), np.float32)).tolist() == [0.0, 0.0]


# --- filters


def _box64(x: np.ndarray, r: int) -> np.ndarray:
    return adjust.box(torch.from_numpy(x.astype(np.float64)), r).numpy()


@pytest.mark.parametrize("r", [0, 1, 2, 3, 4, 6])
@pytest.mark.parametrize("shape", [(1, 1, 1, 9), (1, 2, 9, 1), (2, 3, 7, 11), (1, 1, 40, 33)])
def test_box_matches_torch(shape, r):
    x = _image(shape, seed=7)
    got = filters.box(x, r)
    _close(got, adjust.box(_t(x), r), 1e-6)
    inplace = x.copy()
    assert filters.box(inplace, r, out=inplace) is inplace
    np.testing.assert_array_equal(inplace, got)  # in place, the same numbers


def test_box_bands_and_views():
    """Several bands of rows (a narrow band size), in place, on a strided view of a larger array."""
    big = _image((2, 3, 50, 31), seed=8)
    view = big[:, 1:3, 4:45, 2:29]
    want = _box64(np.ascontiguousarray(view), 3)
    old = filters.BOX_PIXELS
    try:
        filters.BOX_PIXELS = 7 * 33  # 7 rows a band: 6 bands
        got = filters.box(view, 3)
        filters.box(view, 3, out=view)
    finally:
        filters.BOX_PIXELS = old
    _close(got, want, 1e-6)
    _close(view, want, 1e-6)


def test_box_keeps_float32_accuracy_on_a_large_image():
    """No running sum across the image: 3000 x 2000 of values near 1 stay within float32 rounding."""
    rng = np.random.default_rng(9)
    x = (0.9 + 0.1 * rng.random((1, 1, 3000, 2000))).astype(np.float32)
    for r in (2, 8):
        err = np.abs(filters.box(x, r).astype(np.float64) - _box64(x, r)).max()
        assert err < 4e-7, (r, err)


@pytest.mark.parametrize("r", [1, 2, 4])
def test_guided_filters_match_torch(r):
    g = _image((2, 1, 13, 17), seed=10)
    src = _image((2, 1, 13, 17), seed=11)
    eps = (np.random.default_rng(12).random((2, 1, 13, 17)) * 1e-2).astype(np.float32)
    _close(filters.guided_filter(g, src, r, eps), adjust.guided_filter(_t(g), _t(src), r, _t(eps)))
    _close(filters.guided_filter(g, src, r, 1e-3), adjust.guided_filter(_t(g), _t(src), r, 1e-3))
    z = _image((2, 2, 13, 17), seed=13)
    _close(filters.guided_filter(z, z, r, eps), adjust.guided_filter(_t(z), _t(z), r, _t(eps)))
    mean_i, mean_ii = filters.box(z, r), filters.box(z * z, r)
    want = adjust._self_guided(_t(z), _t(mean_i), _t(mean_ii), _t(eps), r)
    _close(filters.self_guided(z, mean_i, mean_ii, eps, r), want)


def test_pointwise_filter_helpers_match_torch():
    a, b = _image((2, 1, 5, 6), seed=14), _image((2, 1, 5, 6), seed=15)
    _close(filters.local_gain(a, b), adjust.local_gain(_t(a), _t(b)), 1e-4 * 255)  # gains up to 255: relative 1e-7
    lim = np.float32(0.05) * _image((2, 1, 5, 6), seed=16)
    _close(filters.bound_change(a, b, lim), adjust.bound_change(_t(a), _t(b), _t(lim)))
    knee = np.array([0.0, 0.03], np.float32).reshape(2, 1, 1, 1)
    _close(filters.chroma_weight(a, knee), adjust.chroma_weight(_t(a), _t(knee)))
    assert filters.denoise_halo(3) == adjust.denoise_halo(3)


@pytest.mark.parametrize("radius", [1, 2, 3])
@pytest.mark.parametrize("shape", [(1, 3, 1, 9), (2, 3, 23, 17), (1, 3, 40, 64)])
def test_gain_aware_denoise_matches_torch(shape, radius):
    x = _noisy_scene(shape, seed=17) * np.float32(0.3)
    y = np.clip(x * np.float32(2.5), 0, 1)
    sigma = np.array([0.006, 0.01][: shape[0]], np.float32)
    cs = sigma / 2
    for strength, chroma in ((1.0, None), (2.5, cs)):
        got = filters.gain_aware_denoise(y, x, strength, sigma, radius, chroma)
        want = adjust.gain_aware_denoise(_t(y), _t(x), strength, _t(sigma), radius, None if chroma is None else _t(cs))
        _close(got, want)
    assert filters.gain_aware_denoise(y, x, 0.0, sigma) is y
