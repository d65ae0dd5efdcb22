"""A learned denoiser for enhanced images: per-pixel choice among noise-aware filters.

Zero-DCE's curves multiply the input's sensor noise by their local gain. The classical option
(:func:`zerodce.adjust.gain_aware_denoise`) runs one guided filter whose regulariser is that
predicted noise; this one lets a small network decide, pixel by pixel, how to smooth. It sees the
enhanced image ``y``, a map of the predicted output noise ``strength * sigma_in * gain`` (as FFDNet,
Zhang et al., TIP 2018, sees its noise-level map) and the input's local brightness, on 4x4 blocks
(pixel-unshuffle, which cuts its cost 16-fold), and gives softmax weights over a bank of filtered
images (:data:`LUMA_BANK`, :data:`CHROMA_BANK`): the image itself and self-guided filters of several
radii regularised by multiples of the predicted noise (kernel-prediction networks, Bako et al. 2017
and Mildenhall et al. 2018, predict per-pixel filters in the same spirit). Every output pixel is a
convex combination of filters that each reduce to the identity where the predicted noise is 0,
so the network can neither invent content nor smooth a clean image.

It is trained only on synthetic pairs made from SICE (never on LOL): a well-exposed SICE image is
darkened, given signal-dependent, channel- and spatially-correlated noise and 8-bit quantisation,
and enhanced by the shipped model; the target is the *clean* dark image passed through the very
same curves (``scripts/train_denoiser.py``, ``training/denoiser/``). At inference the colour is
also faded where the input is at its noise floor, as in the classical filter (see
:func:`learned_denoise`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from torch import nn

from .adjust import CHROMA_BOUND, RGB2YCC, YCC2RGB, bound_change, box, chroma_weight, local_gain, luma, self_guided

# The configuration and the constants are defined once, in the torch-free twin of this module.
from .core.denoise import CHROMA_BANK, FADE_KNEE, GAIN_RADIUS, LUMA_BANK, NOISE_SCALE, DenoiserConfig
from .presets import DENOISERS, LEARNED_STRENGTH
from .weights import WeightsError, save_weights

__all__ = [
    "DENOISERS",
    "LEARNED_STRENGTH",
    "DenoiserConfig",
    "DenoiseNet",
    "denoise_features",
    "learned_denoise",
    "learned_halo",
    "blend",
    "bank_radius",
    "LUMA_BANK",
    "CHROMA_BANK",
    "save_denoiser",
    "load_denoiser",
]

CONFIG_KEY = "zerodce.denoiser"


def denoise_features(y: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor, strength: float) -> torch.Tensor:
    """The network's input: ``y``, predicted output noise std, input local luma -> (B, 5, H, W).

    Args:
        y: enhanced images (B, 3, H, W) in [0, 1].
        x: the inputs they were enhanced from (same shape).
        sigma: input noise standard deviation per image (B,).
        strength: multiplies the predicted noise level (1: as estimated).
    """
    stats = box(torch.cat([luma(y), luma(x)], 1), GAIN_RADIUS)  # (B, 2, H, W) local means
    lx = stats[:, 1:2]
    noise = (strength * sigma.view(-1, 1, 1, 1)) * local_gain(stats[:, :1], lx)  # (B, 1, H, W) output noise std
    return torch.cat([y, noise / NOISE_SCALE, lx.sqrt()], 1)


# LUMA_BANK and CHROMA_BANK (zerodce.core.denoise): the images the network blends, per pixel (luma and
# chroma of Rec. 601 YCbCr), as (kind, radius, k) with "guided" a self-guided filter regularised by
# (k * predicted noise std)^2; every filter is the identity where the predicted noise is 0.


def _bank(z: torch.Tensor, noise: torch.Tensor, bank: tuple) -> torch.Tensor:
    """Every filter of ``bank`` on (B, C, H, W) -> (B, K, C, H, W)."""
    out, stats = [], {}
    for kind, r, k in bank:
        if kind == "identity":
            out.append(z)
        else:
            if r not in stats:
                both = box(torch.cat([z, z * z], 1), r)
                stats[r] = (both[:, : z.shape[1]], both[:, z.shape[1] :])
            out.append(self_guided(z, *stats[r], (k * noise) ** 2 + 1e-8, r))
    return torch.stack(out, 1)


def bank_radius() -> int:
    """Pixels of context the widest filter of the banks needs (a guided filter of radius r: 2r)."""
    return max(2 * r for _, r, _ in LUMA_BANK + CHROMA_BANK)


def blend(
    y: torch.Tensor,
    noise: torch.Tensor,
    logits: torch.Tensor,
    chroma_gain: torch.Tensor | None = None,
    chroma_bound: torch.Tensor | float | None = None,
) -> torch.Tensor:
    """Blend the filter banks of ``y`` with per-pixel softmax weights.

    Args:
        y: images (B, 3, H, W).
        noise: predicted noise std (B, 1, H, W), for the guided filters' regulariser.
        logits: (B, len(LUMA_BANK) + len(CHROMA_BANK), H, W); Cb and Cr share the chroma weights.
        chroma_gain: optional (B, 1, H, W) factor on the blended chroma (the colour fade).
        chroma_bound: optional (B, 1, 1, 1) or scalar: the blended chroma moves at most this many
            ``noise`` from ``y``'s (at inference, not in training: see :func:`learned_denoise`).
    """
    ycc = torch.einsum("ij,bjhw->bihw", RGB2YCC.to(y), y)
    nl = len(LUMA_BANK)
    w_l = logits[:, :nl].softmax(1).unsqueeze(2)  # (B, KL, 1, H, W)
    w_c = logits[:, nl:].softmax(1).unsqueeze(2)  # (B, KC, 1, H, W)
    lum = (w_l * _bank(ycc[:, :1], noise, LUMA_BANK)).sum(1)  # (B, 1, H, W)
    chroma = (w_c * _bank(ycc[:, 1:], noise, CHROMA_BANK)).sum(1)  # (B, 2, H, W)
    if chroma_bound is not None:
        chroma = bound_change(ycc[:, 1:], chroma, chroma_bound * noise)
    if chroma_gain is not None:
        chroma = chroma * chroma_gain
    return torch.einsum("ij,bjhw->bihw", YCC2RGB.to(y), torch.cat([lum, chroma], 1))


class DenoiseNet(nn.Module):
    """Per-pixel blend of denoising filters, weights from a CNN on s x s blocks.

    (B, 5, H, W) features (:func:`denoise_features`) -> (B, 3, H, W) denoised image. The CNN sees
    the image, the predicted noise and the input's brightness on blocks (pixel-unshuffle), gives
    one set of blend logits per block, bilinearly upsampled to every pixel; :func:`blend` mixes the
    filter banks with their softmax. Every output pixel is a convex combination of filtered versions
    of the image, so the network can choose how much and how to smooth, never invent content.
    """

    def __init__(self, config: DenoiserConfig | None = None) -> None:
        super().__init__()
        self.config = config or DenoiserConfig()
        w, d, s = self.config.width, self.config.depth, self.config.scale
        chans = [5 * s * s] + [w] * (d - 1) + [len(LUMA_BANK) + len(CHROMA_BANK)]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in zip(chans[:-1], chans[1:], strict=True))
        nn.init.zeros_(self.convs[-1].weight)  # start from the bank's plain average
        nn.init.zeros_(self.convs[-1].bias)

    def logits(self, feats: torch.Tensor) -> torch.Tensor:
        """Blend logits (B, K, H, W) for every pixel."""
        h, w = feats.shape[-2:]
        s = self.config.scale
        ph, pw = -h % s, -w % s
        f = F.pad(feats, (0, pw, 0, ph), mode="replicate") if ph or pw else feats
        z = F.pixel_unshuffle(f, s)  # (B, 5 s^2, H/s, W/s)
        for conv in self.convs[:-1]:
            z = F.relu(conv(z))  # (B, width, H/s, W/s)
        z = self.convs[-1](z)  # (B, K, H/s, W/s)
        return F.interpolate(z, scale_factor=s, mode="bilinear", align_corners=False)[..., :h, :w]

    def forward(self, feats: torch.Tensor, chroma_gain: torch.Tensor | None = None) -> torch.Tensor:
        """Denoised (B, 3, H, W); ``chroma_gain`` (B, 1, H, W) optionally scales the chroma (see :func:`blend`)."""
        return blend(feats[:, :3], feats[:, 3:4] * NOISE_SCALE, self.logits(feats), chroma_gain)


def learned_halo(config: DenoiserConfig) -> int:
    """Pixels of context one output pixel depends on.

    The features' gain window, ``scale`` per block convolution, one block more for the bilinear
    upsampling of the logits, and at least the widest filter of the banks.
    """
    return max(GAIN_RADIUS + config.scale * (config.depth + 2), bank_radius() + GAIN_RADIUS)


def learned_denoise(
    net: DenoiseNet,
    y: torch.Tensor,
    x: torch.Tensor,
    strength: float,
    sigma: torch.Tensor,
    chroma_sigma: torch.Tensor | None = None,
) -> torch.Tensor:
    """Denoise enhanced images ``y`` = curves(``x``) with ``net``; 0 strength returns ``y``.

    ``chroma_sigma``: the input's chroma noise std (B,) (:func:`zerodce.adjust.chroma_noise_level`):
    if given, no pixel's chroma moves by more than :data:`zerodce.adjust.CHROMA_BOUND` times it,
    times the local gain (the network was trained on synthetic noise as strong in chroma as in luma).
    """
    if strength <= 0:
        return y
    feats = denoise_features(y, x, sigma, strength)
    # The synthetic training pairs carry true colour down to black; real dark inputs do not (their
    # chroma there is noise and black-level error): fade chroma by the input's SNR as the guided
    # filter does (zerodce.adjust.chroma_weight), halved where the local luma is FADE_KNEE sigma.
    fade = chroma_weight(feats[:, 4:5] ** 2, FADE_KNEE * sigma.view(-1, 1, 1, 1))
    noise = feats[:, 3:4] * NOISE_SCALE  # strength * sigma * local gain
    bound = None
    if chroma_sigma is not None:  # CHROMA_BOUND * chroma_sigma * local gain, in units of ``noise``
        bound = CHROMA_BOUND * chroma_sigma.view(-1, 1, 1, 1) / (strength * sigma.view(-1, 1, 1, 1)).clamp_min(1e-8)
    return blend(feats[:, :3], noise, net.logits(feats), fade, bound).clamp_(0.0, 1.0)


def save_denoiser(net: DenoiseNet, path: str | Path, metadata: Mapping[str, str] | None = None) -> Path:
    """Write the weights with their config in the safetensors metadata (atomically)."""
    return save_weights(net, path, metadata, config_key=CONFIG_KEY)


def load_denoiser(path: str | Path | None = None) -> DenoiseNet:
    """A denoiser from a weights file (default: the bundled one), in eval mode.

    Each call builds its own module (213 KB, milliseconds): an Enhancer moves its copy to its device
    in place, so a shared cached module would be moved under another Enhancer's feet.
    """
    if path is None:
        path = Path(str(resources.files("zerodce") / "models" / "denoiser.safetensors"))
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
        if CONFIG_KEY not in meta:
            raise WeightsError(f"{path}: not a zerodce denoiser (no {CONFIG_KEY} metadata)")
        net = DenoiseNet(DenoiserConfig(**json.loads(meta[CONFIG_KEY])))
        net.load_state_dict(state)
    except (SafetensorError, OSError, RuntimeError, TypeError, ValueError) as e:
        if isinstance(e, WeightsError):
            raise
        raise WeightsError(f"{path}: cannot load denoiser weights: {e}") from e
    return net.eval()
