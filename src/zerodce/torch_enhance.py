"""The PyTorch pipeline: :class:`Enhancer` (GPU, bf16, any weights file or module, training tools).

Contract: a float tensor (B, 3, H, W) with values in [0, 1] goes in; a tensor of the same shape,
dtype and device comes out, clamped to [0, 1], computed under ``torch.inference_mode()``. Tiling,
device and memory format are the enhancer's concern. The torch-free pipeline with the same
interface is :class:`zerodce.runtime.session.Session`; :func:`zerodce.enhance.pipeline` picks one,
and tests pin the two to each other.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .adjust import (
    Metering,
    denoise_halo,
    gain_aware_denoise,
    luma,
    luma_chroma_noise,
    thumbnail,
)
from .backends import Backend, Precision, make_backend
from .coded import CodedMaps, apply_coded_curves, dense_maps
from .curves import apply_curves
from .denoiser import learned_denoise, learned_halo, load_denoiser
from .model import upsample_rows
from .options import BoundControls, Options
from .tiling import BYTES_PER_PIXEL, auto_tile, between_tiles
from .tone import (
    apply_cast,
    apply_gain,
    auto_strength,
    cast_gains,
    curve_saturation,
    mean_maps,
    solve_exposure,
    value,
    value_gain,
)
from .weights import DEFAULT_MODEL, load_model

__all__ = ["Enhancer", "receptive_radius"]

TileArg = int | Literal["auto"] | None
Denoiser = Literal["guided", "learned"]  # zerodce.denoiser.DENOISERS


def receptive_radius(model: nn.Module) -> int:
    """Pixels on each side that influence one output pixel: 7 chained 3x3 convolutions -> 7."""
    return 7


@dataclass
class _Controls:
    u: torch.Tensor | None = None  # (B,) exposure scalar (zerodce.tone); None: the paper's per-channel curves
    cast: torch.Tensor | None = None  # (B, 3) linear-light cast-correction gains
    sigma: torch.Tensor | None = None  # (B,) input noise level for the denoiser, times the effect's strength
    sigma_c: torch.Tensor | None = None  # (B,) the same for the input's chroma (bounds the chroma change)


class Enhancer(BoundControls):
    """Apply a curve-estimation model to image tensors, exactly and in bounded memory.

    Args:
        model: a bundled model name (``"zerodce"``, ``"fast"``), a weights path, or a loaded module.
        device: torch device for the computation (``"cpu"``, ``"cuda"``).
        tile: tile side in pixels for large images, ``None`` for never, ``"auto"`` (default) to
            choose from the available memory (:func:`zerodce.tiling.auto_tile`). Tiles overlap by the receptive
            radius (plus the denoiser's), so the result equals the untiled one up to float rounding.
        preset: a named set of controls (:data:`zerodce.presets.PRESETS`): ``"natural"`` (default),
            ``"bright"`` or ``"night"``. The options below replace
            the preset's value when given.
        paper: the paper's method exactly instead: per-channel curves at the model's exposure,
            nothing added (for comparison: per-channel curves can shift hue). No other control applies.
        strength: 0..1, how much of the effect to apply (0 returns the input; the exposure change is
            scaled in stops, the colour correction and denoising with it). Default 1.
        exposure: target brightness of the output in (0, 1), e.g. 0.3 .. 0.7, as ``metering``
            measures it, honoured on every image (presets instead leave well-exposed images alone and
            never darken). See :mod:`zerodce.tone`.
        metering: what ``exposure`` measures: ``"mean"`` (mean luma), ``"linear"`` / ``"centre"``
            (linear-light luminance, whole frame / centre-weighted, as a camera meters; 0.46 is middle grey).
        balance: share of the colour cast to remove, 0 (keep the input's colours) .. 1; bounded so
            that coloured light is never turned towards its complement (:func:`zerodce.tone.cast_gains`).
        denoise: strength of the gain-aware denoiser (0 = off); default: the preset's, or the chosen
            denoiser's default (2 for ``"guided"``, ``LEARNED_STRENGTH`` for ``"learned"``).
        denoiser: ``"guided"`` (the gain-aware guided filter of :mod:`zerodce.adjust`) or ``"learned"``
            (the bundled network of :mod:`zerodce.denoiser`).
        backend: ``"auto"`` (onnxruntime on CPU when installed, else PyTorch), ``"torch"`` or
            ``"onnxruntime"``; see :mod:`zerodce.backends`.
        precision: ``"fp32"`` (default), ``"bf16"`` (PyTorch autocast) or ``"int8"`` (onnxruntime,
            bundled quantised graph); reduced precisions trade accuracy for speed (README, "Speed").
        options: a :class:`~zerodce.options.Options` instead of the arguments above (its ``model``
            is loaded unless ``model`` is a module).

    Every preset applies the curves as one luminance gain per pixel, so hue is kept
    (:mod:`zerodce.tone`). An option that would have no effect (any control with ``paper=True``)
    is a ValueError.

    Example:
        >>> enh = Enhancer("zerodce")
        >>> x = torch.rand(2, 3, 16, 20) * 0.2
        >>> y = enh(x)
        >>> y.shape == x.shape and bool((y >= x - 1e-6).float().mean() > 0.9)
        True
    """

    def __init__(
        self,
        model: str | Path | nn.Module = DEFAULT_MODEL,
        device: str | torch.device = "cpu",
        tile: TileArg = "auto",
        *,
        preset: str | None = None,
        paper: bool = False,
        strength: float | None = None,
        exposure: float | None = None,
        metering: Metering | None = None,
        balance: float | None = None,
        denoise: float | None = None,
        denoiser: Denoiser | None = None,
        backend: Backend = "auto",
        precision: Precision = "fp32",
        options: Options | None = None,
    ) -> None:
        if options is None:
            given = {"preset": preset, "paper": paper, "strength": strength, "exposure": exposure}
            given.update(metering=metering, balance=balance, denoise=denoise, denoiser=denoiser)
            name = "<module>" if isinstance(model, nn.Module) else str(model)
            options = Options(model=name, device=str(device), tile=tile, backend=backend, precision=precision, **given)
        self.device = torch.device(options.device)
        self.tile = options.tile
        self._set_controls(options)
        backend, precision = options.backend, options.precision  # type: ignore[assignment]
        net = model if isinstance(model, nn.Module) else load_model(options.model)
        self.model = net.to(self.device).eval().to(memory_format=torch.channels_last)
        self.config = self.model.config
        self._net = load_denoiser().to(self.device) if self.denoiser == "learned" and self.denoise > 0 else None
        # The learned denoiser works on s x s blocks: tiles start on that grid so they see the same blocks.
        self._align = self._net.config.scale if self._net is not None else 1
        self._loaded_net = self._net
        name = None if isinstance(model, nn.Module) else options.model
        self.maps = make_backend(self.model, self.device, backend, precision, name)
        self.backend, self.precision = self.maps.name, precision
        # PyTorch's DCE-Net convolutions are fastest channels-last; onnxruntime takes and returns
        # plain (N, C, H, W) arrays, and Zero-DCE++'s band loop is elementwise: those keep image
        # and curve maps in the plain layout (measured: mixing layouts made the curve loop 3x slower).
        self._bands = self.config.arch == "dcenet++" and self.config.scale > 1
        plain = self._bands or self.backend == "onnxruntime"
        self._layout = torch.contiguous_format if plain else torch.channels_last

    def _set_controls(self, options: Options) -> None:
        self._bind_controls(options)

    def with_options(self, options: Options | None = None, **controls: object) -> Enhancer:
        """This enhancer (its loaded model, backend and denoiser shared) with the controls of ``options``.

        Cheap (no loading): the service calls it per request. The controls are those of ``options``,
        then ``controls``; the enhancer's session stays (:meth:`~zerodce.options.Options.controls_onto`).
        A learned denoiser the enhancer has not loaded is loaded here, once.
        """
        options = self._rebound(options, controls)
        other = copy.copy(self)
        other._set_controls(options)
        if not (other.denoiser == "learned" and other.denoise > 0):
            other._net, other._align = None, 1
        elif other._net is None:
            if self._loaded_net is None:  # loaded once, shared by every enhancer bound from this one
                self._loaded_net = load_denoiser().to(other.device)
            other._net = other._loaded_net = self._loaded_net
            other._align = other._net.config.scale
        return other

    def _tile_for(self, h: int, w: int) -> int | None:
        if self.tile is None:
            return None
        if self.tile == "auto":
            if self.config.arch == "dcenet++" and self.config.scale > 1:
                return None  # maps at 1/scale: a few bytes per pixel, no tiling needed
            return auto_tile(h, w, BYTES_PER_PIXEL.get(self.backend, BYTES_PER_PIXEL["torch"]))
        return self.tile if max(h, w) > self.tile else None

    def _tone(self, x: torch.Tensor, a: torch.Tensor | CodedMaps, ctl: _Controls, owned: bool = False) -> torch.Tensor:
        """The curves on one region: the paper's per-channel curves, or the hue-safe gain with its
        exposure and cast correction (:mod:`zerodce.tone`). ``owned``: ``x`` may be overwritten."""
        n = self.config.n_iter
        if ctl.u is None:
            y = x if owned else x.clone()
            if isinstance(a, CodedMaps):
                return apply_coded_curves(y, a, n)
            return apply_curves(y, a, n, inplace=True)
        a = dense_maps(a)
        y = curve_saturation(x, a, n, apply_gain(x, value_gain(value(x), mean_maps(a, n), n, ctl.u)), ctl.u)
        return y if ctl.cast is None else apply_cast(y, ctl.cast)

    def _finish(self, x: torch.Tensor, a: torch.Tensor, ctl: _Controls, owned: bool = False) -> torch.Tensor:
        """Curves and controls, then the denoiser, on one region.

        ``owned``: ``x`` is a copy the caller no longer needs, so the curves may run in it (unless
        the denoiser still needs the input).
        """
        y = self._tone(x, a, ctl, owned and ctl.sigma is None)
        if ctl.sigma is not None:
            if self._net is not None:
                y = learned_denoise(self._net, y, x, self.denoise, ctl.sigma, ctl.sigma_c)
            else:
                y = gain_aware_denoise(y, x, self.denoise, ctl.sigma, self.denoise_radius, ctl.sigma_c)
        return y

    def _halo(self, ctl: _Controls) -> int:
        """Context the denoiser needs around a tile (0 without one)."""
        if ctl.sigma is None:
            return 0
        return learned_halo(self._net.config) if self._net is not None else denoise_halo(self.denoise_radius)

    def exposure_scalars(self, x: torch.Tensor) -> torch.Tensor:
        """The exposure scalar ``u`` (B,) this enhancer gives each image (strength and do-no-harm
        factor included; on the exposure thumbnail): passed back as ``scalars`` it reproduces the
        enhancer's tone."""
        u = self._controls(x.to(self.device, torch.float32), with_noise=False).u
        return u if u is not None else torch.ones(x.shape[0])

    def _prepared(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The exposure thumbnail of ``x`` and its channel-mean curve maps."""
        small = thumbnail(x).contiguous()  # one layout for image and maps (mixed: 10x slower search)
        return small, mean_maps(dense_maps(self.maps(small)).contiguous(), self.config.n_iter)

    def scalars_following(self, x: torch.Tensor, follow: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Exposure scalars (B,) for ``scalars`` that give each image the mean luma ``follow(levels)``,
        where ``levels`` (B,) is the mean luma of the tone this enhancer gives each image on its own
        (before the cast correction; the saturation step keeps luma exactly). Video smoothing follows
        the frames' levels with a moving average; ``follow`` = identity reproduces the enhancer."""
        small, mm = self._prepared(x.to(self.device, torch.float32))
        n = self.config.n_iter
        u = self._controls(small, with_noise=False, prepared=(small, mm)).u
        if u is None:
            raise ValueError("scalars: the paper's method has no exposure control")
        native = luma(apply_gain(small, value_gain(value(small), mm, n, u))).mean(dim=(1, 2, 3))
        return solve_exposure(small, mm, n, follow(native).to(small), "mean")

    def _controls(
        self,
        x: torch.Tensor,
        exposure: torch.Tensor | None = None,
        with_noise: bool = True,
        scalars: torch.Tensor | None = None,
        prepared: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> _Controls:
        """Per-image quantities computed once on the whole image (on a thumbnail), so that tiles agree.

        ``exposure`` (B,): a level per image that replaces the enhancer's, honoured as an explicit one.
        ``scalars`` (B,): exposure scalars to use as they are (:meth:`exposure_scalars`).
        ``prepared``: :meth:`_prepared` of ``x``, when the caller has it.
        """
        ctl = _Controls()
        if self.paper:
            return ctl
        n = self.config.n_iter
        small, mm = prepared if prepared is not None else self._prepared(x)
        level = exposure if exposure is not None else self.level
        if scalars is not None:
            u = scalars.to(small)
        elif level is None:
            u = small.new_ones(small.shape[0])  # the model's own tone
        else:
            target = level.to(small) if isinstance(level, torch.Tensor) else small.new_full((small.shape[0],), level)
            u = solve_exposure(small, mm, n, target, self.metering)
        effect = small.new_full((small.shape[0],), self.strength)
        if self.adaptive and exposure is None:
            effect = effect * auto_strength(small)
            u = u.clamp_min(0.0)  # a preset never darkens a photo below what it was
        ctl.u = u if scalars is not None else u * effect
        if self.balance > 0:
            toned = apply_gain(small, value_gain(value(small), mm, n, ctl.u))
            ctl.cast = cast_gains(toned, self.balance * effect)
        if with_noise and self.denoise > 0 and bool((effect > 0).any()):
            sigma, sigma_c = luma_chroma_noise(x)
            ctl.sigma = sigma * effect  # the denoiser follows the effect: strength 0 is the input
            ctl.sigma_c = sigma_c * effect
        return ctl

    def _run(
        self,
        x: torch.Tensor,
        out: torch.Tensor,
        scale: float | None,
        exposure: torch.Tensor | None,
        scalars: torch.Tensor | None = None,
    ) -> None:
        """Enhance ``x`` (float, [0, 1]) into ``out``: float, or integer quantised at ``scale``."""

        def put(region: tuple, y: torch.Tensor) -> None:  # clamp (and quantise) into the output
            if scale is None:
                out[region] = y.clamp_(0.0, 1.0)
            else:
                out[region] = y.mul_(scale).round_().clamp_(0.0, scale)

        _, _, h, w = x.shape
        ctl = self._controls(x, exposure, scalars=scalars)
        if self._bands:
            self._run_bands(x, put, ctl)
            return
        tile = self._tile_for(h, w)
        if not tile:
            put((...,), self._finish(x, self.maps(x), ctl))
            return
        r = receptive_radius(self.model)
        d, g = self._halo(ctl), self._align
        for y0 in range(0, h, tile):
            for x0 in range(0, w, tile):
                between_tiles()
                y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
                # The tile plus the denoiser's context (d), whose curve maps need r more pixels of
                # real image: inner pixels see exactly what they would in the whole image.
                ey0, ex0, ey1, ex1 = max(y0 - d, 0) // g * g, max(x0 - d, 0) // g * g, min(y1 + d, h), min(x1 + d, w)
                hy0, hx0, hy1, hx1 = max(ey0 - r, 0), max(ex0 - r, 0), min(ey1 + r, h), min(ex1 + r, w)
                region = x[..., hy0:hy1, hx0:hx1].contiguous(memory_format=self._layout)
                a = self.maps(region)[..., ey0 - hy0 : ey1 - hy0, ex0 - hx0 : ex1 - hx0]
                y = self._finish(x[..., ey0:ey1, ex0:ex1], a, ctl)
                put((..., slice(y0, y1), slice(x0, x1)), y[..., y0 - ey0 : y1 - ey0, x0 - ex0 : x1 - ex0])

    def _run_bands(self, x: torch.Tensor, put: Callable, ctl: _Controls) -> None:
        """Zero-DCE++: one small map for the whole image, upsampled and applied band by band.

        The full-resolution map is never materialised and each band's 8 curve iterations run
        in cache (README, "Speed"); results equal the whole-image computation to float rounding.
        """
        _, _, h, w = x.shape
        small, hp, wp = self.model.small_maps(x)
        cols = F.interpolate(small, size=(small.shape[-2], wp), mode="bilinear", align_corners=True)[..., :w]
        cols = cols.contiguous()
        d, g = self._halo(ctl), self._align
        band = 128 if d else 16
        for y0 in range(0, h, band):
            between_tiles()
            y1 = min(y0 + band, h)
            ey0, ey1 = max(y0 - d, 0) // g * g, min(y1 + d, h)
            a = upsample_rows(cols, hp, ey0, ey1)
            y = self._finish(x[..., ey0:ey1, :], a, ctl)
            put((..., slice(y0, y1), slice(None)), y[..., y0 - ey0 : y1 - ey0, :])

    def _check(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"expected a tensor of shape (B, 3, H, W), got {shape}")
        if x.shape[0] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
            raise ValueError(f"empty image tensor {tuple(x.shape)}")

    @torch.inference_mode()
    def __call__(
        self, x: torch.Tensor, exposure: torch.Tensor | None = None, scalars: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Enhance a float batch (B, 3, H, W) in [0, 1]; same shape, dtype and device out.

        ``exposure`` (B,) overrides the enhancer's exposure level per image; ``scalars`` (B,) its
        exposure scalars (:meth:`exposure_scalars`; video smoothing).
        """
        self._check(x)
        if not x.is_floating_point():
            raise TypeError(f"expected a floating-point tensor in [0, 1], got {x.dtype}")
        src_dtype, src_device = x.dtype, x.device
        xf = torch.nan_to_num(x.to(self.device, torch.float32), nan=0.0).clamp_(0.0, 1.0)
        xf = xf.contiguous(memory_format=self._layout)
        if not self._bands and not self._tile_for(*xf.shape[-2:]):
            # Whole image: xf is this call's own copy, so no output buffer or extra copy is needed.
            y = self._finish(xf, self.maps(xf), self._controls(xf, exposure, scalars=scalars), owned=True)
            return y.clamp_(0.0, 1.0).to(src_device, src_dtype).contiguous()
        out = torch.empty_like(xf, memory_format=self._layout)
        self._run(xf, out, None, exposure, scalars)
        return out.to(src_device, src_dtype).contiguous()

    @torch.inference_mode()
    def with_curves_of(
        self, x: torch.Tensor, source: torch.Tensor, exposure: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Apply to ``x`` the curves that enhancing ``source`` (same shape) applies: its curve maps
        and its exposure, strength and cast correction, then the denoiser at ``source``'s noise level with ``x``
        as its input; whole images, float in [0, 1]. ``with_curves_of(x, x)`` is ``enhancer(x)``. For training pairs:
        a clean image through the curves its noisy copy gets (``scripts/train_denoiser.py``).
        """
        self._check(x)
        self._check(source)
        if x.shape != source.shape:
            raise ValueError(f"x and source must have the same shape, got {tuple(x.shape)} and {tuple(source.shape)}")
        xs = [
            t.to(self.device, torch.float32).clamp(0.0, 1.0).contiguous(memory_format=self._layout) for t in (x, source)
        ]
        y = self._finish(xs[0], self.maps(xs[1]), self._controls(xs[1], exposure))
        return y.clamp_(0.0, 1.0)

    @torch.inference_mode()
    def enhance_integer(
        self, x: torch.Tensor, scale: int, exposure: torch.Tensor | None = None, scalars: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Enhance integer samples (B, 3, H, W) on 0..``scale`` (uint8: 255, 16-bit: 65535).

        Memory-lean path for files: one float copy of the input, the output quantised tile by
        tile straight into an integer tensor (uint8, or uint16 for 16-bit), channels-last.
        """
        self._check(x)
        xf = x.to(self.device, torch.float32, memory_format=self._layout).div_(scale)
        # Channels-last output: its (H, W, C) numpy view is contiguous, ready for the encoder.
        out = torch.empty(xf.shape, dtype=torch.uint8 if scale == 255 else _UINT16, device=self.device)
        out = out.contiguous(memory_format=torch.channels_last)
        self._run(xf, out, float(scale), exposure, scalars)
        return out.cpu()

    # ---- the numpy interface every pipeline shares (zerodce.enhance's adapters, video, batch) ----------
    def run_float(self, x: np.ndarray) -> np.ndarray:
        """Enhance float32 (B, 3, H, W) in [0, 1] given as numpy; float32 numpy out."""
        return self(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()

    def run_integer(
        self, x: np.ndarray, scale: int, exposure: np.ndarray | None = None, scalars: np.ndarray | None = None
    ) -> np.ndarray:
        """:meth:`enhance_integer` on numpy (B, 3, H, W) uint8 / uint16 (any strides); the result is
        (B, 3, H, W) of the input's dtype, a view of a contiguous (B, H, W, 3) array."""
        with warnings.catch_warnings():  # read-only arrays (PIL's) are fine: the tensor is only read
            warnings.simplefilter("ignore", UserWarning)
            lean = x.dtype == np.uint8 or _UINT16 != torch.int32
            t = torch.from_numpy(x if lean else x.astype(np.int32))
        e = None if exposure is None else torch.as_tensor(exposure, dtype=torch.float32)
        u = None if scalars is None else torch.as_tensor(scalars, dtype=torch.float32)
        return self.enhance_integer(t, scale, e, u).numpy().astype(x.dtype, copy=False)

    def scalars_of(self, x: np.ndarray) -> np.ndarray:
        """:meth:`exposure_scalars` of float32 numpy (B, 3, H, W)."""
        return self.exposure_scalars(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).cpu().numpy()

    def follow_scalars(self, x: np.ndarray, follow: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """:meth:`scalars_following` of float32 numpy (B, 3, H, W), ``follow`` on numpy levels."""
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        u = self.scalars_following(
            xt, lambda levels: torch.as_tensor(follow(levels.cpu().numpy()), dtype=torch.float32)
        )
        return u.cpu().numpy()


# Memory on large images (issue 16): 16-bit samples as uint16 tensors (torch >= 2.3), not int32 copies.
_UINT16 = getattr(torch, "uint16", torch.int32)
