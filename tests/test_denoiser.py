"""The learned denoiser (zerodce.denoiser): features and filter blends by hand, the logits against an
independent space-to-depth reference, the receptive field, tiling, weights round trip, and what the
bundled weights do to a noisy image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zerodce.adjust import luma, noise_sigma
from zerodce.denoiser import (
    CHROMA_BANK,
    LUMA_BANK,
    NOISE_SCALE,
    DenoiseNet,
    DenoiserConfig,
    blend,
    denoise_features,
    learned_denoise,
    learned_halo,
    load_denoiser,
    save_denoiser,
)
from zerodce.enhance import Enhancer
from zerodce.weights import WeightsError


def _net(seed: int = 0, **cfg: int) -> DenoiseNet:
    torch.manual_seed(seed)
    net = DenoiseNet(DenoiserConfig(**cfg)).eval()
    with torch.no_grad():  # the last layer starts at zero (the bank's average): give it weights
        net.convs[-1].weight.normal_(0, 0.3)
    return net


def test_features_of_a_flat_image_by_hand():
    y = torch.tensor([0.6, 0.5, 0.3]).view(1, 3, 1, 1).expand(1, 3, 9, 9)
    x = y / 5
    f = denoise_features(y, x, torch.tensor([0.004]), strength=1.5)
    assert f.shape == (1, 5, 9, 9)
    assert torch.equal(f[:, :3], y)
    lum_x = 0.299 * 0.12 + 0.587 * 0.1 + 0.114 * 0.06
    assert torch.allclose(f[:, 3], torch.full((1, 9, 9), 1.5 * 0.004 * 5 / NOISE_SCALE), rtol=1e-5)
    assert torch.allclose(f[:, 4], torch.full((1, 9, 9), math.sqrt(lum_x)), rtol=1e-5)


def _space_to_depth(f: torch.Tensor, s: int) -> torch.Tensor:
    """Channel c * s^2 + i * s + j holds f[c, i::s, j::s], written with slices (no pixel_unshuffle)."""
    return torch.stack([f[:, c, i::s, j::s] for c in range(f.shape[1]) for i in range(s) for j in range(s)], 1)


@pytest.mark.parametrize(("scale", "hw"), [(2, (10, 14)), (4, (13, 18)), (4, (16, 16))])
def test_logits_against_slice_reference(scale, hw):
    """Logits = conv stack on the space-to-depth of the replicate-padded features, upsampled 'scale' x."""
    net = _net(width=8, depth=3, scale=scale)
    f = torch.rand(2, 5, *hw)
    h, w = hw
    padded = F.pad(f, (0, -w % scale, 0, -h % scale), mode="replicate")
    z = _space_to_depth(padded, scale)
    for i, conv in enumerate(net.convs):
        z = F.conv2d(z, conv.weight, conv.bias, padding=1)
        if i < len(net.convs) - 1:
            z = z.clamp_min(0)
    want = F.interpolate(z, scale_factor=scale, mode="bilinear")[..., :h, :w]
    assert torch.allclose(net.logits(f), want, atol=1e-5)


def _box_np(a: np.ndarray, r: int) -> np.ndarray:
    """Mean over the (2r+1)^2 window with edge replication, by loops (2-D array)."""
    p = np.pad(a, r, mode="edge")
    out = np.zeros_like(a)
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[i, j] = p[i : i + 2 * r + 1, j : j + 2 * r + 1].mean()
    return out


def _pick(luma_k: int, chroma_k: int, shape: tuple) -> torch.Tensor:
    """Logits that put (all but 1e-20 of) the weight on one luma and one chroma filter."""
    logits = torch.full((shape[0], len(LUMA_BANK) + len(CHROMA_BANK), *shape[2:]), -50.0)
    logits[:, luma_k] = 50.0
    logits[:, len(LUMA_BANK) + chroma_k] = 50.0
    return logits


def _guided_np(i: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al.'s self-guided filter from its formula: a = var / (var + eps), b = mean (1 - a)."""
    mean, var = _box_np(i, r), _box_np(i * i, r) - _box_np(i, r) ** 2
    a = var / (var + eps)
    return _box_np(a, r) * i + _box_np(mean - a * mean, r)


def test_blend_selects_filters_by_hand():
    torch.manual_seed(0)
    y = torch.rand(1, 3, 12, 15, dtype=torch.float64)
    noise = torch.full((1, 1, 12, 15), 0.05, dtype=torch.float64)
    # identity luma and identity chroma give the image back
    out = blend(y, noise, _pick(0, 0, y.shape).double())
    assert torch.allclose(out, y, atol=1e-6)  # the YCbCr matrices are float32
    # one guided filter on luma and one on chroma, against the formula with loops
    kl, kc = 3, 2
    (_, rl, k_l), (_, rc, k_c) = LUMA_BANK[kl], CHROMA_BANK[kc]
    out = blend(y, noise, _pick(kl, kc, y.shape).double())
    ycc = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]).double()
    planes = np.einsum("ij,jhw->ihw", ycc.numpy(), y[0].numpy())
    want = np.stack(
        [_guided_np(planes[0], rl, (k_l * 0.05) ** 2)] + [_guided_np(p, rc, (k_c * 0.05) ** 2) for p in planes[1:]]
    )
    want = np.einsum("ij,jhw->ihw", np.linalg.inv(ycc.numpy()), want)
    assert np.allclose(out[0].numpy(), want, atol=1e-5)


def test_blend_is_the_identity_without_noise_and_keeps_flat_images():
    """Every filter is the identity at zero predicted noise and keeps a flat image: any blend returns it."""
    torch.manual_seed(1)
    logits = torch.randn(1, len(LUMA_BANK) + len(CHROMA_BANK), 16, 16) * 3
    y = torch.rand(1, 3, 16, 16)
    assert (blend(y, torch.zeros(1, 1, 16, 16), logits) - y).abs().max() < 1e-4
    flat = torch.tensor([0.5, 0.3, 0.2]).view(1, 3, 1, 1).expand(1, 3, 16, 16)
    assert (blend(flat, torch.full((1, 1, 16, 16), 0.1), logits) - flat).abs().max() < 1e-5


def test_receptive_field_is_within_the_halo():
    """The gradient of one output pixel reaches no input pixel farther than learned_halo."""
    cfg = DenoiserConfig(width=8, depth=3, scale=4)
    net = _net(width=8, depth=3, scale=4)
    halo = learned_halo(cfg)
    x = (torch.rand(1, 3, 80, 80) * 0.1).requires_grad_()
    y = (x.detach() * 5).requires_grad_()
    out = net(denoise_features(y, x, torch.tensor([0.01]), 1.0))
    out[0, 1, 40, 41].backward()
    reach = (x.grad.abs().sum(1)[0] + y.grad.abs().sum(1)[0]) > 0
    rows, cols = reach.nonzero(as_tuple=True)
    assert int((rows - 40).abs().max()) <= halo and int((cols - 41).abs().max()) <= halo
    assert int((rows - 40).abs().max()) >= halo - 4  # and the bound is not loose


def test_every_parameter_gets_a_finite_gradient():
    net = _net(width=8, depth=3).train()
    f = torch.rand(2, 5, 20, 24)
    (net(f) - f[:, :3]).square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_zero_strength_is_identity_and_weights_round_trip(tmp_path):
    net = _net(width=8, depth=3)
    x = torch.rand(1, 3, 12, 12) * 0.1
    y = x * 5
    assert torch.equal(learned_denoise(net, y, x, 0.0, torch.tensor([0.01])), y)
    path = save_denoiser(net, tmp_path / "d.safetensors")
    back = load_denoiser(path)
    assert back.config == net.config
    f = torch.rand(1, 5, 12, 12)
    assert torch.equal(back(f), net(f))


def test_loading_a_curve_model_as_denoiser_is_a_clear_error(tmp_path):
    from zerodce.weights import bundled_path

    with pytest.raises(WeightsError, match="not a zerodce denoiser"):
        load_denoiser(bundled_path("zerodce"))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not safetensors")
    with pytest.raises(WeightsError, match="cannot load"):
        load_denoiser(bad)


@pytest.mark.parametrize("arch", ["dcenet", "dcenet++"])
@pytest.mark.parametrize("tile", [48, 50])
def test_tiled_equals_untiled_with_the_learned_denoiser(small_model, arch, tile):
    """Tiles start on the network's block grid and carry its halo: same result as the whole image."""
    from zerodce.model import ModelConfig, build_model

    torch.manual_seed(3)
    net = small_model if arch == "dcenet" else build_model(ModelConfig(arch="dcenet++", scale=4)).eval()
    x = torch.rand(1, 3, 150, 171) * 0.3
    opts = {"exposure": 0.45, "balance": 0.5, "denoise": 1.0, "denoiser": "learned"}
    whole = Enhancer(net, tile=None, **opts)(x)
    tiled = Enhancer(net, tile=tile, **opts)(x)
    assert (whole - tiled).abs().max() < 1e-5
    guided = Enhancer(net, tile=None, **{**opts, "denoiser": "guided"})(x)
    assert (whole - guided).abs().max() > 1e-2  # the option changed the denoiser


def _noisy_step(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A dark image (two flat coloured halves, an edge) plus noise, and its clean 6x brightening."""
    g = torch.Generator().manual_seed(seed)
    clean = torch.full((1, 3, 64, 64), 0.04)
    clean[..., 32:] = 0.1
    clean[:, 0] *= 1.2
    x = ((clean + 0.006 * torch.randn(clean.shape, generator=g)).clamp(0, 1) * 255).round() / 255
    return x, (x * 6).clamp(0, 1), (clean * 6).clamp(0, 1)


def test_bundled_denoiser_removes_amplified_noise_and_keeps_edge_and_colour():
    net = load_denoiser()
    x, y, ref = _noisy_step()
    with torch.inference_mode():
        out = learned_denoise(net, y.clone(), x, 1.0, noise_sigma(x))
    inner = (..., slice(6, -6), slice(6, -6))
    assert (out - ref)[inner].abs().mean() < 0.5 * (y - ref)[inner].abs().mean()
    flat = (..., slice(8, 56), slice(6, 26))
    assert out[flat].std(dim=(2, 3)).max() < 0.4 * y[flat].std(dim=(2, 3)).min()
    step = out[..., 8:56, 36].mean() - out[..., 8:56, 28].mean()
    assert float(step) > 0.8 * float(ref[..., 0, 36].mean() - ref[..., 0, 28].mean())
    assert float(luma(out).mean()) == pytest.approx(float(luma(ref).mean()), abs=0.02)
    red_minus_green = float((out[:, 0] - out[:, 1])[inner].mean())
    assert red_minus_green == pytest.approx(float((ref[:, 0] - ref[:, 1])[inner].mean()), abs=0.03)


def test_bundled_denoiser_bounds_the_chroma_change():
    """Given the input's chroma noise, no pixel's chroma moves by more than CHROMA_BOUND times it
    times the local gain (here a uniform 1.6), whatever the network chose."""
    from zerodce.adjust import CHROMA_BOUND, RGB2YCC, chroma_noise_level

    net = load_denoiser()
    g = torch.Generator().manual_seed(4)
    pick = (torch.rand(1, 1, 16, 16, generator=g) < 0.5).float().repeat_interleave(4, 2).repeat_interleave(4, 3)
    green, brown = torch.tensor([0.25, 0.40, 0.15]).view(1, 3, 1, 1), torch.tensor([0.40, 0.30, 0.15]).view(1, 3, 1, 1)
    x = pick * green + (1 - pick) * brown
    x = (x + 0.004 * torch.randn(1, 1, 64, 64, generator=g)).clamp(0, 1)
    y = x * 1.6
    sigma, cs = torch.tensor([0.03]), chroma_noise_level(x)
    with torch.inference_mode():
        free = learned_denoise(net, y.clone(), x, 2.0, sigma)
        bounded = learned_denoise(net, y.clone(), x, 2.0, sigma, cs)
    limit = CHROMA_BOUND * float(cs) * 1.6
    from zerodce.adjust import box, chroma_weight
    from zerodce.denoiser import FADE_KNEE, GAIN_RADIUS

    fade = chroma_weight(box(luma(x), GAIN_RADIUS), FADE_KNEE * sigma)  # the colour fade, a scaling: undone

    def chroma_change(out: torch.Tensor) -> float:
        co, cy = (torch.einsum("ij,bjhw->bihw", RGB2YCC, t)[:, 1:] for t in (out, y))
        return float((co / fade - cy).abs().max())

    assert chroma_change(free) > 2 * limit  # unbounded, the network smooths the blades' colours together
    assert chroma_change(bounded) <= limit * 1.05 + 1e-6


def test_bundled_denoiser_leaves_a_noise_free_image_alone():
    """With no input noise (sigma 0) every filter of the banks is the identity: the image comes back."""
    net = load_denoiser()
    torch.manual_seed(1)
    y = F.interpolate(torch.rand(1, 3, 16, 16), size=(64, 64), mode="bilinear", align_corners=False)
    with torch.inference_mode():
        out = learned_denoise(net, y.clone(), y / 4, 1.0, torch.zeros(1))
    assert (out - y).abs().max() < 1e-3
