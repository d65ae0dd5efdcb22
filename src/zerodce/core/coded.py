"""Curve maps kept as the int8 graph's uint8 codes, with a lookup table instead of ``tanh`` (numpy).

The numpy twin of :mod:`zerodce.coded` (whose docstring explains the codes): :func:`apply_coded_curves`
runs the curve iterations per image row in L1 cache with numba when it is installed (imported on
first use), and otherwise decodes the maps and calls :func:`~zerodce.core.curves.apply_curves`.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._fork import ForkSafeLock, numba_usable
from .curves import apply_curves, check_map_channels

__all__ = ["CodedMaps", "apply_coded_curves", "dense_maps", "tanh_table"]

# Optional accelerator, imported on first use (_kernel) only: numba adds about 55 MB to a process.
NUMBA_INSTALLED = importlib.util.find_spec("numba") is not None
numba = None
# numba's parallel loops must not be launched from two threads at once with its fallback
# (workqueue) threading layer; the service enhances in several threads. Fresh in a forked child.
_LAUNCH = ForkSafeLock()


def tanh_table(scale: float, zero_point: int, batch: int, channels: int) -> np.ndarray:
    """(batch, channels, 256) float32: ``tanh((q - zero_point) * scale)`` for every code ``q``.

    Example:
        >>> lut = tanh_table(0.01, 128, 1, 3)
        >>> lut.shape, float(lut[0, 2, 128]), round(float(lut[0, 0, 228]), 4)  # tanh(0), tanh(1)
        ((1, 3, 256), 0.0, 0.7616)
    """
    q = np.arange(256, dtype=np.float32)
    row = np.tanh((q - np.float32(zero_point)) * np.float32(scale))
    return np.ascontiguousarray(np.broadcast_to(row, (batch, channels, 256)))


@dataclass(frozen=True)
class CodedMaps:
    """Curve maps as uint8 ``codes`` (B, C, H, W) and a table ``lut`` (B, C, 256) of their values."""

    codes: np.ndarray
    lut: np.ndarray

    def __getitem__(self, index: tuple) -> CodedMaps:
        """Spatial crop (``maps[..., y0:y1, x0:x1]``); batch and channels are kept."""
        if not (isinstance(index, tuple) and index and index[0] is Ellipsis and len(index) <= 3):
            raise IndexError("coded maps support spatial crops only: maps[..., rows, cols]")
        return CodedMaps(self.codes[index], self.lut)

    def dense(self) -> np.ndarray:
        """Decoded float32 maps (B, C, H, W).

        Example:
            >>> codes = np.array([0, 255, 1], np.uint8).reshape(1, 1, 1, 3)
            >>> CodedMaps(codes, np.linspace(0, 1, 256, dtype=np.float32)[None, None]).dense().ravel().tolist()
            [0.0, 1.0, 0.003921568859368563]
        """
        b, c = self.codes.shape[:2]
        out = np.empty(self.codes.shape, dtype=np.float32)
        for i in range(b):
            for j in range(c):
                np.take(self.lut[i, j], self.codes[i, j], out=out[i, j], mode="clip")
        return out


def dense_maps(maps: np.ndarray | CodedMaps) -> np.ndarray:
    """Float maps from coded or float maps."""
    return maps.dense() if isinstance(maps, CodedMaps) else maps


def _fused_loop(x, codes, lut, n_iter):  # noqa: ANN001, ANN202 - compiled by numba below
    # One image row of one channel at a time: it stays in L1 through all iterations, and the
    # inner loop (table lookup, two multiply-adds) vectorises with gathers.
    b_n, _, h_n, w_n = x.shape
    m = codes.shape[1]
    for bh in numba.prange(b_n * h_n):
        b, h = bh // h_n, bh % h_n
        for c in range(3):
            row = x[b, c, h]
            for n in range(n_iter):
                k = 3 * n + c if m > 3 else c
                table, q = lut[b, k], codes[b, k, h]
                for w in range(w_n):
                    v = row[w]
                    row[w] = v + table[q[w]] * (v - v * v)


@functools.cache
def _kernel() -> Callable:
    global numba
    import numba as nb

    numba = nb  # the loop's prange
    try:  # compiled code cached on disk beside the module (or in the user's cache directory)
        return nb.njit(parallel=True, cache=True, nogil=True, fastmath=True)(_fused_loop)
    except RuntimeError:  # no writable cache location: compile per process
        return nb.njit(parallel=True, nogil=True, fastmath=True)(_fused_loop)


def apply_coded_curves(x: np.ndarray, maps: CodedMaps, n_iter: int) -> np.ndarray:
    """:func:`~zerodce.core.curves.apply_curves` in place on ``x`` (B, 3, H, W) float32, with coded maps.

    With numba each row's iterations run in L1 cache (``v + a * (v - v^2)``, the in-place curve
    arithmetic up to fused multiply-add), so ``x`` and the codes are read from memory once.

    Example:
        >>> x = np.full((1, 3, 2, 2), 0.5, np.float32)
        >>> maps = CodedMaps(np.full((1, 3, 2, 2), 255, np.uint8), tanh_table(1.0, 0, 1, 3))  # a ~ 1
        >>> float(apply_coded_curves(x, maps, 8)[0, 0, 0, 0]) > 0.99
        True
    """
    check_map_channels(maps.codes.shape[1], n_iter)
    if not numba_usable(NUMBA_INSTALLED) or x.dtype != np.float32 or not x.flags.writeable:
        return apply_curves(x, maps.dense(), n_iter, inplace=True)
    kernel = _kernel()
    with _LAUNCH:
        kernel(x, maps.codes, maps.lut, n_iter)
    return x
