"""Inference maths without torch: everything after the networks, on numpy float32 arrays.

Each module is the numpy twin of a torch module and holds the constants both use (the torch
modules import them from here), so that the two implementations cannot drift apart:

- :mod:`~zerodce.core.color`: luma, sRGB coding, YCbCr, metering, the area thumbnail (:mod:`zerodce.adjust`)
- :mod:`~zerodce.core.noise`: the noise estimates (:mod:`zerodce.adjust`)
- :mod:`~zerodce.core.filters`: box and guided filters, the gain-aware denoiser (:mod:`zerodce.adjust`)

Images are (B, C, H, W) float32 arrays in [0, 1], per-image scalars (B,) arrays. Nothing here
imports torch.
"""

from __future__ import annotations

from . import color, filters, noise

__all__ = ["color", "filters", "noise"]
