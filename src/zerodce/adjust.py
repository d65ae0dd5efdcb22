"""Inference-time controls on top of the curves: target exposure and gain-aware denoising.

Both are pure tensor functions on (B, 3, H, W) float images in [0, 1]; :class:`~zerodce.enhance.Enhancer`
calls them, so the CLI, the Python API and the service share one implementation.

**Exposure** (:func:`exposure_offset`). Zero-DCE's exposure loss pulls patch intensities towards a
level E fixed at training time. Here the user chooses the level at inference: one scalar ``t`` is
added to every curve parameter, ``A' = clamp(A + t, -1, 1)``, and ``t`` is found by bisection so
that the output's mean luma equals the requested level. Every LE step is increasing in ``A`` and,
for ``|A| <= 1``, in its input, so each output pixel is a non-decreasing function of ``t``: the
achieved brightness rises monotonically with the requested one, and the model's spatially varying
curves (which regions it brightens more) are kept.

**Metering** (:func:`metered`) says what "brightness" the level is. ``mean`` (the default) is the mean
Rec. 601 luma of the coded output, so ``--exposure 0.45`` gives an output whose mean brightness is
0.45. ``linear`` and ``centre`` meter as a camera does: the mean *linear-light* luminance (sRGB
decoded, Rec. 709 weights), over the whole frame or centre-weighted (a Gaussian with a standard
deviation of a third of each side, as a camera's centre-weighted average metering), reported in
sRGB-coded units so that the levels read on the same scale: 0.46 is photographic middle grey (18%
reflectance). A bright lamp or window raises a linear-light mean far more than a coded mean, so these
modes expose the rest of the scene darker where highlights are large, as a camera would. Every
metered value is a non-decreasing function of each pixel, so monotonicity holds for all three.

**Denoising** (:func:`gain_aware_denoise`). Curves amplify sensor noise by their local gain: a pixel
brightened from 0.05 to 0.4 has its noise multiplied by about 8. The output is filtered in a
luma/chroma space with a guided filter (He et al., TPAMI 2013) whose regularisation is the
*predicted output noise variance*, ``eps = (strength * gain * sigma_in)^2``, where ``sigma_in`` is
the input's noise level (Immerkaer's estimator) and ``gain`` the local luma gain of the curves.
Regions where the local variance is below that noise level are flattened; edges, whose variance is
far above it, are kept; dark regions that were brightened a lot are smoothed more than regions the
curves left alone. Each chroma channel is filtered the same way (self-guided) over a window twice as
wide, since low-frequency chroma noise is what makes brightened night photos look blotchy. Where the
input itself is at the noise floor its colour is mostly noise and black-level error, which the
per-channel curves amplify into red or green patches: chroma is then scaled by a Wiener-style weight
``l^2 / (l^2 + (CHROMA_KNEE * strength * sigma_in)^2)`` of the input's local mean luma ``l``
(:func:`chroma_weight`), so colour fades towards grey only where the input has no signal to carry
it. With no noise (``sigma`` 0) every channel comes back unchanged.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from .curves import apply_curves

__all__ = [
    "luma",
    "METERINGS",
    "metered",
    "srgb_to_linear",
    "linear_to_srgb",
    "exposure_offset",
    "curve_offsets",
    "offset_maps",
    "channel_targets",
    "noise_sigma",
    "box",
    "guided_filter",
    "gain_aware_denoise",
    "chroma_weight",
    "denoise_halo",
    "local_gain",
]

LUMA = (0.299, 0.587, 0.114)
LUMINANCE_709 = (0.2126, 0.7152, 0.0722)  # linear-light luminance of sRGB primaries
Metering = Literal["mean", "linear", "centre"]
METERINGS: tuple[Metering, ...] = ("mean", "linear", "centre")
# Rec. 601 YCbCr (JPEG): rows give Y, Cb, Cr from R, G, B.
_RGB2YCC = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_YCC2RGB = torch.linalg.inv(_RGB2YCC.double()).float()

# Chosen by validation on lol-val100 (README, "Exposure, colour and noise"); never trained on LOL.
DEFAULT_BALANCE: float | None = 0.75
DEFAULT_DENOISE = 2.0
# Chroma is halved where the input's local mean luma is CHROMA_KNEE * strength * sigma (README).
CHROMA_KNEE = 2.0
THUMB_SIDE = 256  # long side of the thumbnail the exposure search runs on


def luma(x: torch.Tensor) -> torch.Tensor:
    """Rec. 601 luma of (B, 3, H, W) -> (B, 1, H, W)."""
    w = x.new_tensor(LUMA).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def srgb_to_linear(v: torch.Tensor) -> torch.Tensor:
    """The sRGB decoding (IEC 61966-2-1) of coded values in [0, 1]."""
    return torch.where(v <= 0.04045, v / 12.92, ((v.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(v: torch.Tensor) -> torch.Tensor:
    """The sRGB encoding of linear values in [0, 1] (inverse of :func:`srgb_to_linear`)."""
    return torch.where(v <= 0.0031308, v * 12.92, 1.055 * v.clamp_min(0.0031308) ** (1 / 2.4) - 0.055)


def centre_weights(h: int, w: int, device: torch.device | None = None) -> torch.Tensor:
    """(h, w) Gaussian weights summing to 1, centred, standard deviation a third of each side."""
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5 - h / 2) / (h / 3)
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5 - w / 2) / (w / 3)
    g = torch.exp(-0.5 * ys.view(-1, 1) ** 2) * torch.exp(-0.5 * xs.view(1, -1) ** 2)
    return g / g.sum()


def metered(y: torch.Tensor, metering: Metering = "mean") -> torch.Tensor:
    """The brightness (B,) of images (B, 3, H, W) as ``metering`` measures it (module docstring).

    Example:
        >>> y = torch.full((1, 3, 4, 6), 0.5)
        >>> [round(float(metered(y, m)), 4) for m in METERINGS]  # a flat image reads its own value
        [0.5, 0.5, 0.5]
    """
    if metering == "mean":
        return luma(y).mean(dim=(1, 2, 3))
    if metering not in METERINGS:
        raise ValueError(f"metering must be one of {METERINGS}, got {metering!r}")
    lum = (srgb_to_linear(y.clamp(0.0, 1.0)) * y.new_tensor(LUMINANCE_709).view(1, 3, 1, 1)).sum(1)
    if metering == "centre":
        m = (lum * centre_weights(*lum.shape[-2:], device=y.device).to(lum.dtype)).sum(dim=(1, 2))
    else:
        m = lum.mean(dim=(1, 2))
    return linear_to_srgb(m)


def thumbnail(x: torch.Tensor, side: int = THUMB_SIDE) -> torch.Tensor:
    """Area-downscale so that the long side is at most ``side`` (identity when already small)."""
    h, w = x.shape[-2:]
    f = max(h, w) / side
    if f <= 1:
        return x
    return F.interpolate(x, size=(max(1, round(h / f)), max(1, round(w / f))), mode="area")


def offset_maps(maps: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """``clamp(maps + offset, -1, 1)``; ``offset`` is (B,) (every channel) or (B, 3) (per colour channel)."""
    b = maps.shape[0]
    t = offset.view(b, -1, 1, 1)
    if t.shape[1] == 3 and maps.shape[1] != 3:
        t = t.repeat(1, maps.shape[1] // 3, 1, 1)  # the same offset for each iteration's map of a channel
    return (maps + t).clamp(-1.0, 1.0)


def channel_targets(x: torch.Tensor, level: torch.Tensor, balance: float) -> torch.Tensor:
    """Output channel means (B, 3) with mean luma ``level`` (B,) and a chosen colour balance.

    ``balance`` 0 keeps the input's colour balance (each channel's mean in the input's proportion
    to its luma, as a global gain would); 1 is grey-world (equal channel means: the assumption of
    Zero-DCE's colour-constancy loss); values between interpolate.
    """
    mu = x.mean(dim=(2, 3))  # (B, 3)
    ratio = mu / (mu * mu.new_tensor(LUMA)).sum(1, keepdim=True).clamp_min(1e-6)
    return (level.view(-1, 1) * (1.0 + (1.0 - balance) * (ratio - 1.0))).clamp(1e-3, 1.0 - 1e-3)


@torch.no_grad()
def curve_offsets(
    x: torch.Tensor, maps: torch.Tensor, n_iter: int, target: torch.Tensor, iters: int = 20, metering: Metering = "mean"
) -> torch.Tensor:
    """Offsets ``t`` such that ``apply_curves(x, offset_maps(maps, t))`` hits ``target``.

    ``target`` (B,) is a brightness as ``metering`` measures it (one offset per image for all
    channels; ``mean``: mean luma); ``target`` (B, 3) are
    channel means (one offset per channel: the curves act on each channel separately, so each
    channel's search is independent). ``t`` is searched in [-2, 2] (every parameter at -1 .. every
    parameter at +1); a target outside what the curves can reach gives the nearest end.

    Example:
        >>> x = torch.full((1, 3, 4, 4), 0.1)
        >>> t = curve_offsets(x, torch.zeros(1, 24, 4, 4), 8, torch.tensor([0.5]))
        >>> y = apply_curves(x, offset_maps(torch.zeros(1, 24, 4, 4), t), 8)
        >>> round(float(y.mean()), 3)
        0.5
    """
    per_channel = target.dim() == 2
    lo = torch.full_like(target, -2.0)
    hi = torch.full_like(target, 2.0)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        y = apply_curves(x, offset_maps(maps, mid), n_iter)
        got = y.mean(dim=(2, 3)) if per_channel else metered(y, metering)
        bright = got > target
        hi = torch.where(bright, mid, hi)
        lo = torch.where(bright, lo, mid)
    return 0.5 * (lo + hi)


def native_brightness(x: torch.Tensor, maps: torch.Tensor, n_iter: int, metering: Metering = "mean") -> torch.Tensor:
    """Brightness (B,) of the model's own output (no offset), as ``metering`` measures it."""
    return metered(apply_curves(x, maps, n_iter), metering)


def exposure_offset(
    x: torch.Tensor,
    maps: torch.Tensor,
    n_iter: int,
    level: float | torch.Tensor | None,
    balance: float | None = None,
    metering: Metering = "mean",
) -> torch.Tensor:
    """The curve offsets for a requested exposure and colour balance, from a (thumbnail) image.

    ``level`` is the output's target brightness as ``metering`` measures it (a float, or one per
    image (B,)), ``None`` for the model's own (offset 0); ``balance``
    ``None`` keeps the model's colours (one offset for all channels), otherwise see
    :func:`channel_targets`: with a metering other than ``mean`` the common offset that meets the
    level is found first, and the mean luma it gives is then shared out among the channels.
    """
    if isinstance(level, torch.Tensor):
        level = level.to(x)
        if not bool(((level > 0) & (level < 1)).all()):
            raise ValueError(f"exposure levels must be in (0, 1), got {level.tolist()}")
    elif level is not None and not 0.0 < level < 1.0:
        raise ValueError(f"exposure level must be in (0, 1), got {level}")
    b = x.shape[0]
    if level is None:
        if balance is None:
            return x.new_zeros(b)
        target_luma = native_brightness(x, maps, n_iter)
    else:
        target_luma = level.expand(b) if isinstance(level, torch.Tensor) else x.new_full((b,), level)
    if balance is None:
        return curve_offsets(x, maps, n_iter, target_luma, metering=metering)
    if level is not None and metering != "mean":
        common = curve_offsets(x, maps, n_iter, target_luma, metering=metering)
        target_luma = luma(apply_curves(x, offset_maps(maps, common), n_iter)).mean(dim=(1, 2, 3))
    return curve_offsets(x, maps, n_iter, channel_targets(x, target_luma, balance))


def noise_sigma(x: torch.Tensor) -> torch.Tensor:
    """Immerkaer's noise standard deviation of each image's luma, (B, 1, H, W) or (B, 3, H, W) -> (B,).

    Same estimator as :func:`zerodce.metrics.noise_sigma` (there on 0..255 numpy arrays), here on
    tensors in the input's units; 0 for images smaller than 3x3.
    """
    y = luma(x) if x.shape[1] == 3 else x
    h, w = y.shape[-2:]
    if h < 3 or w < 3:
        return y.new_zeros(y.shape[0])
    k = y.new_tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]]).view(1, 1, 3, 3)
    s = F.conv2d(y, k).abs().sum(dim=(1, 2, 3))
    return s * math.sqrt(math.pi / 2) / (6.0 * (w - 2) * (h - 2))


def box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over a (2r+1)^2 window, edges replicated (separable).

    Each pass adds 2r+1 shifted views of the padded tensor: a few times faster than ``avg_pool2d``
    along H on CPU (measured), and the same arithmetic (a sum of the window, then one division).
    """
    if r <= 0:
        return x
    k = 2 * r + 1
    x = _window_sum(F.pad(x, (r, r, 0, 0), mode="replicate"), r, 3)
    return _window_sum(F.pad(x, (0, 0, r, r), mode="replicate"), r, 2).div_(k * k)


def _window_sum(x: torch.Tensor, r: int, dim: int) -> torch.Tensor:
    """Sums of 2r+1 consecutive entries along ``dim`` (the result is 2r shorter there)."""
    n = x.shape[dim] - 2 * r
    out = x.narrow(dim, 0, n).clone()
    for d in range(1, 2 * r + 1):
        out += x.narrow(dim, d, n)
    return out


def guided_filter(guide: torch.Tensor, src: torch.Tensor, r: int, eps: torch.Tensor | float) -> torch.Tensor:
    """He et al.'s guided filter, with a per-pixel (broadcastable) regulariser ``eps``.

    ``guide`` (B, 1, H, W) or, when ``guide is src``, any (B, C, H, W) filtered channel by channel
    (self-guided); output like ``src``. ``q = mean(a) I + mean(b)`` with ``a = cov(I, p) / (var(I)
    + eps)``, ``b = mean(p) - a mean(I)`` over (2r+1)^2 windows.
    """
    mean_i = box(guide, r)
    if guide is src:  # self-guided: cov(I, p) = var(I), mean(p) = mean(I)
        return _self_guided(guide, mean_i, box(guide * guide, r), eps, r)
    var_i = (box(guide * guide, r) - mean_i * mean_i).clamp_(min=0.0)
    mean_p = box(src, r)
    cov = box(guide * src, r) - mean_i * mean_p
    a = cov / (var_i + eps)
    b = mean_p - a * mean_i
    return box(a, r) * guide + box(b, r)


def _self_guided(
    i: torch.Tensor, mean_i: torch.Tensor, mean_ii: torch.Tensor, eps: torch.Tensor | float, r: int
) -> torch.Tensor:
    """The self-guided filter from the window means of ``i`` and ``i^2``; ``a`` and ``b`` boxed in one call."""
    var = (mean_ii - mean_i * mean_i).clamp_(min=0.0)
    a = var / (var + eps)
    ab = box(torch.cat([a, mean_i - a * mean_i], 1), r)
    c = i.shape[1]
    return ab[:, :c] * i + ab[:, c:]


def local_gain(mean_y: torch.Tensor, mean_x: torch.Tensor) -> torch.Tensor:
    """The curves' local luma gain from window means of output and input luma (input floored at 1/255)."""
    return mean_y / mean_x.clamp_min(1.0 / 255.0)


def denoise_halo(radius: int = 2) -> int:
    """Pixels of context one output pixel of :func:`gain_aware_denoise` depends on."""
    # chroma: eps (pointwise) is averaged over 2r, and the gain in eps is a box of r: 5r; rounded up.
    return 6 * radius


def chroma_weight(level: torch.Tensor, knee: torch.Tensor) -> torch.Tensor:
    """Wiener-style chroma weight ``level^2 / (level^2 + knee^2)``; exactly 1 where ``knee`` is 0.

    ``level`` is the input's local mean luma, ``knee`` the level at which its colour is halved.

    Example:
        >>> [round(v, 4) for v in chroma_weight(torch.tensor([0.0, 0.02, 0.5]), torch.tensor(0.02)).tolist()]
        [0.0, 0.5, 0.9984]
    """
    k2 = knee * knee
    return 1.0 - k2 / (level * level + k2).clamp_min(1e-20)


def gain_aware_denoise(
    y: torch.Tensor,
    x: torch.Tensor,
    strength: float,
    sigma: torch.Tensor,
    radius: int = 2,
) -> torch.Tensor:
    """Suppress the noise the curves amplified in ``y`` = curves(``x``); edges and colour kept.

    Args:
        y: enhanced images (B, 3, H, W) in [0, 1].
        x: the inputs they were enhanced from (same shape).
        strength: multiplies the predicted noise level; 0 returns ``y`` unchanged.
        sigma: input noise standard deviation per image (B,), e.g. :func:`noise_sigma` of ``x``.
        radius: luma window radius; chroma uses twice that.
    """
    if strength <= 0:
        return y
    sig = sigma.view(-1, 1, 1, 1)
    ycc = torch.einsum("ij,bjhw->bihw", _RGB2YCC.to(y), y)
    lum, chroma = ycc[:, :1], ycc[:, 1:]  # Y is the same Rec. 601 luma as :func:`luma`
    # He et al.'s self-guided filter with the boxes batched: one box call per radius and stage.
    stats = box(torch.cat([lum, luma(x), lum * lum], 1), radius)
    mean_y, lx = stats[:, :1], stats[:, 1:2]
    eps = (strength * local_gain(mean_y, lx) * sig) ** 2 + 1e-8
    out_y = _self_guided(lum, mean_y, stats[:, 2:], eps, radius)
    c_stats = box(torch.cat([chroma, chroma * chroma], 1), 2 * radius)  # Cb and Cr, each self-guided
    out_c = _self_guided(chroma, c_stats[:, :2], c_stats[:, 2:], eps, 2 * radius)
    out_c *= chroma_weight(lx, CHROMA_KNEE * strength * sig)
    return torch.einsum("ij,bjhw->bihw", _YCC2RGB.to(y), torch.cat([out_y, out_c], 1)).clamp_(0.0, 1.0)
