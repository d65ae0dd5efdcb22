"""Metering, the gain-aware denoiser (zerodce.adjust) and the enhancer's exposure and colour controls,
against independent loop references and hand-checked properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zerodce.adjust import (
    CHROMA_BOUND,
    box,
    chroma_noise_level,
    gain_aware_denoise,
    guided_filter,
    luma,
    metered,
    noise_sigma,
)
from zerodce.enhance import Enhancer
from zerodce.evaluation.metrics import noise_sigma as noise_sigma_np

# Rec. 601 YCbCr (JPEG) from RGB, written out here independently of zerodce.adjust.
_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def _box_ref(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over the (2r+1)^2 window with edge replication, by loops."""
    h, w = x.shape
    out = np.zeros_like(x)
    for i in range(h):
        for j in range(w):
            vals = [x[min(max(i + di, 0), h - 1), min(max(j + dj, 0), w - 1)]
                    for di in range(-r, r + 1) for dj in range(-r, r + 1)]  # fmt: skip
            out[i, j] = np.mean(vals)
    return out


def _guided_ref(guide: np.ndarray, src: np.ndarray, r: int, eps: np.ndarray) -> np.ndarray:
    """He et al., Algorithm 1, written out in float64 with the loop box filter."""
    mi, mp = _box_ref(guide, r), _box_ref(src, r)
    var = _box_ref(guide * guide, r) - mi * mi
    cov = _box_ref(guide * src, r) - mi * mp
    a = cov / (var + eps)
    b = mp - a * mi
    return _box_ref(a, r) * guide + _box_ref(b, r)


def test_box_matches_loops():
    x = np.random.default_rng(0).random((7, 9))
    got = box(torch.from_numpy(x)[None, None], 2)[0, 0].numpy()
    assert np.allclose(got, _box_ref(x, 2), atol=1e-12)


def test_guided_filter_matches_paper_algorithm_with_per_pixel_eps():
    rng = np.random.default_rng(1)
    g, p = rng.random((8, 10)), rng.random((8, 10))
    eps = rng.random((8, 10)) * 0.05 + 1e-3
    t = lambda a: torch.from_numpy(a)[None, None]  # noqa: E731
    got = guided_filter(t(g), t(p), 1, t(eps))[0, 0].numpy()
    assert np.allclose(got, _guided_ref(g, p, 1, eps), atol=1e-10)


def test_denoiser_is_the_guided_filter_on_luma_and_chroma_by_loops():
    """The whole denoiser against a float64 loop reference written from its documented formula:
    YCbCr, eps = (S * gain * sigma)^2 with gain = box(luma y) / box(luma x), He's self-guided filter
    on Y (radius r) and on Cb, Cr (radius 2r), chroma times l^2 / (l^2 + (2 S sigma)^2), back to RGB."""
    rng = np.random.default_rng(3)
    x = rng.random((3, 11, 13)) * 0.1
    y = np.clip(x * 5 + rng.normal(0, 0.03, x.shape), 0, 1)
    strength, sigma, r = 1.7, 0.01, 1
    ycc = np.einsum("ij,jhw->ihw", _YCC, y)
    lx = _box_ref(np.einsum("j,jhw->hw", _YCC[0], x), r)
    gain = _box_ref(ycc[0], r) / np.maximum(lx, 1 / 255)
    eps = (strength * gain * sigma) ** 2 + 1e-8
    w = lx**2 / (lx**2 + (2 * strength * sigma) ** 2)
    out = [_guided_ref(ycc[0], ycc[0], r, eps)] + [_guided_ref(c, c, 2 * r, eps) * w for c in ycc[1:]]
    want = np.clip(np.einsum("ij,jhw->ihw", np.linalg.inv(_YCC), np.stack(out)), 0, 1)
    got = gain_aware_denoise(torch.from_numpy(y)[None], torch.from_numpy(x)[None], strength, torch.tensor([sigma]), r)
    assert np.allclose(got[0].numpy(), want, atol=1e-9)


def test_box_on_an_image_smaller_than_the_window():
    x = np.random.default_rng(4).random((3, 2))
    assert np.allclose(box(torch.from_numpy(x)[None, None], 4)[0, 0].numpy(), _box_ref(x, 4), atol=1e-12)


def test_guided_filter_limits():
    """eps -> 0 on a self-guided image returns it (a = 1); eps -> inf returns the box mean."""
    x = torch.rand(1, 1, 12, 12, dtype=torch.float64)
    assert torch.allclose(guided_filter(x, x, 2, 1e-12), x, atol=1e-6)
    assert torch.allclose(guided_filter(x, x, 2, 1e12), box(box(x, 2), 2), atol=1e-9)


def test_noise_sigma_matches_numpy_estimator():
    rng = np.random.default_rng(2)
    img = np.clip(0.3 + rng.normal(0, 0.05, (40, 50)), 0, 1)
    got = float(noise_sigma(torch.from_numpy(img)[None, None]))
    assert got == pytest.approx(noise_sigma_np(img * 255) / 255, rel=1e-9)
    assert got == pytest.approx(0.05, rel=0.1)


def _noisy_step(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A dark image: two flat halves (an edge) plus Gaussian noise, and a 6x brightened version."""
    g = torch.Generator().manual_seed(seed)
    clean = torch.full((1, 3, 64, 64), 0.04)
    clean[..., 32:] = 0.1
    clean[:, 0] *= 1.2  # some colour
    x = (clean + 0.006 * torch.randn(clean.shape, generator=g)).clamp(0, 1)
    return clean, x, (x * 6).clamp(0, 1)


def test_denoise_removes_amplified_noise_and_keeps_edge_and_colour():
    clean, x, y = _noisy_step()
    out = gain_aware_denoise(y, x, 2.0, noise_sigma(x))
    ref = (clean * 6).clamp(0, 1)
    inner = (slice(None), slice(None), slice(8, -8))  # away from the image border
    flat_l, flat_r = (..., slice(8, 56), slice(4, 26)), (..., slice(8, 56), slice(38, 60))
    for region in (flat_l, flat_r):
        assert out[region].std(dim=(2, 3)).max() < 0.4 * y[region].std(dim=(2, 3)).min()
    assert (out - ref)[inner].abs().mean() < 0.5 * (y - ref)[inner].abs().mean()
    step = out[..., 8:56, 36].mean() - out[..., 8:56, 28].mean()  # the edge stays sharp
    assert float(step) > 0.9 * float(ref[..., 0, 36].mean() - ref[..., 0, 28].mean())
    assert torch.allclose(luma(out).mean(), luma(y).mean(), atol=3e-3)  # brightness kept
    red_minus_green = (out[:, 0] - out[:, 1]).mean()  # colour kept, faded by the dark input's low SNR
    assert 0.5 * float((y[:, 0] - y[:, 1]).mean()) < float(red_minus_green) < float((y[:, 0] - y[:, 1]).mean())


@pytest.mark.parametrize("level", [0.01, 0.03, 0.15])
def test_denoise_fades_colour_by_the_inputs_snr(level):
    """A flat coloured image: the guided filter leaves it as is, so the output is exactly ``y`` with
    its YCbCr chroma times l^2 / (l^2 + (2 * strength * sigma)^2), l the input's luma (by hand)."""
    rgb = np.array([1.3, 1.0, 0.6]) * level
    x = torch.from_numpy(rgb).float().view(1, 3, 1, 1).expand(1, 3, 12, 12).contiguous()
    y = (x * 5).clamp(0, 1)
    strength, sigma = 1.5, 0.004
    out = gain_aware_denoise(y, x, strength, torch.tensor([sigma]))
    lum = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    w = lum**2 / (lum**2 + (2 * strength * sigma) ** 2)
    yv = _YCC @ (rgb * 5)
    want = np.linalg.solve(_YCC, np.array([yv[0], w * yv[1], w * yv[2]]))
    assert np.allclose(out[0, :, 6, 6].double().numpy(), want, atol=2e-6)
    assert (w < 0.6) == (level < 0.02)  # the darkest input loses most of its colour, the brightest none


def test_chroma_noise_level_measures_chroma_not_luma():
    """Grey noise of std s (the same draw in R, G and B) has no chroma; independent per-channel noise
    of std s has Cb and Cr stds of s * |row| (the YCbCr rows' norms), by hand."""
    g = torch.Generator().manual_seed(3)
    base = torch.linspace(0.3, 0.6, 128).expand(1, 3, 128, 128)
    s = 0.02
    grey = base + s * torch.randn(1, 1, 128, 128, generator=g)
    colour = base + s * torch.randn(1, 3, 128, 128, generator=g)
    want = s * float(np.sqrt((np.sum(_YCC[1] ** 2) + np.sum(_YCC[2] ** 2)) / 2))
    assert float(chroma_noise_level(grey)) < 0.05 * s
    assert float(chroma_noise_level(colour)) == pytest.approx(want, rel=0.1)


def _grass(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Fine coloured texture (2x2 blocks, green or brown at random) with faint grey noise, and a
    1.6x brighter version: a well-exposed lawn whose colour detail is not noise."""
    g = torch.Generator().manual_seed(seed)
    pick = (torch.rand(1, 1, 32, 32, generator=g) < 0.5).float()
    pick = pick.repeat_interleave(2, 2).repeat_interleave(2, 3)
    green, brown = torch.tensor([0.25, 0.40, 0.15]), torch.tensor([0.40, 0.30, 0.15])
    x = pick * green.view(1, 3, 1, 1) + (1 - pick) * brown.view(1, 3, 1, 1)
    x = (x + 0.004 * torch.randn(1, 1, 64, 64, generator=g)).clamp(0, 1)
    return x, (x * 1.6).clamp(0, 1)


def test_denoiser_chroma_bound_keeps_the_hue_of_fine_colour_detail():
    """Strong smoothing (as a texture misread as noise would ask for) averages green and brown blades
    into olive; bounded by CHROMA_BOUND chroma noise stds, no pixel's chroma moves further than that."""
    from zerodce.evaluation.metrics import hue_fidelity

    x, y = _grass()
    sigma = torch.tensor([0.06])  # far above the true 0.004: what a texture-fooled estimate gives
    unbounded = gain_aware_denoise(y, x, 2.0, sigma)
    cs = chroma_noise_level(x)
    bounded = gain_aware_denoise(y, x, 2.0, sigma, chroma_sigma=cs)

    def u8(t: torch.Tensor) -> np.ndarray:
        return (t[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)

    assert hue_fidelity(u8(y), u8(unbounded))["hue_p99"] > 25  # the failure the bound prevents
    assert hue_fidelity(u8(y), u8(bounded))["hue_p99"] < 10
    # Undo the colour fade (a scaling, hue kept: tested above) and check the bound itself, gain 1.6.
    from zerodce.adjust import CHROMA_KNEE, chroma_weight

    fade = chroma_weight(box(luma(x), 2), CHROMA_KNEE * 2.0 * sigma)
    ycc = torch.from_numpy(_YCC).float()
    cb, cy = (torch.einsum("ij,bjhw->bihw", ycc, t)[:, 1:] for t in (bounded, y))
    assert float((cb / fade - cy).abs().max()) <= CHROMA_BOUND * float(cs) * 1.6 * 1.01 + 1e-5


def test_denoise_strength_zero_and_no_gain_are_identity():
    _, x, y = _noisy_step()
    assert torch.equal(gain_aware_denoise(y, x, 0.0, noise_sigma(x)), y)
    clean = torch.rand(1, 3, 32, 32)  # a clean image: sigma ~ content, gain 1: barely touched
    out = gain_aware_denoise(clean, clean, 1.0, torch.zeros(1))
    assert (out - clean).abs().max() < 1e-3


def _dim(shape: tuple[int, ...], seed: int = 0, top: float = 0.25) -> torch.Tensor:
    """A dark photo-like image: mostly grey detail with some colour, values up to ``top``."""
    g = torch.Generator().manual_seed(seed)
    grey = torch.rand(shape[0], 1, *shape[2:], generator=g)
    return (0.75 * grey + 0.25 * torch.rand(shape, generator=g)) * top


@pytest.mark.parametrize("metering", ["mean", "linear", "centre"])
def test_enhancer_exposure_is_monotone_and_close_to_requested(small_model, metering):
    x = _dim((1, 3, 96, 80))
    got = []
    for level in (0.3, 0.4, 0.5, 0.6, 0.7):
        y = Enhancer(small_model, tile=None, exposure=level, metering=metering, balance=0.0, denoise=0)(x)
        got.append(float(metered(y, metering)))
        assert got[-1] == pytest.approx(level, abs=0.02)  # the thumbnail search is approximate
    assert all(b > a for a, b in zip(got, got[1:], strict=False))


def test_enhancer_balance_reduces_a_cast_without_overshooting(small_model):
    x = _dim((1, 3, 40, 40)) * torch.tensor([1.0, 0.5, 0.33]).view(1, 3, 1, 1)  # a strong warm cast
    spread = []
    for balance in (0.0, 0.5, 1.0):
        y = Enhancer(small_model, tile=None, exposure=0.5, balance=balance, denoise=0)(x)
        means = y.mean(dim=(2, 3))[0]
        assert bool(means[0] > means[1] > means[2])  # still warm: never pushed past neutral
        spread.append(float(means[0] / means[2]))
    assert spread[0] > spread[1] >= spread[2] - 1e-5  # the bound may already hold at 0.5 (equal up to rounding)


@pytest.mark.parametrize("arch", ["dcenet", "dcenet++"])
def test_tiled_equals_untiled_with_every_option(small_model, arch):
    from zerodce.model import ModelConfig, build_model

    torch.manual_seed(3)
    net = small_model if arch == "dcenet" else build_model(ModelConfig(arch="dcenet++", scale=4)).eval()
    x = torch.rand(1, 3, 150, 170) * 0.3
    opts = {"exposure": 0.45, "balance": 0.5, "denoise": 2.0, "strength": 0.8}
    whole = Enhancer(net, tile=None, **opts)(x)
    tiled = Enhancer(net, tile=48, **opts)(x)
    assert (whole - tiled).abs().max() < 1e-5
    assert (whole - Enhancer(net, tile=None)(x)).abs().max() > 1e-2  # the options did something


# --- metering: what an exposure level measures ---------------------------------------------


def _srgb_decode_ref(v: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB decoding, written out per element."""
    return np.vectorize(lambda c: c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)(v)


def _srgb_encode_ref(v: float) -> float:
    return v * 12.92 if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055


def _metered_ref(img: np.ndarray, metering: str) -> float:
    """One (3, H, W) float64 image: mean luma, or sRGB-coded (centre-weighted) linear luminance."""
    if metering == "mean":
        return float(np.tensordot([0.299, 0.587, 0.114], img, axes=1).mean())
    lum = np.tensordot([0.2126, 0.7152, 0.0722], _srgb_decode_ref(img), axes=1)
    h, w = lum.shape
    if metering == "centre":
        wts = np.array([[np.exp(-0.5 * (((i + 0.5 - h / 2) / (h / 3)) ** 2 + ((j + 0.5 - w / 2) / (w / 3)) ** 2))
                         for j in range(w)] for i in range(h)])  # fmt: skip
        return _srgb_encode_ref(float((lum * wts).sum() / wts.sum()))
    return _srgb_encode_ref(float(lum.mean()))


@pytest.mark.parametrize("metering", ["mean", "linear", "centre"])
def test_metered_matches_reference(metering):
    from zerodce.adjust import metered

    x = torch.rand(2, 3, 9, 14, dtype=torch.float64) ** 2
    got = metered(x, metering)
    want = [_metered_ref(x[i].numpy(), metering) for i in range(2)]
    assert np.allclose(got.numpy(), want, atol=1e-9)


def test_metering_hand_values():
    from zerodce.adjust import linear_to_srgb, metered, srgb_to_linear

    # 18% grey (linear) is sRGB 1.055 * 0.18^(1/2.4) - 0.055 = 0.4613: "middle grey".
    assert float(linear_to_srgb(torch.tensor(0.18))) == pytest.approx(0.46135, abs=1e-4)
    v = torch.linspace(0, 1, 101)
    assert torch.allclose(linear_to_srgb(srgb_to_linear(v)), v, atol=1e-6)  # round trip
    half = torch.zeros(1, 3, 4, 8)
    half[..., 4:] = 1.0  # half black, half white: mean 0.5; linear mean 0.5 -> sRGB 0.7354
    assert float(metered(half, "mean")) == pytest.approx(0.5, abs=1e-6)
    assert float(metered(half, "linear")) == pytest.approx(0.7354, abs=1e-4)
    corner = torch.zeros(1, 3, 30, 30)
    corner[..., :6, :6] = 1.0  # a bright corner counts less with centre weighting
    centre = torch.zeros(1, 3, 30, 30)
    centre[..., 12:18, 12:18] = 1.0
    assert float(metered(corner, "centre")) < float(metered(corner, "linear")) < float(metered(centre, "centre"))
    with pytest.raises(ValueError, match="metering"):
        metered(half, "spot")


@pytest.mark.parametrize("balance", [0.0, 1.0])
def test_enhancer_metering_is_monotone_and_meets_the_level(small_model, balance):
    x = _dim((1, 3, 96, 80), seed=1)
    got = []
    for level in (0.3, 0.4, 0.5, 0.6, 0.7):
        y = Enhancer(small_model, tile=None, exposure=level, balance=balance, denoise=0, metering="centre")(x)
        got.append(float(metered(y, "centre")))
        assert got[-1] == pytest.approx(level, abs=0.02)  # the cast correction keeps the luminance
    assert all(b > a for a, b in zip(got, got[1:], strict=False))


def test_linear_metering_exposes_a_scene_with_a_lamp_darker(small_model):
    x = _dim((1, 3, 64, 64), top=0.1)
    x[..., 40:56, 8:24] = 0.9  # a lamp
    opts = {"tile": None, "exposure": 0.45, "balance": 0.0, "denoise": 0}
    by_mean = luma(Enhancer(small_model, metering="mean", **opts)(x)).mean()
    by_light = luma(Enhancer(small_model, metering="linear", **opts)(x)).mean()
    assert float(by_mean) == pytest.approx(0.45, abs=0.02)
    assert float(by_light) < float(by_mean) - 0.03  # the highlight's linear light counts for more


@pytest.mark.parametrize("preset", ["natural", "bright", "night"])
def test_exposure_scalars_reproduce_the_enhancers_tone(small_model, preset):
    # Video smoothing asks for each frame's exposure scalar and passes (an average of) it back: the
    # scalar itself must reproduce the enhancer's output, whole or tiled, and a larger one brighten.
    x = torch.cat([_dim((1, 3, 48, 40), top=0.3), _dim((1, 3, 48, 40), top=0.08)])
    for metering in ("mean", "centre"):
        enh = Enhancer(small_model, tile=None, preset=preset, balance=0.5, denoise=0, metering=metering)
        u = enh.exposure_scalars(x)
        assert u.shape == (2,) and bool((u > 0).all())
        assert (enh(x, scalars=u) - enh(x)).abs().max() < 1e-5
        tiled = Enhancer(small_model, tile=16, preset=preset, balance=0.5, denoise=0, metering=metering)
        assert (tiled(x, scalars=u) - enh(x)).abs().max() < 1e-4
        # Following its own levels (identity) gives the same scalars; following brighter ones, brighter.
        assert (enh.scalars_following(x, lambda b: b) - u).abs().max() < 1e-3
        assert bool((enh.scalars_following(x, lambda b: b + 0.05) > u + 0.01).all())
        brighter = enh(x, scalars=u + 0.2)
        assert bool((luma(brighter).mean(dim=(1, 2, 3)) > luma(enh(x)).mean(dim=(1, 2, 3)) + 0.005).all())
    with pytest.raises(ValueError, match="metering"):
        Enhancer(small_model, metering="spot")
