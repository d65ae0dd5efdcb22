"""The light-enhancement (LE) curve of Zero-DCE on numpy images, and its iterated application.

The numpy twin of :mod:`zerodce.curves` (same sign convention: ``LE(x; a) = x + a x (1 - x)``,
``a > 0`` brightens). The curves are pointwise, so :func:`apply_curves` runs all iterations on a band
of rows while it is in cache, then moves to the next band.
"""

from __future__ import annotations

import numpy as np

from ._bands import row_bands

__all__ = ["N_ITERATIONS", "le_curve", "apply_curves", "check_map_channels"]

N_ITERATIONS = 8
_BAND = 16_384  # pixels per plane and band of rows: the band, its temporary and a map stay in L2


def le_curve(x: np.ndarray, a: np.ndarray | float) -> np.ndarray:
    """Apply one LE curve: ``x + a * x * (1 - x)``, pixel-wise (``a`` broadcastable to ``x``).

    Example:
        >>> le_curve(np.array([0.0, 0.5, 1.0], np.float32), np.float32(1.0)).tolist()
        [0.0, 0.75, 1.0]
    """
    return x + a * x * (np.float32(1.0) - x)


def check_map_channels(channels: int, n_iter: int) -> int:
    """``channels`` if curve maps with that many channels suit ``n_iter`` iterations, else ValueError."""
    if channels not in (3, 3 * n_iter):
        raise ValueError(f"curve maps have {channels} channels; expected 3 or {3 * n_iter}")
    return channels


def _split_maps(curve_maps: np.ndarray, n_iter: int) -> list[np.ndarray]:
    """One (B, 3, H, W) map per iteration: DCE-Net's 3n channels split, Zero-DCE++'s 3 re-used."""
    if check_map_channels(curve_maps.shape[1], n_iter) == 3:
        return [curve_maps] * n_iter
    return [curve_maps[:, 3 * n : 3 * n + 3] for n in range(n_iter)]


def apply_curves(
    x: np.ndarray,
    curve_maps: np.ndarray,
    n_iter: int = N_ITERATIONS,
    *,
    inplace: bool = False,
) -> np.ndarray:
    """Apply ``n_iter`` LE curves in sequence: ``LE_n = LE_{n-1} + A_n LE_{n-1} (1 - LE_{n-1})``.

    Args:
        x: input images (B, 3, H, W) float32 in [0, 1].
        curve_maps: the per-pixel curve parameters ``A``, (B, 3 * n_iter, H, W) (one map per
            iteration, DCE-Net) or (B, 3, H, W) (one map re-used, Zero-DCE++).
        n_iter: number of iterations.
        inplace: overwrite ``x`` (with :mod:`zerodce.curves`' in-place arithmetic,
            ``x += A (x - x^2)``) instead of returning a new array; with numba, float32 C-contiguous
            ``x`` and maps of its size run as one kernel (:func:`zerodce.core.kernels.curves`).

    Returns:
        The enhanced images, same shape as ``x``.

    Example:
        >>> x = np.full((1, 3, 1, 1), 0.5, np.float32)
        >>> float(apply_curves(x, np.ones((1, 24, 1, 1), np.float32))[0, 0, 0, 0]) > 0.99
        True
    """
    from . import kernels  # here: kernels imports this module (through coded)

    fits = curve_maps.shape[0] == x.shape[0] and curve_maps.shape[2:] == x.shape[2:]
    if inplace and fits and curve_maps.dtype == np.float32 and kernels.takes(x):  # maps: crops read in place
        check_map_channels(curve_maps.shape[1], n_iter)
        return kernels.curves(x, curve_maps, n_iter)  # all iterations per row in L1 (numba)
    maps = _split_maps(curve_maps, n_iter)
    out = x if inplace else np.array(x, dtype=np.float32)
    h, w = out.shape[-2:]
    tmp = np.empty_like(out[..., : min(h, max(1, _BAND // max(w, 1))), :])
    tmp2 = None if inplace else np.empty_like(tmp)
    for rows in row_bands(h, w, _BAND):
        xb = out[..., rows, :]
        t = tmp[..., : xb.shape[-2], :]
        for a in maps:
            ab = a[..., rows, :] if a.shape[-2] == h else a
            if inplace:  # as torch.addcmul: t = x - x * x; x += t * a
                np.multiply(xb, xb, out=t)
                np.subtract(xb, t, out=t)
                t *= ab
            else:  # as le_curve: x + (a * x) * (1 - x)
                t2 = tmp2[..., : xb.shape[-2], :]
                np.multiply(ab, xb, out=t)
                np.subtract(np.float32(1.0), xb, out=t2)
                t *= t2
            xb += t
    return out
