"""Inference maths without torch: everything after the networks, on numpy float32 arrays.

Each module is the numpy twin of a torch module and holds the constants both use (the torch
modules import them from here), so that the two implementations cannot drift apart:

- :mod:`~zerodce.core.color`: luma, sRGB coding, YCbCr, metering, the area thumbnail (:mod:`zerodce.adjust`)
- :mod:`~zerodce.core.noise`: the noise estimates (:mod:`zerodce.adjust`)
- :mod:`~zerodce.core.filters`: box and guided filters, the gain-aware denoiser (:mod:`zerodce.adjust`)
- :mod:`~zerodce.core.tone`: the hue-safe exposure, strength and cast controls (:mod:`zerodce.tone`)
- :mod:`~zerodce.core.curves`: the LE curves (:mod:`zerodce.curves`)
- :mod:`~zerodce.core.coded`: curves from uint8-coded maps, numba when installed (:mod:`zerodce.coded`)
- :mod:`~zerodce.core.kernels`: numba kernels of the denoiser and the tone chain, used when installed
- :mod:`~zerodce.core.resample`: the bilinear resampling of Zero-DCE++ and the denoiser (:mod:`zerodce.model`)
- :mod:`~zerodce.core.denoise`: the learned denoiser around its network (:mod:`zerodce.denoiser`)

Images are (B, C, H, W) float32 arrays in [0, 1], per-image scalars (B,) arrays. Nothing here
imports torch; numba is imported on first use, by :mod:`~zerodce.core.coded` and
:mod:`~zerodce.core.kernels` (``ZERODCE_NO_NUMBA=1`` keeps the kernels off).
"""

from __future__ import annotations

from . import coded, color, curves, denoise, filters, kernels, noise, resample, tone

__all__ = ["coded", "color", "curves", "denoise", "filters", "kernels", "noise", "resample", "tone"]
