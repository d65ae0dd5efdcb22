"""Row bands for pointwise work: a band of every plane fits in L2 cache, so a chain of numpy
operations reads and writes main memory once instead of once per operation; and the results of
the functions that take an ``out`` (a band's buffer reused by every band of a photo)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

BAND_PIXELS = 8_192  # pixels per plane and band: the ~40 float32 planes curve_saturation uses fit in L2


def row_bands(h: int, w: int, pixels: int = BAND_PIXELS) -> Iterator[slice]:
    """Consecutive row slices covering ``range(h)``, each about ``pixels`` pixels of a ``w``-wide plane.

    Example:
        >>> [(s.start, s.stop) for s in row_bands(10, 4, pixels=16)]
        [(0, 4), (4, 8), (8, 10)]
    """
    rows = max(1, pixels // max(w, 1))
    for i0 in range(0, h, rows):
        yield slice(i0, min(i0 + rows, h))


def into(out: np.ndarray | None, y: np.ndarray) -> np.ndarray:
    """``y``, or ``y`` copied into ``out`` (returned) when one is given: a C-contiguous float32 array
    of ``y``'s shape, as the kernels take (not one ``y`` would broadcast into)."""
    if out is None:
        return y
    if out.shape != y.shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {y.shape}")
    np.copyto(out, y)
    return out
