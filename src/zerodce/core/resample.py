"""Bilinear resampling of numpy images as the networks' inference needs it.

:func:`downscale` and :func:`upsample_rows` are the numpy twins of :mod:`zerodce.model`'s
(Zero-DCE++ estimates its curve map on a downscaled copy and applies it band by band);
:func:`upsample_cols` is the width pass of ``F.interpolate(small, size=(hs, W), mode="bilinear",
align_corners=True)`` and :func:`upsample_bilinear` is ``F.interpolate(z, scale_factor=s,
mode="bilinear", align_corners=False)`` (the learned denoiser's logits), with torch's float32
sample positions, so that the results agree to rounding.
"""

from __future__ import annotations

import numpy as np

from . import kernels
from ._bands import into, row_bands

__all__ = ["downscale", "upsample_rows", "upsample_cols", "upsample_bilinear"]


def downscale(x: np.ndarray, s: int) -> np.ndarray:
    """Edge-replicate ``x`` (B, C, H, W) to a multiple of ``s``, then bilinear-downscale by ``s``
    (align_corners=False).

    For an integer factor each output sample sits at ``s*i + (s-1)/2``: the mean of at most 2x2
    input pixels, indices clamped to the image (which is what replicate padding gives). Only those
    rows and columns are read.

    Example:
        >>> downscale(np.arange(4, dtype=np.float32).reshape(1, 1, 1, 4), 2).tolist()  # (0+1)/2, (2+3)/2
        [[[[0.5, 2.5]]]]
    """
    h, w = x.shape[-2:]

    def taps(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.arange((n + (-n % s)) // s, dtype=np.float64) * s + (s - 1) / 2
        i0 = np.floor(pos).astype(np.int64)
        frac = (pos - i0).astype(np.float32)
        return np.minimum(i0, n - 1), np.minimum(i0 + 1, n - 1), frac

    r0, r1, fr = taps(h)
    c0, c1, fc = taps(w)
    rows = np.take(x, r0, axis=-2) * (np.float32(1) - fr)[:, None]
    rows += np.take(x, r1, axis=-2) * fr[:, None]
    out = np.take(rows, c0, axis=-1) * (np.float32(1) - fc)
    out += np.take(rows, c1, axis=-1) * fc
    return out


def upsample_rows(cols: np.ndarray, hp: int, r0: int, r1: int, out: np.ndarray | None = None) -> np.ndarray:
    """Rows ``r0:r1`` of the bilinear (align_corners=True) upsampling of a small map to height ``hp``.

    ``cols`` is the small map already upsampled along the width (:func:`upsample_cols`),
    (B, C, hs, W). Equal to rounding to rows ``r0:r1`` of the full upsampling, without
    materialising the full-resolution map. Into ``out`` (B, C, r1 - r0, W) if given; without it,
    a map of one row gives a read-only broadcast view.

    Example:
        >>> cols = np.array([0.0, 3.0], np.float32).reshape(1, 1, 2, 1)
        >>> upsample_rows(cols, 4, 0, 4).ravel().tolist()
        [0.0, 1.0, 2.0, 3.0]
    """
    hs = cols.shape[-2]
    if hs == 1 or hp == 1:
        rows = np.broadcast_to(cols[..., :1, :], (*cols.shape[:-2], r1 - r0, cols.shape[-1]))
        return into(out, rows)
    pos = np.arange(r0, r1, dtype=np.float64) * ((hs - 1) / (hp - 1))
    i0 = np.minimum(np.floor(pos).astype(np.int64), hs - 1)
    i1 = np.minimum(i0 + 1, hs - 1)
    if kernels.takes(cols):
        return kernels.lerp_rows(cols, i0, i1, (pos - i0).astype(np.float32), out)
    wgt = (pos - i0).astype(cols.dtype)[:, None]
    top, bottom = np.take(cols, i0, axis=-2), np.take(cols, i1, axis=-2)
    bottom -= top
    bottom *= wgt
    top += bottom
    return into(out, top)


def _taps(n_in: int, n_out: int, align_corners: bool, scale: float | None = None):  # noqa: ANN202
    """torch's linear sample positions along one axis, in float32: indices i0, i1 and weights w0, w1."""
    if align_corners:
        step = np.float32((n_in - 1) / (n_out - 1)) if n_out > 1 else np.float32(0)
        src = np.arange(n_out, dtype=np.float32) * step
    else:
        step = np.float32(1.0 / scale) if scale else np.float32(n_in / n_out)
        src = step * (np.arange(n_out, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5)
        np.maximum(src, np.float32(0), out=src)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    lam = np.clip(src - i0, np.float32(0), np.float32(1))
    i1 = i0 + (i0 < n_in - 1)
    return i0, i1, np.float32(1) - lam, lam


def _lerp_cols(x: np.ndarray, taps: tuple) -> np.ndarray:
    i0, i1, w0, w1 = taps
    out = np.take(x, i0, axis=-1)
    out *= w0
    t = np.take(x, i1, axis=-1)
    t *= w1
    out += t
    return out


def upsample_cols(small: np.ndarray, w: int) -> np.ndarray:
    """Bilinear (align_corners=True) resize of (..., hs, ws) to width ``w``, rows unchanged.

    What ``F.interpolate(small, size=(hs, w), mode="bilinear", align_corners=True)`` computes: at an
    unchanged height that pass is the identity, so only the width is interpolated.

    Example:
        >>> upsample_cols(np.array([[0.0, 3.0]], np.float32), 4).tolist()
        [[0.0, 1.0, 2.0, 3.0]]
    """
    return _lerp_cols(small, _taps(small.shape[-1], w, True))


def upsample_bilinear(z: np.ndarray, s: int) -> np.ndarray:
    """Bilinear upsampling of (..., h, w) by an integer factor ``s`` to (..., h*s, w*s), align_corners=False.

    ``F.interpolate(z, scale_factor=s, mode="bilinear", align_corners=False)``: output pixel ``o``
    samples ``(o + 0.5) / s - 0.5`` (clamped at the first pixel), each axis interpolated between
    its two neighbours; the width first, then rows of it in bands, as torch sums them.

    Example:
        >>> upsample_bilinear(np.array([[0.0, 4.0]], np.float32), 2).tolist()  # at -0.25 (clamped), 0.25, 0.75, 1.25
        [[0.0, 1.0, 3.0, 4.0], [0.0, 1.0, 3.0, 4.0]]
    """
    h, w = z.shape[-2:]
    cols = _lerp_cols(z, _taps(w, w * s, False, s))  # (..., h, w*s)
    r0, r1, w0, w1 = _taps(h, h * s, False, s)
    out = np.empty((*z.shape[:-2], h * s, w * s), dtype=cols.dtype)
    tmp = None
    for rows in row_bands(h * s, w * s):
        o = out[..., rows, :]
        np.take(cols, r0[rows], axis=-2, out=o, mode="clip")
        o *= w0[rows, None]
        if tmp is None or tmp.shape != o.shape:
            tmp = np.empty_like(o)
        np.take(cols, r1[rows], axis=-2, out=tmp, mode="clip")
        tmp *= w1[rows, None]
        o += tmp
    return out
