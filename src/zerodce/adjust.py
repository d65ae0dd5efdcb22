"""Inference-time measures and filters: metering, the noise level and gain-aware denoising.

Pure tensor functions on (B, 3, H, W) float images in [0, 1]; :class:`~zerodce.enhance.Enhancer`
calls them (the exposure, strength and colour controls themselves are in :mod:`zerodce.tone`), so
the CLI, the Python API and the service share one implementation.

**Metering** (:func:`metered`) says what "brightness" an exposure level is. ``mean`` is the mean
Rec. 601 luma of the coded output, so ``--exposure 0.45 --metering mean`` gives an output whose mean
brightness is 0.45. ``linear`` and ``centre`` meter as a camera does: the mean *linear-light* luminance (sRGB
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
the input's noise level (:func:`noise_level`, which leaves texture out) and ``gain`` the local luma gain of the curves.
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

import functools
import math

import torch
import torch.nn.functional as F

# The constants are defined once, in the torch-free twins of this module (zerodce.core).
from .core.color import LUMA, LUMINANCE_709, RGB_TO_YCC, THUMB_SIDE, YCC_TO_RGB
from .core.filters import CHROMA_BOUND, CHROMA_KNEE
from .core.noise import CHROMA_MIXES, NOISE_PATCH, NOISE_PATCHES, texture_threshold
from .presets import METERINGS, Metering

__all__ = [
    "luma",
    "METERINGS",
    "metered",
    "srgb_to_linear",
    "linear_to_srgb",
    "noise_sigma",
    "noise_level",
    "box",
    "guided_filter",
    "gain_aware_denoise",
    "chroma_weight",
    "denoise_halo",
    "local_gain",
    "bound_change",
    "chroma_noise_level",
    "luma_chroma_noise",
    "noise_levels",
]

# Rec. 601 YCbCr (JPEG): rows give Y, Cb, Cr from R, G, B.
RGB2YCC = torch.from_numpy(RGB_TO_YCC.copy())
YCC2RGB = torch.from_numpy(YCC_TO_RGB.copy())


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


def noise_sigma(x: torch.Tensor) -> torch.Tensor:
    """Immerkaer's noise standard deviation of each image's luma, (B, 1, H, W) or (B, 3, H, W) -> (B,).

    Same estimator as :func:`zerodce.evaluation.metrics.noise_sigma` (there on 0..255 numpy arrays), here on
    tensors in the input's units; 0 for images smaller than 3x3.
    """
    y = luma(x) if x.shape[1] == 3 else x
    h, w = y.shape[-2:]
    if h < 3 or w < 3:
        return y.new_zeros(y.shape[0])
    k = y.new_tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]]).view(1, 1, 3, 3)
    s = F.conv2d(y, k).abs().sum(dim=(1, 2, 3))
    return s * math.sqrt(math.pi / 2) / (6.0 * (w - 2) * (h - 2))


def noise_level(x: torch.Tensor, iters: int = 3) -> torch.Tensor:
    """Standard deviation (B,) of the white noise in each image's luma, texture left out.

    Liu, Tanaka and Okutomi's weak-texture estimator (IEEE TIP 2013), simplified: the noise
    variance is the smallest eigenvalue of the covariance of 7x7 luma patches, since image
    structure lives in a few directions of patch space and white noise in all of them; patches are
    taken only where their gradient energy is what noise alone could give
    (:func:`zerodce.core.noise.texture_threshold` at the current estimate), and the selection is
    repeated ``iters`` times from the estimate over all patches. Texture (gravel, foliage, fabric) is
    left out of the estimate instead of being read as noise, as a global Laplacian estimator
    (:func:`noise_sigma`) does. 0 for images under 7x7.

    Example:
        >>> g = torch.Generator().manual_seed(1)
        >>> ramp = torch.linspace(0.2, 0.8, 256).expand(1, 1, 256, 256)
        >>> round(float(noise_level(ramp + 0.02 * torch.randn(1, 1, 256, 256, generator=g))), 3)
        0.02
    """
    c = x.shape[1]
    return noise_levels(x, (LUMA if c == 3 else (1.0,) * c,), iters)[:, 0]


def noise_levels(x: torch.Tensor, mixes: tuple[tuple[float, ...], ...], iters: int = 3) -> torch.Tensor:
    """:func:`noise_level` of several channel mixes of ``x`` (e.g. luma, Cb and Cr) -> (B, len(mixes)),
    from one sampling of the patches."""
    b, c, h, w = x.shape
    k = NOISE_PATCH
    if h < k or w < k:
        return x.new_zeros(b, len(mixes))
    stride = max(1, math.ceil(math.sqrt((h - k + 1) * (w - k + 1) / NOISE_PATCHES)))
    tau = texture_threshold(k)
    out = []
    for i in range(b):
        # Only the sampled patches are read (no full-size luma): memory independent of the image size.
        cols = F.unfold(x[i : i + 1], k, stride=stride)[0].view(c, -1)  # (C, k*k*N)
        row = []
        for mix in mixes:
            p = (x.new_tensor(mix).view(1, c) @ cols).view(k * k, -1).T.double().contiguous()  # (N, k*k)
            energy = ((p @ _gradient_form(k)) * p).sum(1)  # sum of squared neighbour differences
            var = _smallest_eigenvalue(p)
            for _ in range(iters):
                keep = energy <= tau * var
                if int(keep.sum()) < 4 * k * k:  # too few flat patches to say more
                    break
                var = _smallest_eigenvalue(p[keep])
            row.append(math.sqrt(max(var, 0.0)))
        out.append(row)
    return x.new_tensor(out)


@functools.lru_cache(maxsize=2)
def _gradient_form(k: int) -> torch.Tensor:
    """(k*k, k*k) float64 Q with ``p @ Q @ p`` the sum of squared horizontal and vertical
    differences within a flattened k x k patch ``p`` (one GEMM for all patches)."""
    eye = torch.eye(k * k, dtype=torch.float64).view(k * k, k, k)
    d = torch.cat([eye.diff(dim=1).flatten(1), eye.diff(dim=2).flatten(1)], 1)  # (k*k, differences)
    return d @ d.T


def chroma_noise_level(x: torch.Tensor) -> torch.Tensor:
    """Standard deviation (B,) of the noise in each RGB image's chroma: the root mean square of
    :func:`noise_level` on Rec. 601 Cb and Cr.
    Cameras and JPEG smooth chroma, so it is often well below the luma's (a third of it on a sharp
    well-exposed photo, nearly equal on a dark noisy one)."""
    return noise_levels(x, CHROMA_MIXES).square().mean(1).sqrt()


def luma_chroma_noise(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`noise_level` and :func:`chroma_noise_level` of RGB images, (B,) each, from one sampling."""
    levels = noise_levels(x, (LUMA, *CHROMA_MIXES))
    return levels[:, 0], levels[:, 1:].square().mean(1).sqrt()


def _smallest_eigenvalue(p: torch.Tensor) -> float:
    """The smallest eigenvalue of the covariance of the rows of ``p`` (N, d), corrected for the
    downward bias of a sample eigenvalue (Marchenko-Pastur edge: ``(1 - sqrt(d / N))^2``)."""
    n, d = p.shape
    # As products (a GEMM) rather than p - mean, which costs more than the product on a tall p; in
    # float64 the cancellation is harmless (values in [0, 1], variances down to about 1e-8).
    m = p.sum(dim=0)
    cov = (p.T @ p - torch.outer(m, m) / n) / max(n - 1, 1)
    low = float(torch.linalg.eigvalsh(cov)[0])
    return low / max(1.0 - math.sqrt(d / n), 0.05) ** 2


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
        return self_guided(guide, mean_i, box(guide * guide, r), eps, r)
    var_i = (box(guide * guide, r) - mean_i * mean_i).clamp_(min=0.0)
    mean_p = box(src, r)
    cov = box(guide * src, r) - mean_i * mean_p
    a = cov / (var_i + eps)
    b = mean_p - a * mean_i
    return box(a, r) * guide + box(b, r)


def self_guided(
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


def bound_change(before: torch.Tensor, after: torch.Tensor, limit: torch.Tensor) -> torch.Tensor:
    """``after``, moved back to within ``limit`` of ``before`` (elementwise; ``limit`` broadcasts).

    Example:
        >>> bound_change(torch.tensor([0.5, 0.5, 0.5]), torch.tensor([0.2, 0.45, 0.9]), torch.tensor(0.1)).tolist()
        [0.4000000059604645, 0.44999998807907104, 0.6000000238418579]
    """
    return before + (after - before).clamp(-limit, limit)


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
    chroma_sigma: torch.Tensor | None = None,
) -> torch.Tensor:
    """Suppress the noise the curves amplified in ``y`` = curves(``x``); edges and colour kept.

    Args:
        y: enhanced images (B, 3, H, W) in [0, 1].
        x: the inputs they were enhanced from (same shape).
        strength: multiplies the predicted noise level; 0 returns ``y`` unchanged.
        sigma: input noise standard deviation per image (B,), e.g. :func:`noise_sigma` of ``x``.
        radius: luma window radius; chroma uses twice that.
        chroma_sigma: the input's chroma noise std (B,) (:func:`chroma_noise_level`): if given, no
            pixel's chroma moves by more than :data:`CHROMA_BOUND` times it, times the local gain.
    """
    if strength <= 0:
        return y
    sig = sigma.view(-1, 1, 1, 1)
    ycc = torch.einsum("ij,bjhw->bihw", RGB2YCC.to(y), y)
    lum, chroma = ycc[:, :1], ycc[:, 1:]  # Y is the same Rec. 601 luma as :func:`luma`
    # He et al.'s self-guided filter with the boxes batched: one box call per radius and stage.
    stats = box(torch.cat([lum, luma(x), lum * lum], 1), radius)
    mean_y, lx = stats[:, :1], stats[:, 1:2]
    gain = local_gain(mean_y, lx)
    eps = (strength * gain * sig) ** 2 + 1e-8
    out_y = self_guided(lum, mean_y, stats[:, 2:], eps, radius)
    c_stats = box(torch.cat([chroma, chroma * chroma], 1), 2 * radius)  # Cb and Cr, each self-guided
    out_c = self_guided(chroma, c_stats[:, :2], c_stats[:, 2:], eps, 2 * radius)
    if chroma_sigma is not None:
        out_c = bound_change(chroma, out_c, CHROMA_BOUND * chroma_sigma.view(-1, 1, 1, 1) * gain)
    out_c *= chroma_weight(lx, CHROMA_KNEE * strength * sig)
    return torch.einsum("ij,bjhw->bihw", YCC2RGB.to(y), torch.cat([out_y, out_c], 1)).clamp_(0.0, 1.0)
