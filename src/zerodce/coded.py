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

from dataclasses import dataclass

import torch

from .core import coded as core
from .curves import apply_curves

__all__ = ["CodedMaps", "apply_coded_curves", "dense_maps", "tanh_table"]

# Optional accelerator: zerodce.core.coded's fused loop (numba, imported on first use there).
NUMBA_INSTALLED = core.NUMBA_INSTALLED


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


def apply_coded_curves(x: torch.Tensor, maps: CodedMaps, n_iter: int) -> torch.Tensor:
    """:func:`~zerodce.curves.apply_curves` (in place on ``x``) with coded maps.

    Each row's iterations run in L1 cache (``v + a * (v - v^2)``, the unfused loop's arithmetic
    up to fused multiply-add), so ``x`` and the codes are read from memory once.
    """
    if not NUMBA_INSTALLED or x.device.type != "cpu" or x.dtype != torch.float32 or not x.is_contiguous():
        return apply_curves(x, maps.dense(), n_iter, inplace=True)
    # The one fused kernel (zerodce.core.coded), on numpy views of the tensors: x changes in place.
    core.apply_coded_curves(x.numpy(), core.CodedMaps(maps.codes.numpy(), maps.lut.numpy()), n_iter)
    return x
