"""Noise estimates on numpy images: Immerkaer's sigma and the weak-texture patch estimator.

The numpy twin of the noise half of :mod:`zerodce.adjust` (see :func:`zerodce.adjust.noise_level`
for the method), and the home of its constants and of the texture threshold both use. Patch
statistics are in float64, as there.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import kernels
from .color import LUMA, RGB_TO_YCC, luma

__all__ = [
    "NOISE_PATCH",
    "NOISE_PATCHES",
    "CHROMA_MIXES",
    "noise_sigma",
    "texture_threshold",
    "gradient_form",
    "smallest_eigenvalue",
    "noise_level",
    "noise_levels",
    "chroma_noise_level",
    "luma_chroma_noise",
]

NOISE_PATCH = 7  # side of the patches the noise level is estimated from
NOISE_PATCHES = 60_000  # at most this many patches, on a regular grid (cost independent of size)
CHROMA_MIXES = (tuple(RGB_TO_YCC[1].tolist()), tuple(RGB_TO_YCC[2].tolist()))  # Rec. 601 Cb and Cr


def noise_sigma(x: np.ndarray) -> np.ndarray:
    """Immerkaer's noise standard deviation of each image's luma, (B, 1, H, W) or (B, 3, H, W) -> (B,).

    The Laplacian-difference kernel is the outer product of ``(1, -2, 1)`` with itself, applied as
    two second differences; 0 for images smaller than 3x3.

    Example:
        >>> x = np.zeros((1, 1, 3, 3), np.float32)
        >>> x[0, 0, 1, 1] = 1.0  # one valid position, response 4: sigma = 4 sqrt(pi / 2) / 6
        >>> round(float(noise_sigma(x)[0]), 4)
        0.8355
    """
    y = luma(x) if x.shape[1] == 3 else np.asarray(x, dtype=np.float32)
    h, w = y.shape[-2:]
    if h < 3 or w < 3:
        return np.zeros(y.shape[0], dtype=np.float32)
    d = y[..., :-2, :] + y[..., 2:, :]
    d -= 2 * y[..., 1:-1, :]
    e = d[..., :-2] + d[..., 2:]
    e -= 2 * d[..., 1:-1]
    s = np.abs(e, out=e).sum(axis=(1, 2, 3), dtype=np.float32)
    return (s * np.float32(math.sqrt(math.pi / 2) / (6.0 * (w - 2) * (h - 2)))).astype(np.float32)


@functools.lru_cache(maxsize=4)
def texture_threshold(patch: int = NOISE_PATCH, q: float = 0.99) -> float:
    """The ``q`` quantile of a patch's gradient energy (sum of squared horizontal and vertical
    differences) over the noise variance, for patches of pure Gaussian noise: a patch above
    ``threshold * sigma^2`` holds structure. Simulated once, with a fixed seed.

    Example:
        >>> round(texture_threshold(), 1)  # the mean energy is 2 * (7 * 6) * 2 = 168 sigma^2
        276.8
    """
    p = np.random.default_rng(0).standard_normal((20_000, patch, patch))
    energy = np.square(np.diff(p, axis=1)).sum(axis=(1, 2)) + np.square(np.diff(p, axis=2)).sum(axis=(1, 2))
    return float(np.quantile(energy, q))


@functools.lru_cache(maxsize=2)
def gradient_form(k: int) -> np.ndarray:
    """(k*k, k*k) float64 Q with ``p @ Q @ p`` the sum of squared horizontal and vertical
    differences within a flattened k x k patch ``p`` (one GEMM for all patches).

    Example:
        >>> p = np.array([0.0, 1.0, 0.0, 0.0])  # 2x2 patch, one bright pixel: 2 differences of 1
        >>> float(p @ gradient_form(2) @ p)
        2.0
    """
    eye = np.eye(k * k).reshape(k * k, k, k)
    d = np.concatenate([np.diff(eye, axis=1).reshape(k * k, -1), np.diff(eye, axis=2).reshape(k * k, -1)], 1)
    q = d @ d.T
    q.flags.writeable = False
    return q


def _patches(x: np.ndarray, k: int, stride: int, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The k x k patches of image ``x`` (C, H, W) every ``stride`` pixels, each mixed over channels
    by each row of ``weights`` (M, C) in float32, as float64 (M, N, k*k), and their gradient
    energies (M, N): the sums of their squared vertical and horizontal differences. One fused pass
    with numba (:func:`zerodce.core.kernels.patches`) when it is installed, else numpy (the reference)."""
    if kernels.takes(x):
        return kernels.patches(x, k, stride, weights)
    # Only the sampled patches are read (no full-size luma): memory independent of the image size.
    win = sliding_window_view(x, (k, k), axis=(1, 2))[:, ::stride, ::stride]  # (C, nh, nw, k, k)
    cols = np.ascontiguousarray(win, dtype=np.float32).reshape(x.shape[0], -1)  # (C, N*k*k)
    p = (weights @ cols).reshape(len(weights), -1, k * k).astype(np.float64)  # (M, N, k*k)
    p4 = p.reshape(*p.shape[:2], k, k)
    energy = np.square(np.diff(p4, axis=2)).sum(axis=(2, 3)) + np.square(np.diff(p4, axis=3)).sum(axis=(2, 3))
    return p, energy


def _weak_texture_variance(p: np.ndarray, energy: np.ndarray, k: int, tau: float, iters: int) -> float:
    """The noise variance of patches ``p`` (N, k*k), float64, of gradient energies ``energy`` (N,)
    (:func:`_patches`): the smallest covariance eigenvalue over all patches, then ``iters`` times
    over those whose energy is at most ``tau`` times it.

    The same values as the torch version's (``zerodce.adjust.noise_levels``), computed with less work:
    the energy from the patches' differences (not the quadratic form's GEMM), and each selection's
    covariance from one Gram matrix of all patches, minus the rejected ones when they are fewer
    (copied out by np.compress: faster than a boolean index, 4.7x with 1.5% of 43k rows, 1.3x with half).
    """
    n, d = p.shape
    gram, total = p.T @ p, _column_sums(p)
    var = _bias_corrected_low(gram, total, n, d)
    for _ in range(iters):
        keep = energy <= tau * var
        nk = int(keep.sum())
        if nk < 4 * k * k:  # too few flat patches to say more
            break
        if nk >= n - nk:
            r = np.compress(~keep, p, axis=0)
            g, m = gram - r.T @ r, total - _column_sums(r)
        else:
            s = np.compress(keep, p, axis=0)
            g, m = s.T @ s, _column_sums(s)
        var = _bias_corrected_low(g, m, nk, d)
    return var


def _column_sums(p: np.ndarray) -> np.ndarray:
    """``p.sum(axis=0)`` of a tall float64 ``p`` as one matrix-vector product (BLAS): numpy's column
    reduction of (60000, 49) took 4 ms, a third of the Gram matrix's time."""
    return np.ones(p.shape[0], dtype=p.dtype) @ p


def _bias_corrected_low(gram: np.ndarray, total: np.ndarray, n: int, d: int) -> float:
    """:func:`smallest_eigenvalue` from the Gram matrix and the column sums of the rows."""
    cov = (gram - np.outer(total, total) / n) / max(n - 1, 1)
    low = float(np.linalg.eigvalsh(cov)[0])
    return low / max(1.0 - math.sqrt(d / n), 0.05) ** 2


def smallest_eigenvalue(p: np.ndarray) -> float:
    """The smallest eigenvalue of the covariance of the rows of ``p`` (N, d), corrected for the
    downward bias of a sample eigenvalue (Marchenko-Pastur edge: ``(1 - sqrt(d / N))^2``)."""
    # As products (a GEMM) rather than p - mean, which costs more than the product on a tall p; in
    # float64 the cancellation is harmless (values in [0, 1], variances down to about 1e-8).
    return _bias_corrected_low(p.T @ p, _column_sums(p), *p.shape)


def noise_level(x: np.ndarray, iters: int = 3) -> np.ndarray:
    """Standard deviation (B,) of the white noise in each image's luma, texture left out.

    Liu, Tanaka and Okutomi's weak-texture estimator, as :func:`zerodce.adjust.noise_level`.

    Example:
        >>> rng = np.random.default_rng(1)
        >>> ramp = np.broadcast_to(np.linspace(0.2, 0.8, 256, dtype=np.float32), (1, 1, 256, 256))
        >>> round(float(noise_level(ramp + np.float32(0.02) * rng.standard_normal((1, 1, 256, 256), np.float32))[0]), 3)
        0.02
    """
    c = x.shape[1]
    return noise_levels(x, (LUMA if c == 3 else (1.0,) * c,), iters)[:, 0]


def noise_levels(x: np.ndarray, mixes: tuple[tuple[float, ...], ...], iters: int = 3) -> np.ndarray:
    """:func:`noise_level` of several channel mixes of ``x`` (e.g. luma, Cb and Cr) -> (B, len(mixes)),
    from one sampling of the patches."""
    b, c, h, w = x.shape
    k = NOISE_PATCH
    if h < k or w < k:
        return np.zeros((b, len(mixes)), dtype=np.float32)
    stride = max(1, math.ceil(math.sqrt((h - k + 1) * (w - k + 1) / NOISE_PATCHES)))
    tau = texture_threshold(k)
    weights = np.asarray(mixes, dtype=np.float32)  # (M, C)
    out = np.zeros((b, len(mixes)), dtype=np.float64)
    for i in range(b):
        p, energy = _patches(x[i], k, stride, weights)  # (M, N, k*k) float64, (M, N)
        for j in range(len(mixes)):
            out[i, j] = math.sqrt(max(_weak_texture_variance(p[j], energy[j], k, tau, iters), 0.0))
    return out.astype(np.float32)


def chroma_noise_level(x: np.ndarray) -> np.ndarray:
    """Standard deviation (B,) of the noise in each RGB image's chroma: the root mean square of
    :func:`noise_level` on Rec. 601 Cb and Cr."""
    return np.sqrt(np.square(noise_levels(x, CHROMA_MIXES)).mean(axis=1, dtype=np.float32))


def luma_chroma_noise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`noise_level` and :func:`chroma_noise_level` of RGB images, (B,) each, from one sampling."""
    levels = noise_levels(x, (LUMA, *CHROMA_MIXES))
    return levels[:, 0], np.sqrt(np.square(levels[:, 1:]).mean(axis=1, dtype=np.float32))
