"""Colour measures on numpy images: luma, sRGB coding, YCbCr, metering and the area thumbnail.

The numpy twin of the colour half of :mod:`zerodce.adjust` (whose module docstring explains the
metering modes), and the one home of the constants both use. Images are float32 arrays
(B, C, H, W) in [0, 1]; a per-image scalar is a (B,) array.
"""

from __future__ import annotations

import functools

import numpy as np

from ..presets import METERINGS, Metering

__all__ = [
    "LUMA",
    "LUMINANCE_709",
    "RGB_TO_YCC",
    "YCC_TO_RGB",
    "THUMB_SIDE",
    "METERINGS",
    "mix",
    "luma",
    "to_ycc",
    "from_ycc",
    "srgb_to_linear",
    "linear_to_srgb",
    "centre_weights",
    "metered",
    "thumbnail",
    "area_resize",
]

LUMA = (0.299, 0.587, 0.114)
LUMINANCE_709 = (0.2126, 0.7152, 0.0722)  # linear-light luminance of sRGB primaries
# Rec. 601 YCbCr (JPEG): rows give Y, Cb, Cr from R, G, B; the inverse from the float32 matrix, in float64.
RGB_TO_YCC = np.array(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=np.float32
)
YCC_TO_RGB = np.linalg.inv(RGB_TO_YCC.astype(np.float64)).astype(np.float32)
RGB_TO_YCC.flags.writeable = False
YCC_TO_RGB.flags.writeable = False
THUMB_SIDE = 256  # long side of the thumbnail the exposure search runs on


def mix(x: np.ndarray, matrix: np.ndarray | tuple[float, ...], out: np.ndarray | None = None) -> np.ndarray:
    """Per-pixel channel mixes: (B, C, H, W) and a (M, C) matrix (or one row of C weights) -> (B, M, H, W).

    One matrix product per image over its pixels (one pass over memory, not one per weight).

    Example:
        >>> mix(np.ones((1, 3, 1, 2), np.float32), (0.25, 0.25, 0.5)).tolist()
        [[[[1.0, 1.0]]]]
    """
    m = np.asarray(matrix, dtype=np.float32).reshape(-1, x.shape[1])
    b, c, h, w = x.shape
    if out is None:
        out = np.empty((b, m.shape[0], h, w), dtype=np.float32)
    for i in range(b):
        flat = out[i].reshape(m.shape[0], h * w)  # a view when out is contiguous per image
        np.matmul(m, x[i].reshape(c, h * w), out=flat)
        if not np.may_share_memory(flat, out[i]):  # out[i] was not contiguous: flat is a copy
            out[i] = flat.reshape(m.shape[0], h, w)
    return out


def luma(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Rec. 601 luma of (B, 3, H, W) -> (B, 1, H, W)."""
    return mix(x, LUMA, out)


def to_ycc(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Rec. 601 YCbCr of RGB (B, 3, H, W); Y is :func:`luma`."""
    return mix(x, RGB_TO_YCC, out)


def from_ycc(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """RGB of Rec. 601 YCbCr (B, 3, H, W) (inverse of :func:`to_ycc`)."""
    return mix(z, YCC_TO_RGB, out)


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    """The sRGB decoding (IEC 61966-2-1) of coded values in [0, 1].

    Example:
        >>> [round(float(t), 4) for t in srgb_to_linear(np.array([0.0, 0.04045, 0.5, 1.0], np.float32))]
        [0.0, 0.0031, 0.214, 1.0]
    """
    v = np.asarray(v, dtype=np.float32)
    out = np.maximum(v, np.float32(0.04045), out=np.empty_like(v))
    out += np.float32(0.055)
    out /= np.float32(1.055)
    np.power(out, np.float32(2.4), out=out)
    np.divide(v, np.float32(12.92), out=out, where=v <= np.float32(0.04045))
    return out


def linear_to_srgb(v: np.ndarray) -> np.ndarray:
    """The sRGB encoding of linear values in [0, 1] (inverse of :func:`srgb_to_linear`).

    Example:
        >>> [round(float(t), 4) for t in linear_to_srgb(np.array([0.0, 0.18, 1.0], np.float32))]
        [0.0, 0.4614, 1.0]
    """
    v = np.asarray(v, dtype=np.float32)
    out = np.maximum(v, np.float32(0.0031308), out=np.empty_like(v))
    np.power(out, np.float32(1 / 2.4), out=out)
    out *= np.float32(1.055)
    out -= np.float32(0.055)
    np.multiply(v, np.float32(12.92), out=out, where=v <= np.float32(0.0031308))
    return out


@functools.lru_cache(maxsize=8)
def centre_weights(h: int, w: int) -> np.ndarray:
    """(h, w) float32 Gaussian weights summing to 1, centred, standard deviation a third of each side;
    read-only (cached: the exposure search meters the same thumbnail 18 times)."""
    ys = (np.arange(h, dtype=np.float32) + np.float32(0.5) - np.float32(h / 2)) / np.float32(h / 3)
    xs = (np.arange(w, dtype=np.float32) + np.float32(0.5) - np.float32(w / 2)) / np.float32(w / 3)
    g = np.exp(np.float32(-0.5) * ys[:, None] ** 2) * np.exp(np.float32(-0.5) * xs[None, :] ** 2)
    g /= g.sum(dtype=np.float32)
    g.flags.writeable = False
    return g


def _linear_luminance(y: np.ndarray) -> np.ndarray:
    """Linear-light Rec. 709 luminance (B, H, W) of sRGB-coded images (B, 3, H, W), clipped to [0, 1] first."""
    lin = srgb_to_linear(np.clip(y, np.float32(0.0), np.float32(1.0)))
    return mix(lin, LUMINANCE_709, out=lin[:, :1])[:, 0]


def metered(y: np.ndarray, metering: Metering = "mean") -> np.ndarray:
    """The brightness (B,) of images (B, 3, H, W) as ``metering`` measures it (:mod:`zerodce.adjust`).

    Example:
        >>> y = np.full((1, 3, 4, 6), 0.5, np.float32)
        >>> [round(float(metered(y, m)[0]), 4) for m in METERINGS]  # a flat image reads its own value
        [0.5, 0.5, 0.5]
    """
    if metering == "mean":
        return luma(y).mean(axis=(1, 2, 3), dtype=np.float32)
    if metering not in METERINGS:
        raise ValueError(f"metering must be one of {METERINGS}, got {metering!r}")
    lum = _linear_luminance(y)  # (B, H, W)
    if metering == "centre":
        m = (lum * centre_weights(*lum.shape[-2:])).sum(axis=(1, 2), dtype=np.float32)
    else:
        m = lum.mean(axis=(1, 2), dtype=np.float32)
    return linear_to_srgb(m)


def area_resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area (adaptive average) resampling of (..., H, W) to (..., h, w), as torch's ``mode="area"``.

    Output pixel ``i`` of an axis of length ``n`` averages inputs ``floor(i n / m)`` to
    ``ceil((i + 1) n / m)`` (exclusive): bins overlap by a pixel at non-integer factors. The image
    is summed between consecutive bin boundaries (float32, a few values each), and each bin is a
    difference of float64 prefix sums of those blocks along each axis.

    Example:
        >>> area_resize(np.arange(5, dtype=np.float32).reshape(1, 5), (1, 2)).tolist()  # bins 0..2, 2..4
        [[1.0, 3.0]]
    """
    from . import kernels  # here: kernels imports this module

    (rows, rs, re), (cols, cs, ce) = _bins(x.shape[-2], size[0]), _bins(x.shape[-1], size[1])
    if x.ndim == 4 and kernels.takes(x):
        return kernels.area(x, (rs, re), (cs, ce))
    # Whole rows added at a time (numpy's reduceat across rows is several times slower), then columns.
    sums = [np.add.reduce(x[..., a:b, :], axis=-2) for a, b in zip(rows[:-1], rows[1:], strict=True)]
    blocks = np.stack(sums, axis=-2)
    blocks = np.add.reduceat(blocks, cols[:-1], axis=-1)
    out = _bin_means(blocks, rows, rs, re, blocks.ndim - 2)
    return _bin_means(out, cols, cs, ce, blocks.ndim - 1).astype(np.float32)


def _bins(n: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sorted boundaries of ``m`` area bins over ``n`` samples, and each bin's start and end."""
    i = np.arange(m)
    start, end = i * n // m, -((-(i + 1) * n) // m)
    return np.union1d(start, end), start, end


def _bin_means(blocks: np.ndarray, bounds: np.ndarray, start: np.ndarray, end: np.ndarray, axis: int) -> np.ndarray:
    """Bin means along ``axis`` from sums of the blocks between consecutive ``bounds``."""
    shape = list(blocks.shape)
    shape[axis] = 1
    prefix = np.concatenate([np.zeros(shape), np.cumsum(blocks, axis=axis, dtype=np.float64)], axis=axis)
    hi = np.take(prefix, np.searchsorted(bounds, end), axis=axis)
    hi -= np.take(prefix, np.searchsorted(bounds, start), axis=axis)
    hi /= (end - start).reshape([-1 if d == axis else 1 for d in range(blocks.ndim)])
    return hi


def thumbnail(x: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    """Area-downscale (B, C, H, W) so that the long side is at most ``side`` (identity when already small).

    Example:
        >>> thumbnail(np.ones((1, 3, 1200, 900), np.float32)).shape
        (1, 3, 256, 192)
    """
    h, w = x.shape[-2:]
    f = max(h, w) / side
    if f <= 1:
        return x
    return area_resize(x, (max(1, round(h / f)), max(1, round(w / f))))
