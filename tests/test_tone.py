"""Hue-safe controls (zerodce.tone), the hue-fidelity metric and the weak-texture noise estimate.

References are written independently of the code under test: hue through the standard library's
``colorsys``, the curves through :func:`zerodce.curves.apply_curves` on grey images.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np
import pytest
import torch

from zerodce.adjust import metered, noise_level, noise_sigma
from zerodce.curves import apply_curves
from zerodce.enhance import Enhancer
from zerodce.evaluation.metrics import hue_fidelity, hue_rotation
from zerodce.tone import (
    MAX_CAST_RATIO,
    apply_cast,
    apply_gain,
    auto_strength,
    cast_gains,
    curve_saturation,
    curve_value,
    mean_maps,
    solve_exposure,
    value,
    value_gain,
)


def _rotated(rgb: np.ndarray, degrees: np.ndarray) -> np.ndarray:
    """Each uint8 pixel with its HSV hue turned by ``degrees`` (colorsys: an independent reference)."""
    out = np.empty_like(rgb)
    for idx in np.ndindex(rgb.shape[:-1]):
        h, s, v = colorsys.rgb_to_hsv(*(rgb[idx] / 255.0))
        r, g, b = colorsys.hsv_to_rgb((h + degrees[idx] / 360.0) % 1.0, s, v)
        out[idx] = np.rint(np.array([r, g, b]) * 255)
    return out


def _saturated(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """uint8 RGB pixels with HSV saturation 0.5..1 and value 0.4..1 (all carry colour)."""
    out = np.empty((*shape, 3), np.uint8)
    for idx in np.ndindex(shape):
        r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.5, 1.0), rng.uniform(0.4, 1.0))
        out[idx] = np.rint(np.array([r, g, b]) * 255)
    return out


def test_hue_rotation_recovers_known_rotations():
    rng = np.random.default_rng(0)
    x = _saturated(rng, (12, 12))
    turns = rng.choice([5.0, 20.0, 45.0, 120.0, -60.0, 179.0], size=(12, 12))
    d = hue_rotation(x, _rotated(x, turns))
    assert d.shape == (144,)
    np.testing.assert_allclose(np.sort(d), np.sort(np.abs(turns).ravel()), atol=1.5)  # 8-bit rounding


def test_false_colour_share_median_and_p99():
    rng = np.random.default_rng(1)
    x = _saturated(rng, (10, 10))
    turns = np.where(np.arange(100).reshape(10, 10) < 30, 50.0, 10.0)  # 30% beyond 30 degrees
    f = hue_fidelity(x, _rotated(x, turns))
    assert f["false_colour"] == pytest.approx(0.30)
    assert f["hue_median"] == pytest.approx(10.0, abs=1.5)
    assert f["hue_p99"] == pytest.approx(50.0, abs=1.5)


def test_hue_metric_ignores_pixels_without_colour():
    x = np.array([[[200, 60, 60], [100, 95, 90], [15, 5, 5]]], np.uint8)  # red; near grey; too dark
    y = np.array([[[200, 60, 60], [90, 95, 100], [5, 15, 5]]], np.uint8)  # the grey and dark ones turned
    assert hue_fidelity(x, y) == {"hue_median": 0.0, "hue_p99": 0.0, "false_colour": 0.0}
    assert hue_fidelity(x[:, 1:], y[:, 1:])["false_colour"] == 0.0  # none counted: no colour, no verdict


def _maps(seed: int, b: int = 1, h: int = 9, w: int = 11, lo: float = -0.3, hi: float = 0.9) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(b, 24, h, w, generator=g)


def test_curve_value_is_the_paper_curve_on_a_grey_image():
    maps = _maps(0)
    same = mean_maps(maps, 8).repeat_interleave(3, dim=1)  # each channel's map the channel mean
    v = torch.rand(1, 1, 9, 11, generator=torch.Generator().manual_seed(1))
    want = apply_curves(v.expand(1, 3, 9, 11).contiguous(), same, 8)[:, :1]
    torch.testing.assert_close(curve_value(v, mean_maps(maps, 8), 8), want, rtol=0, atol=1e-6)


def test_value_gain_keeps_hue_and_never_clips():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(1, 3, 9, 11, generator=g)
    mm = mean_maps(_maps(3), 8)
    for u in (-2.0, -0.5, 0.0, 0.4, 1.0, 1.7, 3.0):
        y = apply_gain(x, value_gain(value(x), mm, 8, torch.tensor([u])))
        ratio = y / x.clamp_min(1e-6)
        assert float((ratio.amax(1) - ratio.amin(1)).abs().max()) < 1e-4, u  # one gain per pixel
        assert float(y.max()) <= 1.0 + 1e-6


def test_value_gain_ends_and_monotonicity():
    g = torch.Generator().manual_seed(4)
    x = torch.rand(1, 3, 9, 11, generator=g) * 0.5
    mm = mean_maps(_maps(5, lo=0.0), 8)  # brightening curves: the gain is >= 1 everywhere
    v = value(x)
    assert torch.allclose(value_gain(v, mm, 8, torch.tensor([0.0])), torch.ones_like(v))
    model = curve_value(v.clamp_min(1 / 1024), mm, 8) / v.clamp_min(1 / 1024)
    torch.testing.assert_close(value_gain(v, mm, 8, torch.tensor([1.0])), model)
    prev = None
    for u in torch.linspace(-3, 3, 25):
        out = v * value_gain(v, mm, 8, u.view(1))
        if prev is not None:
            assert bool((out >= prev - 1e-6).all()), float(u)
        prev = out


def test_curve_saturation_keeps_hue_and_luma_and_only_desaturates():
    from zerodce.adjust import luma
    from zerodce.evaluation.metrics import _hue_sat_val

    g = torch.Generator().manual_seed(16)
    x = torch.rand(1, 3, 9, 11, generator=g) * 0.4
    maps = _maps(17)
    for u in (0.0, 0.5, 1.0, 2.0):
        ut = torch.tensor([u])
        y = apply_gain(x, value_gain(value(x), mean_maps(maps, 8), 8, ut))
        out = curve_saturation(x, maps, 8, y, ut)
        torch.testing.assert_close(luma(out), luma(y), rtol=0, atol=1e-6)
        hy, sy, _ = _hue_sat_val(y[0].permute(1, 2, 0).double().numpy())
        ho, so, _ = _hue_sat_val(out[0].permute(1, 2, 0).double().numpy())
        coloured = (sy > 0.05) & (so > 0.05)  # a pixel taken to grey has no hue left to compare
        d = np.abs(hy - ho)[coloured] % 360
        assert np.minimum(d, 360 - d).max() < 1e-3, u  # the hue exactly
        assert (so <= sy + 1e-6).all(), u  # never more saturated
        if u == 0.0:
            torch.testing.assert_close(out, y, rtol=0, atol=1e-6)  # no effect, no colour change
        if u == 1.0:
            assert float((sy - so).mean()) > 0.01  # these curves lift weak channels: colour is muted


@pytest.mark.parametrize("metering", ["mean", "linear", "centre"])
@pytest.mark.parametrize("target", [0.15, 0.45, 0.7])
def test_solve_exposure_hits_the_target(metering, target):
    g = torch.Generator().manual_seed(6)
    grey = torch.rand(2, 1, 24, 32, generator=g)
    x = (0.8 * grey + 0.2 * torch.rand(2, 3, 24, 32, generator=g)) * torch.tensor([0.2, 0.5]).view(2, 1, 1, 1)
    mm = mean_maps(_maps(7, b=2, h=24, w=32), 8)
    u = solve_exposure(x, mm, 8, torch.tensor([target, target]), metering)
    got = metered(apply_gain(x, value_gain(value(x), mm, 8, u)), metering)
    torch.testing.assert_close(got, torch.tensor([target, target]), rtol=0, atol=2e-3)


def test_cast_gains_bounded_and_keep_luminance():
    warm = torch.stack([torch.full((6, 6), v) for v in (0.8, 0.45, 0.15)])[None]
    assert torch.allclose(cast_gains(warm, 0.0), torch.ones(1, 3))
    g = cast_gains(warm, 1.0)
    assert float(g.max() / g.min()) == pytest.approx(MAX_CAST_RATIO, rel=1e-5)
    assert float(g[0, 2]) > 1.0 > float(g[0, 0])  # towards neutral: blue up, red down
    lum = torch.tensor([0.2126, 0.7152, 0.0722])
    lin = ((warm[0, :, 0, 0] + 0.055) / 1.055) ** 2.4
    assert float((lin * g[0] * lum).sum()) == pytest.approx(float((lin * lum).sum()), rel=1e-5)


def test_cast_correction_never_turns_coloured_light_to_its_complement():
    """A street under sodium light: everything orange. Full grey-world correction would push the
    weakly orange road past neutral into blue-purple; the bounded correction may not."""
    rng = np.random.default_rng(8)
    hues = rng.uniform(20, 40, (16, 16)) / 360  # orange .. amber
    sats = rng.uniform(0.3, 0.9, (16, 16))
    px = np.array([colorsys.hsv_to_rgb(h, s, 0.7) for h, s in zip(hues.ravel(), sats.ravel(), strict=True)])
    x = torch.from_numpy(px.T.reshape(1, 3, 16, 16).astype(np.float32))
    y = apply_cast(x, cast_gains(x, 1.0))
    to8 = lambda t: np.rint(t[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    assert hue_fidelity(to8(x), to8(y))["false_colour"] == 0.0
    # and with grey-world gains unbounded, the same photo does turn: the bound is what prevents it
    unbounded = apply_cast(x, cast_gains(x, 1.0, max_ratio=100.0))
    assert hue_fidelity(to8(x), to8(unbounded))["false_colour"] > 0.2


def test_auto_strength_ramp_in_stops_of_the_key():
    from zerodce.adjust import linear_to_srgb

    def grey(stops: float) -> torch.Tensor:
        return torch.full((1, 3, 8, 8), float(linear_to_srgb(torch.tensor(0.18 * 2**stops))))

    f = [float(auto_strength(grey(s))) for s in (-5.0, -2.2, -0.4, 0.0, 1.0)]
    assert f[0] == f[1] == 1.0 and f[2] == f[3] == f[4] == 0.0
    a, b = float(auto_strength(grey(-1.6))), float(auto_strength(grey(-0.9)))
    assert 1.0 > a > b > 0.0
    # A night scene with a few bright lamps is still a dark photo: the key is a log-average.
    night = grey(-4.0).clone()
    night[..., :2, :2] = 1.0
    assert float(auto_strength(night)) == 1.0


# --- the noise estimate ------------------------------------------------------------------------


def _textures() -> dict[str, torch.Tensor]:
    yy, xx = torch.meshgrid(torch.arange(192.0), torch.arange(192.0), indexing="ij")
    g = torch.Generator().manual_seed(9)
    blobs = torch.nn.functional.interpolate(torch.rand(1, 1, 48, 48, generator=g), size=(192, 192), mode="bicubic")
    return {
        "grating": 0.5 + 0.3 * torch.sin(xx * 0.9) * torch.sin(yy * 0.7),
        "checker": 0.3 + 0.4 * (((xx // 2) + (yy // 2)) % 2),
        "blobs": blobs[0, 0].clamp(0, 1),
        "gravel": _gravel(g),
    }


def _gravel(g: torch.Generator, n: int = 400, side: int = 192) -> torch.Tensor:
    """Stones: Voronoi cells about 10 px across, each its own shade with a light gradient, hard edges."""
    pts = torch.rand(n, 2, generator=g) * side
    shade = 0.2 + 0.6 * torch.rand(n, generator=g)
    slope = (torch.rand(n, 2, generator=g) - 0.5) * 0.02
    yy, xx = torch.meshgrid(torch.arange(float(side)), torch.arange(float(side)), indexing="ij")
    grid = torch.stack([yy, xx], -1).view(-1, 2)
    cell = torch.cdist(grid, pts).argmin(1)
    rel = grid - pts[cell]
    return (shade[cell] + (rel * slope[cell]).sum(1)).clamp(0, 1).view(side, side)


@pytest.mark.parametrize("name", ["grating", "checker", "blobs", "gravel"])
def test_noise_level_reads_texture_as_texture(name):
    clean = _textures()[name].expand(1, 3, 192, 192)
    assert float(noise_level(clean)) * 255 < 0.5  # under half a level on a clean texture
    g = torch.Generator().manual_seed(10)
    for sigma in (3.0, 8.0, 20.0):
        noisy = clean + sigma / 255 * torch.randn(1, 1, 192, 192, generator=g)  # grey noise: luma sigma = sigma
        assert float(noise_level(noisy)) * 255 == pytest.approx(sigma, rel=0.2), sigma


def test_laplacian_estimate_is_fooled_by_texture():
    """The failure the weak-texture estimate fixes (issue: gravel read as noise)."""
    clean = _textures()["checker"].expand(1, 3, 192, 192)
    assert float(noise_sigma(clean)) * 255 > 10.0
    assert float(noise_level(clean)) * 255 < 0.5


def test_noise_level_small_and_batched():
    assert noise_level(torch.rand(2, 3, 5, 5)).tolist() == [0.0, 0.0]
    g = torch.Generator().manual_seed(11)
    x = torch.full((2, 3, 96, 96), 0.5) + torch.tensor([2.0, 12.0]).view(2, 1, 1, 1) / 255 * torch.randn(
        2, 1, 96, 96, generator=g
    )
    got = (noise_level(x) * 255).tolist()
    assert got[0] == pytest.approx(2.0, rel=0.2) and got[1] == pytest.approx(12.0, rel=0.2)


# --- the enhancer's controls ---------------------------------------------------------------------


def test_strength_zero_is_the_input_and_strength_is_monotone(small_model):
    g = torch.Generator().manual_seed(12)
    x = torch.rand(1, 3, 24, 32, generator=g) * 0.25
    torch.testing.assert_close(Enhancer(small_model, tile=None, strength=0.0)(x), x, rtol=0, atol=1e-6)
    levels = [float(Enhancer(small_model, tile=None, strength=s)(x).mean()) for s in (0.0, 0.25, 0.5, 1.0)]
    assert levels == sorted(levels) and levels[-1] > levels[0] + 0.05


def test_paper_is_the_paper_and_takes_no_controls(small_model):
    g = torch.Generator().manual_seed(13)
    x = torch.rand(1, 3, 20, 24, generator=g) * 0.3
    with torch.no_grad():
        want = apply_curves(x, small_model(x)[1], small_model.config.n_iter)
    torch.testing.assert_close(Enhancer(small_model, tile=None, paper=True)(x), want, rtol=0, atol=1e-6)
    for opt in ({"exposure": 0.5}, {"balance": 0.5}, {"strength": 0.5}, {"denoise": 1.0}, {"preset": "night"}):
        with pytest.raises(ValueError, match="no effect with paper=True"):
            Enhancer(small_model, paper=True, **opt)
    with pytest.raises(ValueError, match="natural, bright, night"):
        Enhancer(small_model, preset="vivid")


def _sunset() -> torch.Tensor:
    """A bright sky in the colours of DICM 05's sunset, (248, 167, 112) and its neighbours."""
    g = torch.Generator().manual_seed(14)
    base = torch.tensor([248.0, 167.0, 112.0]).view(1, 3, 1, 1) / 255
    return (base * (0.6 + 0.4 * torch.rand(1, 1, 32, 40, generator=g))).clamp(0, 1)


@pytest.mark.parametrize("level", [0.2, 0.3, 0.4, 0.6, 0.7])
def test_darkening_or_brightening_a_sunset_keeps_its_hue(small_model, level):
    """Issue 15, point 1: asking for a level below the model's turned the sky green and red."""
    x = _sunset()
    to8 = lambda t: np.rint(t[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    for metering in ("mean", "linear", "centre"):
        for balance in (0.0, 0.5, 1.0):
            y = Enhancer(small_model, tile=None, exposure=level, metering=metering, balance=balance, denoise=0)(x)
            f = hue_fidelity(to8(x), to8(y))
            assert f["false_colour"] == 0.0 and f["hue_p99"] < 15.0, (metering, balance, f)
    assert abs(float(metered(y, "centre")) - level) < 0.02  # and the level is met (last: centre, 1.0)


def test_presets_leave_a_well_exposed_photo_alone_and_brighten_a_dark_one(small_model):
    g = torch.Generator().manual_seed(15)
    scene = 0.15 + 0.75 * torch.nn.functional.interpolate(
        torch.rand(1, 3, 8, 10, generator=g), size=(48, 60), mode="bicubic"
    ).clamp(0, 1)
    for preset in ("natural", "bright", "night"):
        enh = Enhancer(small_model, tile=None, preset=preset)
        well = enh(scene)
        psnr = 10 * math.log10(1 / float(((well - scene) ** 2).mean()).__add__(1e-12))
        assert psnr > 40, preset  # nearly unchanged
        dark = scene * 0.12
        assert float(metered(enh(dark), "centre")) > float(metered(dark, "centre")) + 0.15, preset
