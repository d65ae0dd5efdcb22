"""Curve maps kept as the int8 graph's uint8 codes, with a lookup table instead of ``tanh``.

The quantised graph (``--precision int8``) ends in a uint8 quantised convolution whose codes
``q`` stand for ``tanh((q - zero_point) * scale)``. Decoding them in the graph (dequantise,
``tanh``) and then reading 24 float maps back for the curves costs more than the curves do; a
256-entry table per map channel gives the same values. With ``paper=True`` :func:`apply_coded_curves`
runs the 8 curve iterations per pixel in L1 cache, reading one byte per map value (numba when installed,
else decoded maps through :func:`~zerodce.curves.apply_curves`); the hue-safe controls decode the
maps (:meth:`CodedMaps.dense`) and take their channel mean (:mod:`zerodce.tone`).
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .curves import apply_curves, check_map_channels

__all__ = ["CodedMaps", "apply_coded_curves", "dense_maps", "tanh_table"]

# Optional accelerator: one fused loop instead of 2 full-image passes per iteration. Imported on
# first use (_kernel) only: importing numba adds about 55 MB to a process, compiling more.
NUMBA_INSTALLED = importlib.util.find_spec("numba") is not None
numba = None
# numba's parallel loops must not be launched from two threads at once with its fallback
# (workqueue) threading layer; the service enhances in several threads. A few ms per image.
_LAUNCH = threading.Lock()


def tanh_table(scale: float, zero_point: int, batch: int, channels: int) -> torch.Tensor:
    """(batch, channels, 256) float32: ``tanh((q - zero_point) * scale)`` for every code ``q``."""
    q = torch.arange(256, dtype=torch.float32)
    row = torch.tanh((q - float(zero_point)) * torch.tensor(scale, dtype=torch.float32))
    return row.expand(batch, channels, 256).contiguous()


@dataclass(frozen=True)
class CodedMaps:
    """Curve maps as uint8 ``codes`` (B, C, H, W) and a table ``lut`` (B, C, 256) of their values."""

    codes: torch.Tensor
    lut: torch.Tensor

    def __getitem__(self, index: tuple) -> CodedMaps:
        """Spatial crop (``maps[..., y0:y1, x0:x1]``); batch and channels are kept."""
        if not (isinstance(index, tuple) and index and index[0] is Ellipsis and len(index) <= 3):
            raise IndexError("coded maps support spatial crops only: maps[..., rows, cols]")
        return CodedMaps(self.codes[index], self.lut)

    def dense(self) -> torch.Tensor:
        """Decoded float maps (B, C, H, W)."""
        b, c = self.lut.shape[:2]
        flat = self.codes.reshape(b, c, -1).long()
        return torch.gather(self.lut, 2, flat).view(self.codes.shape)


def dense_maps(maps: torch.Tensor | CodedMaps) -> torch.Tensor:
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


def apply_coded_curves(x: torch.Tensor, maps: CodedMaps, n_iter: int) -> torch.Tensor:
    """:func:`~zerodce.curves.apply_curves` (in place on ``x``) with coded maps.

    Each row's iterations run in L1 cache (``v + a * (v - v^2)``, the unfused loop's arithmetic
    up to fused multiply-add), so ``x`` and the codes are read from memory once.
    """
    if not NUMBA_INSTALLED or x.device.type != "cpu" or x.dtype != torch.float32:
        return apply_curves(x, maps.dense(), n_iter, inplace=True)
    check_map_channels(maps.codes.shape[1], n_iter)
    kernel = _kernel()
    with _LAUNCH:
        numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
        kernel(x.numpy(), maps.codes.numpy(), maps.lut.numpy(), n_iter)
    return x
