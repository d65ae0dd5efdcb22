"""The learned denoiser's inference on numpy images: features, filter banks and their blend.

The numpy twin of :mod:`zerodce.denoiser` (whose docstring explains the method) without its
network: :func:`learned_denoise` takes the network as a function from features (B, 5, H, W) to
blend logits (B, K, H, W), such as an onnxruntime session of ``DenoiseNet.logits``. The
configuration dataclass and the constants live here, torch-free; :mod:`zerodce.denoiser` imports them.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .color import from_ycc, luma, to_ycc
from .filters import CHROMA_BOUND, bound_change, box, chroma_weight, self_guided_inplace

__all__ = [
    "DenoiserConfig",
    "FADE_KNEE",
    "NOISE_SCALE",
    "GAIN_RADIUS",
    "LUMA_BANK",
    "CHROMA_BANK",
    "denoise_features",
    "bank",
    "bank_radius",
    "blend",
    "learned_halo",
    "learned_denoise",
]

FADE_KNEE = 5.0  # chroma halved where the input's local luma is FADE_KNEE x its noise std (validation)
NOISE_SCALE = 0.05  # predicted output noise std is fed as std / NOISE_SCALE (about 0..2)
GAIN_RADIUS = 2  # window of the local gain, as the classical denoiser's luma window

# The images the network blends, per pixel (luma and chroma of Rec. 601 YCbCr): (kind, radius, k) with
# "guided" a self-guided filter (He et al.) regularised by (k * predicted noise std)^2. Every filter
# is the identity where the predicted noise is 0, so the network can smooth only as much as the
# noise allows; chroma, whose noise is coarser, gets wider windows.
LUMA_BANK = (("identity", 0, 0.0), ("guided", 1, 1.0), ("guided", 2, 1.0), ("guided", 2, 3.0))
CHROMA_BANK = (("identity", 0, 0.0), ("guided", 2, 2.0), ("guided", 4, 2.0), ("guided", 4, 6.0))

_F = np.float32


@dataclass(frozen=True)
class DenoiserConfig:
    """Hyper-parameters of :class:`zerodce.denoiser.DenoiseNet`: hidden width and number of 3x3 convolutions."""

    arch: str = "gain-denoise"
    width: int = 32
    depth: int = 5
    scale: int = 4

    def __post_init__(self) -> None:
        if self.arch != "gain-denoise":
            raise ValueError(f"unknown denoiser architecture {self.arch!r}")
        for name in ("width", "depth", "scale"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 256:
                raise ValueError(f"denoiser config field {name} must be an integer in [1, 256], got {value!r}")
        if self.depth < 2:
            raise ValueError(f"denoiser depth must be at least 2, got {self.depth}")

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def denoise_features(y: np.ndarray, x: np.ndarray, sigma: np.ndarray, strength: float) -> np.ndarray:
    """The network's input: ``y``, predicted output noise std, input local luma -> (B, 5, H, W).

    Args:
        y: enhanced images (B, 3, H, W) float32 in [0, 1].
        x: the inputs they were enhanced from (same shape).
        sigma: input noise standard deviation per image (B,).
        strength: multiplies the predicted noise level (1: as estimated).

    Example:
        >>> y, x = np.full((1, 3, 4, 4), 0.4, np.float32), np.full((1, 3, 4, 4), 0.1, np.float32)
        >>> f = denoise_features(y, x, np.array([0.01]), 1.0)  # gain 4: noise 0.04 = 0.8 NOISE_SCALE
        >>> f.shape, round(float(f[0, 3, 0, 0]), 4), round(float(f[0, 4, 0, 0]), 4)
        ((1, 5, 4, 4), 0.8, 0.3162)
    """
    b, _, h, w = y.shape
    feats = np.empty((b, 5, h, w), dtype=np.float32)
    feats[:, :3] = y
    noise, lx = luma(y, out=feats[:, 3:4]), luma(x, out=feats[:, 4:5])
    box(noise, GAIN_RADIUS, out=noise)  # local means of output and input luma
    box(lx, GAIN_RADIUS, out=lx)
    noise /= np.maximum(lx, _F(1.0 / 255.0))  # the local gain (filters.local_gain)
    noise *= _F(strength) * np.asarray(sigma, dtype=np.float32).reshape(-1, 1, 1, 1)  # output noise std
    noise /= _F(NOISE_SCALE)
    np.sqrt(lx, out=lx)
    return feats


def _filters(z: np.ndarray, noise: np.ndarray, filters: tuple) -> Iterator[np.ndarray]:
    """Every filter of a bank on (B, C, H, W), one array like ``z`` at a time (window means shared per radius)."""
    stats, uses = {}, Counter(r for kind, r, _ in filters if kind != "identity")
    for kind, r, k in filters:
        if kind == "identity":
            yield z
            continue
        if r not in stats:
            sq = np.multiply(z, z)
            stats[r] = (box(z, r), box(sq, r, out=sq))
        eps = np.multiply(noise, _F(k))
        np.square(eps, out=eps)
        eps += _F(1e-8)
        uses[r] -= 1  # the last filter of a radius may overwrite its window means
        mean, mean_sq = stats.pop(r) if uses[r] == 0 else (m.copy() for m in stats[r])
        yield self_guided_inplace(z, mean, mean_sq, eps, r, np.empty_like(mean))


def bank(z: np.ndarray, noise: np.ndarray, filters: tuple) -> np.ndarray:
    """Every filter of ``filters`` (:data:`LUMA_BANK` or :data:`CHROMA_BANK`) on (B, C, H, W) -> (B, K, C, H, W)."""
    return np.stack(list(_filters(z, noise, filters)), axis=1)


def bank_radius() -> int:
    """Pixels of context the widest filter of the banks needs (a guided filter of radius r: 2r)."""
    return max(2 * r for _, r, _ in LUMA_BANK + CHROMA_BANK)


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over axis 1 of (B, K, H, W), into a new array."""
    e = logits - logits.max(axis=1, keepdims=True)
    np.exp(e, out=e)
    e /= e.sum(axis=1, keepdims=True)
    return e


def _blend_bank(z: np.ndarray, noise: np.ndarray, logits: np.ndarray, filters: tuple, out: np.ndarray) -> None:
    """``out`` = the softmax(``logits``)-weighted sum of the bank's filters of ``z``, without stacking them."""
    weights = _softmax(logits)  # (B, K, H, W)
    for i, f in enumerate(_filters(z, noise, filters)):
        if i == 0:
            np.multiply(weights[:, :1], f, out=out)
        else:
            f = f if f is not z else f.copy()
            f *= weights[:, i : i + 1]
            out += f


def blend(
    y: np.ndarray,
    noise: np.ndarray,
    logits: np.ndarray,
    chroma_gain: np.ndarray | None = None,
    chroma_bound: np.ndarray | float | None = None,
) -> np.ndarray:
    """Blend the filter banks of ``y`` with per-pixel softmax weights.

    Args:
        y: images (B, 3, H, W).
        noise: predicted noise std (B, 1, H, W), for the guided filters' regulariser.
        logits: (B, len(LUMA_BANK) + len(CHROMA_BANK), H, W); Cb and Cr share the chroma weights.
        chroma_gain: optional (B, 1, H, W) factor on the blended chroma (the colour fade).
        chroma_bound: optional (B, 1, 1, 1) or scalar: the blended chroma moves at most this many
            ``noise`` from ``y``'s.

    Example:
        >>> y = np.full((1, 3, 6, 6), 0.5, np.float32)
        >>> out = blend(y, np.full((1, 1, 6, 6), 0.1, np.float32), np.zeros((1, 8, 6, 6), np.float32))
        >>> bool(np.abs(out - y).max() < 1e-6)  # every filter keeps a flat image
        True
    """
    ycc = to_ycc(y)
    nl = len(LUMA_BANK)
    out = np.empty_like(ycc)
    _blend_bank(ycc[:, :1], noise, logits[:, :nl], LUMA_BANK, out[:, :1])
    chroma = out[:, 1:]
    _blend_bank(ycc[:, 1:], noise, logits[:, nl:], CHROMA_BANK, chroma)
    if chroma_bound is not None:
        bound_change(ycc[:, 1:], chroma, chroma_bound * noise, out=chroma)
    if chroma_gain is not None:
        chroma *= chroma_gain
    return from_ycc(out, out=ycc)


def learned_halo(config: DenoiserConfig) -> int:
    """Pixels of context one output pixel depends on.

    The features' gain window, ``scale`` per block convolution, one block more for the bilinear
    upsampling of the logits, and at least the widest filter of the banks.
    """
    return max(GAIN_RADIUS + config.scale * (config.depth + 2), bank_radius() + GAIN_RADIUS)


def learned_denoise(
    logits_fn: Callable[[np.ndarray], np.ndarray],
    y: np.ndarray,
    x: np.ndarray,
    strength: float,
    sigma: np.ndarray,
    chroma_sigma: np.ndarray | None = None,
) -> np.ndarray:
    """Denoise enhanced images ``y`` = curves(``x``) with a network's blend logits; 0 strength returns ``y``.

    Args:
        logits_fn: the network: features (B, 5, H, W) float32 (:func:`denoise_features`) -> blend
            logits (B, K, H, W) (``DenoiseNet.logits``, e.g. run by onnxruntime).
        y: enhanced images (B, 3, H, W) float32 in [0, 1].
        x: the inputs they were enhanced from.
        strength: multiplies the predicted noise level.
        sigma: the input's noise std (B,).
        chroma_sigma: the input's chroma noise std (B,): if given, no pixel's chroma moves by more
            than :data:`~zerodce.core.filters.CHROMA_BOUND` times it, times the local gain.

    Returns:
        A new array (B, 3, H, W), clipped to [0, 1].
    """
    if strength <= 0:
        return y
    sig = np.asarray(sigma, dtype=np.float32).reshape(-1, 1, 1, 1)
    feats = denoise_features(y, x, sig, strength)
    # Colour faded by the input's SNR, as the guided filter does (zerodce.denoiser.learned_denoise).
    fade = chroma_weight(np.square(feats[:, 4:5]), _F(FADE_KNEE) * sig)
    noise = feats[:, 3:4] * _F(NOISE_SCALE)  # strength * sigma * local gain
    bound = None
    if chroma_sigma is not None:  # CHROMA_BOUND * chroma_sigma * local gain, in units of ``noise``
        cs = np.asarray(chroma_sigma, dtype=np.float32).reshape(-1, 1, 1, 1)
        bound = _F(CHROMA_BOUND) * cs / np.maximum(_F(strength) * sig, _F(1e-8))
    out = blend(feats[:, :3], noise, np.asarray(logits_fn(feats), dtype=np.float32), fade, bound)
    return np.clip(out, _F(0.0), _F(1.0), out=out)
