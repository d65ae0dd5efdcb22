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

from zerodce import adjust, coded, curves, denoiser, model, tone
from zerodce.core import coded as ccoded
from zerodce.core import color, filters, noise, resample
from zerodce.core import curves as ccurves
from zerodce.core import denoise as cdenoise
from zerodce.core import tone as ctone

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
    np.testing.assert_array_equal(adjust.RGB2YCC.numpy(), color.RGB_TO_YCC)
    # The inverse is what torch computed before the move (float64 inverse of the float32 matrix).
    want = torch.linalg.inv(torch.tensor(color.RGB_TO_YCC).double()).float().numpy()
    np.testing.assert_array_equal(color.YCC_TO_RGB, want)


@pytest.mark.parametrize("shape", SHAPES)
def test_colour_functions_match_torch(shape):
    x = _image(shape)
    _close(color.luma(x), adjust.luma(_t(x)))
    _close(color.srgb_to_linear(x), adjust.srgb_to_linear(_t(x)))
    _close(color.linear_to_srgb(x), adjust.linear_to_srgb(_t(x)))
    _close(color.to_ycc(x), torch.einsum("ij,bjhw->bihw", adjust.RGB2YCC, _t(x)))
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
    want = adjust.self_guided(_t(z), _t(mean_i), _t(mean_ii), _t(eps), r)
    _close(filters.self_guided(z, mean_i, mean_ii, eps, r), want)


def test_pointwise_filter_helpers_match_torch():
    a, b = _image((2, 1, 5, 6), seed=14), _image((2, 1, 5, 6), seed=15)
    np.testing.assert_allclose(filters.local_gain(a, b), adjust.local_gain(_t(a), _t(b)).numpy(), rtol=1e-7, atol=0)
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


# --- tone


def test_tone_and_curve_constants_come_from_core():
    assert (tone.MAX_CAST_RATIO, tone.U_RANGE, tone.V_FLOOR) == (ctone.MAX_CAST_RATIO, ctone.U_RANGE, ctone.V_FLOOR)
    assert (tone.AUTO_FULL, tone.AUTO_NONE, tone.MIDDLE_GREY) == (ctone.AUTO_FULL, ctone.AUTO_NONE, ctone.MIDDLE_GREY)
    assert tone.U_RANGE is ctone.U_RANGE and curves.N_ITERATIONS == ccurves.N_ITERATIONS == 8


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n_maps", [3, 24])
def test_value_and_curve_helpers_match_torch(shape, n_maps):
    x = _image(shape, seed=18)
    maps = _maps((shape[0], n_maps, *shape[-2:]))
    mm = ctone.mean_maps(maps, 8)
    _close(ctone.value(x), tone.value(_t(x)))
    _close(mm, tone.mean_maps(_t(maps), 8), 1e-6)
    v = ctone.value(x)
    off = np.array([0.5, 1.7][: shape[0]], np.float32)
    _close(ctone.curve_value(v, mm, 8), tone.curve_value(_t(v), _t(mm), 8))
    _close(ctone.curve_value(v, mm, 8, off), tone.curve_value(_t(v), _t(mm), 8, _t(off)))


@pytest.mark.parametrize("us", [(-3.0, 0.5), (-0.5,), (0.0,), (0.3, 1.0), (1.0,), (1.5, 3.0), (2.2, -8.0)])
def test_value_gain_and_apply_gain_match_torch(us):
    b = len(us)
    x = _image((b, 3, 11, 14), seed=19)
    maps = _maps((b, 24, 11, 14))
    mm, v, u = ctone.mean_maps(maps, 8), ctone.value(x), np.array(us, np.float32)
    gain = ctone.value_gain(v, mm, 8, u)
    want = tone.value_gain(_t(v), _t(mm), 8, _t(u))
    _close(gain, want)
    _close(ctone.apply_gain(x, gain), tone.apply_gain(_t(x), _t(gain)))


@pytest.mark.parametrize("us", [(0.0,), (0.5,), (1.0,), (2.0,), (0.25, 1.0)])
@pytest.mark.parametrize("n_maps", [3, 24])
def test_curve_saturation_matches_torch(us, n_maps):
    b = len(us)
    x = _image((b, 3, 9, 13), seed=20, hi=0.5)
    maps = _maps((b, n_maps, 9, 13), seed=21)
    u = np.array(us, np.float32)
    y = ctone.apply_gain(x, ctone.value_gain(ctone.value(x), ctone.mean_maps(maps, 8), 8, u))
    _close(ctone.curve_saturation(x, maps, 8, y, u), tone.curve_saturation(_t(x), _t(maps), 8, _t(y), _t(u)))


def test_pointwise_tone_functions_are_independent_of_bands(monkeypatch):
    """The band loops: a band of a single row gives what one band of the whole image gives."""
    from zerodce.core import _bands

    x = _image((2, 3, 9, 13), seed=22, hi=0.5)
    maps = _maps((2, 24, 9, 13), seed=23)
    u = np.array([0.4, 1.8], np.float32)
    mm = ctone.mean_maps(maps, 8)

    def run() -> list[np.ndarray]:
        gain = ctone.value_gain(ctone.value(x), mm, 8, u)
        y = ctone.apply_gain(x, gain)
        return [gain, y, ctone.curve_saturation(x, maps, 8, y, u), ctone.apply_cast(y, np.ones((2, 3), np.float32))]

    whole = run()
    monkeypatch.setattr(_bands, "BAND_PIXELS", 1)
    monkeypatch.setattr(ctone, "row_bands", lambda h, w: _bands.row_bands(h, w, 1))
    for a, b in zip(run(), whole, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("metering", ["mean", "linear", "centre"])
def test_solve_exposure_matches_torch(metering):
    """Within 1e-4 of u: the bisection halves an 11-wide bracket 18 times (4e-5); a metered value
    within rounding of its target may decide one late step the other way."""
    x = _image((2, 3, 24, 31), seed=24, hi=0.3)
    mm = ctone.mean_maps(_maps((2, 24, 24, 31), seed=25), 8)
    target = np.array([0.45, 0.2], np.float32)
    got = ctone.solve_exposure(x, mm, 8, target, metering)
    want = tone.solve_exposure(_t(x), _t(mm), 8, _t(target), metering)
    _close(got, want, 1e-4)
    out = ctone.apply_gain(x, ctone.value_gain(ctone.value(x), mm, 8, got))
    np.testing.assert_allclose(color.metered(out, metering), target, atol=2e-3)


def test_solve_exposure_at_the_ends_of_its_range():
    x = np.full((2, 3, 4, 4), 0.2, np.float32)
    mm = np.zeros((2, 8, 4, 4), np.float32)
    target = np.array([1.5, 0.0001], np.float32)  # out of reach, above and below
    u = ctone.solve_exposure(x, mm, 8, target)
    _close(u, tone.solve_exposure(_t(x), _t(mm), 8, _t(target)), 1e-4)
    assert u[0] > 2.99 and u[1] < -7.99


@pytest.mark.parametrize("balance", [0.0, 0.6, 1.0, "per-image"])
def test_cast_correction_matches_torch(balance):
    y = _image((2, 3, 10, 12), seed=26) * np.array([1.0, 0.8, 0.5], np.float32).reshape(1, 3, 1, 1)
    bal = np.array([0.3, 1.0], np.float32) if balance == "per-image" else balance
    tbal = _t(bal) if balance == "per-image" else balance
    gains = ctone.cast_gains(y, bal)
    _close(gains, tone.cast_gains(_t(y), tbal))
    _close(ctone.apply_cast(y, gains), tone.apply_cast(_t(y), _t(gains)))


@pytest.mark.parametrize("shape", [(1, 3, 5, 7), (2, 3, 300, 200)])
def test_key_and_auto_strength_match_torch(shape):
    for scale in (0.05, 0.3, 1.0):
        x = _image(shape, seed=27) * np.float32(scale)
        _close(ctone.key(x), tone.key(_t(x)), 1e-6)
        _close(ctone.auto_strength(x), tone.auto_strength(_t(x)))


# --- curves


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n_maps", [3, 24])
def test_apply_curves_matches_torch(shape, n_maps):
    x = _image(shape, seed=28)
    maps = _maps((shape[0], n_maps, *shape[-2:]), seed=29)
    want = curves.apply_curves(_t(x), _t(maps), 8)
    got = ccurves.apply_curves(x, maps, 8)
    _close(got, want)
    assert got is not x
    xi = x.copy()
    assert ccurves.apply_curves(xi, maps, 8, inplace=True) is xi
    _close(xi, curves.apply_curves(_t(x), _t(maps), 8, inplace=True))
    _close(ccurves.le_curve(x, maps[:, :3]), curves.le_curve(_t(x), _t(maps[:, :3])))


def test_apply_curves_on_a_band_view_and_bad_maps():
    x = _image((1, 3, 40, 30), seed=30)
    maps = _maps((1, 24, 40, 30), seed=31)
    band = x[..., 10:20, :]
    want = curves.apply_curves(_t(band), _t(maps[..., 10:20, :]), 8)
    ccurves.apply_curves(band, maps[..., 10:20, :], 8, inplace=True)  # writes through the view
    _close(x[..., 10:20, :], want)
    with pytest.raises(ValueError, match="expected 3 or 24"):
        ccurves.apply_curves(x, maps[:, :6], 8)


# --- coded maps


def _coded(b: int, c: int, h: int, w: int, seed: int = 0) -> tuple[ccoded.CodedMaps, coded.CodedMaps]:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, (b, c, h, w), dtype=np.uint8)
    lut = np.stack([ccoded.tanh_table(s, zp, 1, c)[0] for s, zp in ((0.02, 128), (0.015, 120))[:b]])
    return ccoded.CodedMaps(codes, lut), coded.CodedMaps(torch.from_numpy(codes), torch.from_numpy(lut))


def test_tanh_table_and_dense_match_torch():
    _close(ccoded.tanh_table(0.013, 131, 2, 5), coded.tanh_table(0.013, 131, 2, 5), 1e-6)
    mine, theirs = _coded(2, 24, 9, 7)
    np.testing.assert_array_equal(mine.dense(), theirs.dense().numpy())
    np.testing.assert_array_equal(mine[..., 2:5, 1:6].dense(), theirs[..., 2:5, 1:6].dense().numpy())
    assert ccoded.dense_maps(mine[..., :3, :]).shape == (2, 24, 3, 7)
    with pytest.raises(IndexError):
        mine[0]


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("channels", [24, 3])
def test_apply_coded_curves_matches_torch(monkeypatch, fused, channels):
    if not fused:
        monkeypatch.setattr(ccoded, "NUMBA_INSTALLED", False)  # the numpy fallback
    elif not ccoded.NUMBA_INSTALLED:
        pytest.skip("numba not installed")
    mine, theirs = _coded(2, channels, 13, 17, seed=32)
    x = _image((2, 3, 13, 17), seed=33)
    want = curves.apply_curves(_t(x), theirs.dense(), 8)
    xi = x.copy()
    assert ccoded.apply_coded_curves(xi, mine, 8) is xi
    _close(xi, want)
    crop = x[..., 2:9, 3:15].copy()  # a crop of the codes (strided), as tiles pass them
    _close(ccoded.apply_coded_curves(crop, mine[..., 2:9, 3:15], 8), want[..., 2:9, 3:15])


# --- resampling


@pytest.mark.parametrize("s", [1, 2, 3, 12])
@pytest.mark.parametrize("size", [(1, 1), (25, 13), (24, 36), (7, 40)])
def test_downscale_matches_torch(s, size):
    x = _image((2, 3, *size), seed=34)
    got = resample.downscale(x, s)
    _close(got, model.downscale(_t(x), s))
    # and the padded interpolation it stands for
    h, w = size
    xp = F.pad(_t(x), (0, -w % s, 0, -h % s), mode="replicate") if (h % s or w % s) else _t(x)
    small = F.interpolate(xp, size=(xp.shape[-2] // s, xp.shape[-1] // s), mode="bilinear", align_corners=False)
    _close(got, small)


@pytest.mark.parametrize(("hs", "hp", "r0", "r1"), [(3, 25, 0, 25), (5, 48, 7, 30), (1, 10, 2, 6), (4, 1, 0, 1)])
def test_upsample_rows_and_cols_match_torch(hs, hp, r0, r1):
    small = _maps((2, 3, hs, 6), seed=35)
    wp = 29
    cols = resample.upsample_cols(small, wp)
    want_cols = F.interpolate(_t(small), size=(hs, wp), mode="bilinear", align_corners=True)
    _close(cols, want_cols, 1e-6)
    got = resample.upsample_rows(cols, hp, r0, r1)
    _close(np.ascontiguousarray(got), model.upsample_rows(want_cols, hp, r0, r1), 1e-6)
    full = F.interpolate(_t(small), size=(hp, wp), mode="bilinear", align_corners=True)[..., r0:r1, :]
    _close(np.ascontiguousarray(got), full, 1e-6)


@pytest.mark.parametrize("s", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("size", [(1, 1), (1, 7), (6, 1), (5, 9), (16, 12)])
def test_upsample_bilinear_matches_torch(s, size):
    z = _maps((2, 8, *size), seed=36) * np.float32(4)
    want = F.interpolate(_t(z), scale_factor=s, mode="bilinear", align_corners=False)
    _close(resample.upsample_bilinear(z, s), want, 4e-6)  # logits up to 4: 1e-6 relative


# --- learned denoiser


def test_denoiser_config_and_constants_come_from_core():
    assert denoiser.DenoiserConfig is cdenoise.DenoiserConfig
    assert denoiser.LUMA_BANK is cdenoise.LUMA_BANK and denoiser.CHROMA_BANK is cdenoise.CHROMA_BANK
    assert (denoiser.FADE_KNEE, denoiser.NOISE_SCALE, denoiser.GAIN_RADIUS) == (5.0, 0.05, 2)
    assert cdenoise.DenoiserConfig(width=8).to_dict() == {"arch": "gain-denoise", "width": 8, "depth": 5, "scale": 4}
    with pytest.raises(ValueError, match="depth"):
        cdenoise.DenoiserConfig(depth=1)


def _net(seed: int = 0) -> denoiser.DenoiseNet:
    torch.manual_seed(seed)
    net = denoiser.DenoiseNet(denoiser.DenoiserConfig(width=8, depth=3, scale=4)).eval()
    with torch.no_grad():
        net.convs[-1].weight.normal_(0.0, 0.5)  # not the zero init: weights that differ per pixel
        net.convs[-1].bias.normal_(0.0, 0.5)
    return net


def _logits_fn(net: denoiser.DenoiseNet):  # noqa: ANN202
    def run(feats: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return net.logits(torch.from_numpy(feats)).numpy()

    return run


@pytest.mark.parametrize("shape", [(1, 3, 1, 9), (2, 3, 21, 14), (1, 3, 32, 40)])
def test_denoise_features_bank_and_blend_match_torch(shape):
    x = _noisy_scene(shape, seed=37) * np.float32(0.25)
    y = np.clip(x * np.float32(3.0), 0, 1)
    sigma = np.array([0.01, 0.02][: shape[0]], np.float32)
    feats = cdenoise.denoise_features(y, x, sigma, 1.5)
    _close(feats, denoiser.denoise_features(_t(y), _t(x), _t(sigma), 1.5), 2e-5)  # noise / 0.05: 1e-6 * 20
    noise_std = feats[:, 3:4] * np.float32(cdenoise.NOISE_SCALE)
    ycc = color.to_ycc(y)
    for filt, z in ((cdenoise.LUMA_BANK, ycc[:, :1]), (cdenoise.CHROMA_BANK, ycc[:, 1:])):
        _close(cdenoise.bank(z, noise_std, filt), denoiser._bank(_t(z), _t(noise_std), filt))
    logits = _maps((shape[0], 8, *shape[-2:]), seed=38) * np.float32(3)
    fade = filters.chroma_weight(feats[:, 4:5], np.float32(0.1))
    bound = np.float32(2.0)
    want = denoiser.blend(_t(y), _t(noise_std), _t(logits), _t(fade), bound)
    _close(cdenoise.blend(y, noise_std, logits, fade, bound), want)
    _close(cdenoise.blend(y, noise_std, logits), denoiser.blend(_t(y), _t(noise_std), _t(logits)))


@pytest.mark.parametrize("chroma", [False, True])
def test_learned_denoise_matches_torch(chroma):
    net = _net()
    x = _noisy_scene((2, 3, 30, 22), seed=39) * np.float32(0.25)
    y = np.clip(x * np.float32(3.0), 0, 1)
    sigma = np.array([0.01, 0.004], np.float32)
    cs = sigma / 3 if chroma else None
    got = cdenoise.learned_denoise(_logits_fn(net), y, x, 2.0, sigma, cs)
    with torch.inference_mode():
        want = denoiser.learned_denoise(net, _t(y), _t(x), 2.0, _t(sigma), None if cs is None else _t(cs))
    _close(got, want)
    assert cdenoise.learned_denoise(_logits_fn(net), y, x, 0.0, sigma) is y
    assert cdenoise.learned_halo(net.config) == denoiser.learned_halo(net.config)
    assert cdenoise.bank_radius() == denoiser.bank_radius()
