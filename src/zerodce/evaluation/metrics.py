"""Image-quality metrics on 8-bit RGB arrays: full-reference and no-reference.

Full-reference (the project's bars use these exact definitions):

- ``psnr``: ``10 log10(255^2 / MSE)``, MSE over all pixels and the 3 channels of uint8 RGB.
- ``ssim``: ``skimage.metrics.structural_similarity(a, b, channel_axis=2, data_range=255)``:
  7x7 uniform window, K1 = 0.01, K2 = 0.03, sample covariance, mean over the 3 channels.
- ``ssim_gaussian``: the same with ``gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False`` (Wang et al. 2004), as many papers report.
- ``ssim_luma``: the default SSIM on BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` (MATLAB-style).
- ``mae``: mean absolute difference on the 0..255 scale.

No-reference, for folders without references:

- ``brightness``: mean of luma / 255. ``contrast``: standard deviation of luma / 255.
- ``colourfulness``: Hasler and Suesstrunk (2003) on 0..255 RGB.
- ``noise``: Immerkaer's (1996) fast noise estimate of luma (0..255 scale).
- ``clipped``: fraction of pixels with any channel at 255; ``crushed``: all channels at 0.
- ``cast``: colour-cast spread, max minus min of the three channel means, / 255.

Hue fidelity, output against its own input (no reference needed): :func:`hue_fidelity`.
Over the pixels that carry colour in both (HSV saturation >= 0.25 and value >= 0.08), the absolute
hue rotation in degrees (0..180, circular): ``hue_median``, ``hue_p99``, and ``false_colour``, the
share of those pixels rotated by more than 30 degrees (a sky that turns green, a lamp-lit road that
turns purple). An image with no such pixels scores 0 rotation and 0 false colour.
"""

from __future__ import annotations

import math

import numpy as np

from ..core.color import LUMA

__all__ = [
    "psnr",
    "ssim",
    "ssim_gaussian",
    "ssim_luma",
    "mae",
    "luma",
    "colourfulness",
    "noise_sigma",
    "no_reference_stats",
    "hue_rotation",
    "hue_fidelity",
    "FULL_REFERENCE",
    "FALSE_COLOUR_DEGREES",
]

FALSE_COLOUR_DEGREES = 30.0
HUE_MIN_SATURATION = 0.25
HUE_MIN_VALUE = 0.08


def _f64(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """PSNR in dB (inf for identical arrays).

    Example:
        >>> a = np.zeros((4, 4, 3), np.uint8)
        >>> round(psnr(a, a + 1), 2)  # MSE 1 -> 10 log10(255^2)
        48.13
    """
    mse = float(np.mean((_f64(a) - _f64(b)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """scikit-image SSIM over the colour channels (7x7 uniform window): the project's default."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, channel_axis=2, data_range=data_range))


def ssim_gaussian(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """SSIM with Wang et al.'s Gaussian window (sigma 1.5, population covariance)."""
    from skimage.metrics import structural_similarity

    return float(
        structural_similarity(
            a, b, channel_axis=2, data_range=data_range, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
    )


def luma(a: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB array (..., 3), float64 on the input's scale (weights: zerodce.core.color.LUMA)."""
    a = _f64(a)
    return a[..., 0] * LUMA[0] + a[..., 1] * LUMA[1] + a[..., 2] * LUMA[2]


def ssim_luma(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """SSIM on BT.601 luma only (7x7 uniform window)."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(luma(a), luma(b), data_range=data_range))


def mae(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute error on the arrays' scale."""
    return float(np.mean(np.abs(_f64(a) - _f64(b))))


FULL_REFERENCE = {"psnr": psnr, "ssim": ssim, "mae": mae}
SSIM_VARIANTS = {"gaussian": ssim_gaussian, "luma": ssim_luma}


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler and Suesstrunk's colourfulness M on 0..255 RGB (0 for grey images)."""
    a = _f64(rgb)
    rg = a[..., 0] - a[..., 1]
    yb = 0.5 * (a[..., 0] + a[..., 1]) - a[..., 2]
    return float(math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean()))


def noise_sigma(grey: np.ndarray) -> float:
    """Immerkaer's noise estimate: ``sqrt(pi/2) / (6 (W-2) (H-2)) * sum |I * M|``.

    ``M`` is the difference of two Laplacians, which cancels smooth image structure; the result
    estimates the standard deviation of additive Gaussian noise (0 for images under 3x3).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> round(noise_sigma(100 + rng.normal(0, 5, (256, 256))), 1)
        5.0
    """
    g = _f64(grey)
    h, w = g.shape[:2]
    if h < 3 or w < 3:
        return 0.0
    conv = (
        g[:-2, :-2] - 2 * g[:-2, 1:-1] + g[:-2, 2:]
        - 2 * g[1:-1, :-2] + 4 * g[1:-1, 1:-1] - 2 * g[1:-1, 2:]
        + g[2:, :-2] - 2 * g[2:, 1:-1] + g[2:, 2:]
    )  # fmt: skip
    return float(math.sqrt(math.pi / 2) * np.abs(conv).sum() / (6.0 * (w - 2) * (h - 2)))


def no_reference_stats(rgb: np.ndarray) -> dict[str, float]:
    """No-reference statistics of one uint8 RGB image (see the module docstring)."""
    y = luma(rgb)
    means = _f64(rgb).reshape(-1, 3).mean(0)
    return {
        "brightness": float(y.mean() / 255.0),
        "contrast": float(y.std() / 255.0),
        "colourfulness": colourfulness(rgb),
        "noise": noise_sigma(y),
        "clipped": float((rgb >= 255).any(axis=2).mean()),
        "crushed": float((rgb == 0).all(axis=2).mean()),
        "cast": float((means.max() - means.min()) / 255.0),
    }


def _hue_sat_val(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HSV hue (degrees, 0..360), saturation and value (0..1) of 0..255 (or 0..1 float) RGB."""
    a = _f64(rgb) / (255.0 if rgb.dtype == np.uint8 else 1.0)
    mx, mn = a.max(axis=-1), a.min(axis=-1)
    chroma = mx - mn
    # The hexcone HSV definition exactly (not an opponent-axis angle), so that anyone can reproduce it.
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    safe = np.where(chroma > 0, chroma, 1.0)
    h = np.where(mx == r, ((g - b) / safe) % 6.0, np.where(mx == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0))
    sat = np.where(mx > 0, chroma / np.where(mx > 0, mx, 1.0), 0.0)
    return np.where(chroma > 0, h * 60.0, 0.0), sat, mx


def hue_rotation(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Absolute hue rotation in degrees (0..180) from ``x`` to ``y`` over the pixels that carry
    colour in both (HSV saturation >= 0.25, value >= 0.08): a 1-D array, empty when none do.

    Example:
        >>> x = np.array([[[200, 50, 50]]], np.uint8)          # red, hue 0
        >>> y = np.array([[[200, 200, 50]]], np.uint8)         # yellow, hue 60
        >>> hue_rotation(x, y).round(1).tolist(), hue_rotation(y, x).round(1).tolist()
        ([60.0], [60.0])
    """
    if x.shape != y.shape:
        raise ValueError(f"hue_rotation: shapes differ, {x.shape} and {y.shape}")
    hx, sx, vx = _hue_sat_val(x)
    hy, sy, vy = _hue_sat_val(y)
    keep = (sx >= HUE_MIN_SATURATION) & (vx >= HUE_MIN_VALUE) & (sy >= HUE_MIN_SATURATION) & (vy >= HUE_MIN_VALUE)
    d = np.abs(hy[keep] - hx[keep]) % 360.0
    return np.minimum(d, 360.0 - d)


def hue_fidelity(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Median and 99th percentile of the hue rotation (degrees) and the false-colour share
    (rotated by more than 30 degrees) of output ``y`` against its input ``x``; see the module docstring.

    Example:
        >>> x = np.zeros((2, 2, 3), np.uint8); x[..., 0] = 200; x[..., 1] = 40  # red-orange
        >>> y = x[..., [1, 0, 2]].copy()                                      # green-yellow: hue 12 -> 108
        >>> {k: round(v, 1) for k, v in hue_fidelity(x, y).items()}
        {'hue_median': 96.0, 'hue_p99': 96.0, 'false_colour': 1.0}
    """
    d = hue_rotation(x, y)
    if d.size == 0:
        return {"hue_median": 0.0, "hue_p99": 0.0, "false_colour": 0.0}
    return {
        "hue_median": float(np.median(d)),
        "hue_p99": float(np.percentile(d, 99)),
        "false_colour": float((d > FALSE_COLOUR_DEGREES).mean()),
    }
