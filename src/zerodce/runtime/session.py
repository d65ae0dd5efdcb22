"""The torch-free pipeline: :class:`Session`, the bundled models on onnxruntime and numpy.

A session loads the shipped graphs of one bundled model once (:mod:`zerodce.runtime.graphs`: the
curve-map graph, fp32 or int8, or the fast model's small-map graph; the learned denoiser's graph on
first use) and enhances with the controls of an :class:`~zerodce.options.Options` bound per call
(:meth:`Session.with_options`). Everything after the networks is :mod:`zerodce.core` (numpy): the
same maths as the PyTorch pipeline (:class:`zerodce.torch_enhance.Enhancer`), to which tests pin it.

How it uses the machine: onnxruntime runs the convolutions on every core; the work after them (curves,
controls, denoiser) runs on row bands that stay in cache. Each band carries the rows of context its
denoiser needs, so bands and tiles give the whole-image result (to float rounding).

How each architecture tiles:

- **DCE-Net** (``zerodce``): its maps are as large as the image (24 floats per pixel), so a large
  image runs in square tiles (``tile``; ``"auto"`` from the memory available), each with the
  network's receptive radius and the denoiser's context around it;
- **Zero-DCE++** (``fast``): one small map for the whole image, upsampled row band by row band
  (``tile`` rows per band; ``None`` applies the whole image at once), never materialised at full size.
"""

from __future__ import annotations

import contextvars
import copy
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from ..core import kernels
from ..core.coded import CodedMaps, apply_coded_curves, dense_maps, tanh_table
from ..core.color import luma, thumbnail
from ..core.curves import apply_curves
from ..core.denoise import DenoiserConfig, learned_denoise, learned_halo
from ..core.filters import denoise_halo, gain_aware_denoise
from ..core.noise import luma_chroma_noise
from ..core.resample import downscale, upsample_cols, upsample_rows
from ..core.tone import (
    apply_gain,
    auto_strength,
    cast_gains,
    mean_maps,
    solve_exposure,
    tone,
    value,
    value_gain,
)
from ..options import BoundControls, Options
from ..tiling import BYTES_PER_PIXEL, RECEPTIVE_RADIUS, auto_tile, between_tiles
from . import graphs
from .threads import LazyPool, one_blas_thread

__all__ = ["Session"]

BAND_ROWS = 256  # rows per band of the work after the networks (each with the denoiser's context: 12-30 rows)


def _run_all(jobs: list[Callable[[], None]]) -> None:
    """Run ``jobs`` (tiles or bands) in turn, in this thread: its context carries the service's
    cancellation check. (A thread pool over bands measured slower, 2.94 s against 2.69 s for a
    12 MP photo with the fast model's defaults: numpy's small per-band operations contend for the
    GIL; the cores are used inside onnxruntime and the numba kernels instead.)"""
    for job in jobs:
        job()


@dataclass(frozen=True)
class _Config:
    """A bundled model's config, as its graph records it (zerodce.model.ModelConfig's fields)."""

    arch: str
    channels: int
    n_iter: int
    scale: int


class _Scratch:
    """Float32 buffers a call reuses from band to band (tile to tile): a new 12 MB array per band
    is fresh memory from the system, page-faulted in again each time (about 60 ms of a 12 MP photo's
    0.25 s with the fast model, or none, depending on what the process allocated before: glibc
    raises its threshold for such blocks after freeing one). Each slot grows to the largest band."""

    def __init__(self) -> None:
        self._slots: dict[str, np.ndarray] = {}

    def get(self, slot: str, shape: tuple[int, ...]) -> np.ndarray:
        n = int(np.prod(shape))
        buf = self._slots.get(slot)
        if buf is None or buf.size < n:
            buf = self._slots[slot] = np.empty(n, np.float32)
        return buf[:n].reshape(shape)


@dataclass
class _Controls:
    u: np.ndarray | None = None  # (B,) exposure scalar; None: the paper's per-channel curves
    cast: np.ndarray | None = None  # (B, 3) linear-light cast gains
    sigma: np.ndarray | None = None  # (B,) input noise level times the effect's strength
    sigma_c: np.ndarray | None = None  # (B,) the same for chroma
    pending: Future | None = None  # the noise estimate still running (sigma and sigma_c from it)
    effect: np.ndarray | None = None
    scratch: _Scratch = field(default_factory=_Scratch)  # this call's band buffers

    @property
    def denoised(self) -> bool:
        return self.sigma is not None or self.pending is not None

    def resolve(self) -> None:
        """Wait for the noise estimate, if it is still running, and set sigma and sigma_c from it."""
        if self.pending is not None:
            sigma, sigma_c = self.pending.result()
            self.sigma = (sigma * self.effect).astype(np.float32)
            self.sigma_c = (sigma_c * self.effect).astype(np.float32)
            self.pending = None


_NOISE_POOL = LazyPool("zerodce-noise", 2)


def _noise_beside_networks(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`~zerodce.core.noise.luma_chroma_noise` with one BLAS thread: it runs beside the networks."""
    with one_blas_thread():
        return luma_chroma_noise(x)


class Session(BoundControls):
    """A bundled model on onnxruntime with numpy around it; the same interface as the PyTorch
    :class:`~zerodce.torch_enhance.Enhancer` (``run_float``, ``run_integer``, ``follow_scalars``,
    ``options()``, ``with_options``).

    Args:
        options: its session part (model, precision, tile) is loaded here; its controls are this
            session's until :meth:`with_options` binds others.

    Example:
        >>> s = Session(Options(model="zerodce", tile=None))
        >>> x = np.full((1, 3, 8, 10), 0.1, dtype=np.float32)
        >>> y = s.run_float(x)
        >>> y.shape, y.dtype, bool(y.min() > 0.1)
        ((1, 3, 8, 10), dtype('float32'), True)
    """

    backend = "onnxruntime"
    device = "cpu"

    def __init__(self, options: Options | None = None, **kwargs: object) -> None:
        options = options if options is not None else Options(**kwargs)  # type: ignore[arg-type]
        if options.device != "cpu" or options.backend not in ("auto", "onnxruntime") or options.precision == "bf16":
            raise ValueError("a Session runs on onnxruntime on the CPU (fp32 or int8); use the PyTorch Enhancer")
        self.tile = options.tile
        self.precision = options.precision
        self.model_name = options.model
        small = ("small", options.model) in graphs.GRAPHS
        self._graph = graphs.SmallMapsGraph(options.model) if small else graphs.MapsGraph(options.model, self.precision)
        self.config = _Config(**self._graph.config)
        self._bands = self.config.arch == "dcenet++" and self.config.scale > 1
        self._denoiser: graphs.DenoiserLogitsGraph | None = None
        self._denoiser_config: DenoiserConfig | None = None
        self._set_controls(options)

    # ---- options -------------------------------------------------------------------------------------
    def _set_controls(self, options: Options) -> None:
        self._bind_controls(options)
        if self.denoiser == "learned" and self.denoise > 0 and self._denoiser is None:
            self._denoiser = graphs.DenoiserLogitsGraph()
            self._denoiser_config = DenoiserConfig(**self._denoiser.config)
        self._align = self._denoiser.scale if self._learned else 1

    @property
    def _learned(self) -> bool:
        return self.denoiser == "learned" and self.denoise > 0 and self._denoiser is not None

    def with_options(self, options: Options | None = None, **controls: object) -> Session:
        """This session (its graphs shared) with other controls: those of ``options``, then ``controls``
        (``with_options(preset="night")``); the session's model, precision and tile stay
        (:meth:`~zerodce.options.Options.controls_onto`)."""
        options = self._rebound(options, controls)
        other = copy.copy(self)
        other._set_controls(options)
        if self._denoiser is None:  # loaded once, shared from then on
            self._denoiser, self._denoiser_config = other._denoiser, other._denoiser_config
        return other

    # ---- the networks --------------------------------------------------------------------------------
    def _maps(self, x: np.ndarray) -> np.ndarray | CodedMaps:
        """Full-resolution curve maps of ``x`` (B, 3, H, W) (the fast model: its small map upsampled)."""
        if not self._bands:
            maps = self._graph(x)
            if self._graph.coded is not None:
                return CodedMaps(maps, tanh_table(*self._graph.coded, maps.shape[0], maps.shape[1]))
            return maps
        cols, hp = self._small_cols(x)
        h, w = x.shape[-2:]
        return upsample_rows(cols, hp, 0, h)[..., :w]

    def _small_cols(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """The fast model's small map, upsampled along the width to the padded width, and the padded height."""
        s = self.config.scale
        h, w = x.shape[-2:]
        hp, wp = h + (-h % s), w + (-w % s)
        small = self._graph(downscale(x, s))
        return np.ascontiguousarray(upsample_cols(small, wp)[..., :w]), hp

    # ---- controls ------------------------------------------------------------------------------------
    def _prepared(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        small = np.ascontiguousarray(thumbnail(x))
        return small, self._thumb_maps(small)

    def _thumb_maps(self, small: np.ndarray) -> np.ndarray:
        return mean_maps(np.ascontiguousarray(dense_maps(self._maps(small))), self.config.n_iter)

    def _controls(
        self,
        x: np.ndarray,
        exposure: np.ndarray | None = None,
        with_noise: bool = True,
        scalars: np.ndarray | None = None,
        prepared: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> _Controls:
        ctl = _Controls()
        if self.paper:
            return ctl
        n = self.config.n_iter
        small = prepared[0] if prepared is not None else np.ascontiguousarray(thumbnail(x))
        b = small.shape[0]
        effect = np.full(b, self.strength, np.float32)
        if self.adaptive and exposure is None:
            effect = effect * auto_strength(small)
        if with_noise and self.denoise > 0 and bool((effect > 0).any()):
            # The noise estimate (about 0.1 s of numpy and numba) runs beside the rest: the thumbnail's
            # search (one core) and the network (onnxruntime's threads); the first region that needs
            # it waits for it.
            ctl.pending = _NOISE_POOL.submit(contextvars.copy_context().run, _noise_beside_networks, x)
            ctl.effect = effect
        mm = prepared[1] if prepared is not None else self._thumb_maps(small)
        level = exposure if exposure is not None else self.level
        if scalars is not None:
            u = np.asarray(scalars, dtype=np.float32).reshape(b)
        elif level is None:
            u = np.ones(b, np.float32)
        else:
            target = np.broadcast_to(np.asarray(level, dtype=np.float32), (b,)).copy()
            u = solve_exposure(small, mm, n, target, self.metering)
        if self.adaptive and exposure is None:
            u = np.maximum(u, 0.0)  # a preset never darkens a photo below what it was
        ctl.u = (u if scalars is not None else u * effect).astype(np.float32)
        if self.balance > 0:
            toned = apply_gain(small, value_gain(value(small), mm, n, ctl.u))
            ctl.cast = cast_gains(toned, (self.balance * effect).astype(np.float32))
        return ctl

    def _halo(self, ctl: _Controls) -> int:
        if not ctl.denoised:
            return 0
        return learned_halo(self._denoiser_config) if self._learned else denoise_halo(self.denoise_radius)

    # ---- one region ----------------------------------------------------------------------------------
    def _tone(self, x: np.ndarray, a: np.ndarray | CodedMaps, ctl: _Controls, owned: bool) -> np.ndarray:
        n = self.config.n_iter
        if ctl.u is None:
            y = x
            if not owned:
                y = ctl.scratch.get("tone", x.shape)
                np.copyto(y, x)
            if isinstance(a, CodedMaps):
                return apply_coded_curves(y, a, n)
            return apply_curves(y, a, n, inplace=True)
        return tone(x, dense_maps(a), n, ctl.u, ctl.cast, out=ctl.scratch.get("tone", x.shape))

    def _finish(self, x: np.ndarray, a: np.ndarray | CodedMaps, ctl: _Controls, owned: bool = False) -> np.ndarray:
        ctl.resolve()
        y = self._tone(x, a, ctl, owned and ctl.sigma is None)
        if ctl.sigma is not None:
            if self._learned:
                y = learned_denoise(self._denoiser, y, x, self.denoise, ctl.sigma, ctl.sigma_c)
            else:
                out = ctl.scratch.get("denoised", y.shape)
                y = gain_aware_denoise(y, x, self.denoise, ctl.sigma, self.denoise_radius, ctl.sigma_c, out)
        return y

    # ---- whole images, tiles and bands -----------------------------------------------------------------
    def _tile_for(self, h: int, w: int) -> int | None:
        if self.tile is None or self._bands:
            return None
        if self.tile == "auto":
            return auto_tile(h, w, BYTES_PER_PIXEL["onnxruntime"])
        return self.tile if max(h, w) > self.tile else None

    def _band_rows(self) -> int | None:
        """Rows per band of the fast model (its tiling), None for the whole image at once."""
        if self.tile is None:
            return None
        return BAND_ROWS if self.tile == "auto" else int(self.tile)

    def _run(self, x: np.ndarray, put: Callable, ctl: _Controls) -> None:
        """Enhance ``x`` (float32 (B, 3, H, W) in [0, 1]); ``put(rows, cols, y)`` stores each region."""
        _, _, h, w = x.shape
        d, g = self._halo(ctl), self._align
        if self._bands:
            cols, hp = self._small_cols(x)
            band = self._band_rows() or h

            def rows(y0: int, y1: int) -> tuple[np.ndarray, np.ndarray]:  # the map's rows: one buffer for all bands
                out = ctl.scratch.get("maps", (*cols.shape[:2], y1 - y0, w))
                return x[..., y0:y1, :], upsample_rows(cols, hp, y0, y1, out)

            self._bands_of(h, band, d, g, rows, put, ctl)
            return
        tile = self._tile_for(h, w)
        if not tile:
            a = self._maps(x)
            self._bands_of(h, BAND_ROWS, d, g, lambda y0, y1: (x[..., y0:y1, :], a[..., y0:y1, :]), put, ctl)
            return
        r = RECEPTIVE_RADIUS
        jobs = []
        for y0 in range(0, h, tile):
            for x0 in range(0, w, tile):

                def job(y0: int = y0, x0: int = x0) -> None:
                    between_tiles()
                    y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
                    # The tile plus the denoiser's context (d), whose maps need r more pixels of real
                    # image: inner pixels see exactly what they would in the whole image.
                    ey0, ex0 = max(y0 - d, 0) // g * g, max(x0 - d, 0) // g * g
                    ey1, ex1 = min(y1 + d, h), min(x1 + d, w)
                    hy0, hx0, hy1, hx1 = max(ey0 - r, 0), max(ex0 - r, 0), min(ey1 + r, h), min(ex1 + r, w)
                    region = np.ascontiguousarray(x[..., hy0:hy1, hx0:hx1])
                    a = self._maps(region)[..., ey0 - hy0 : ey1 - hy0, ex0 - hx0 : ex1 - hx0]
                    y = self._finish(np.ascontiguousarray(x[..., ey0:ey1, ex0:ex1]), a, ctl)
                    put(slice(y0, y1), slice(x0, x1), y[..., y0 - ey0 : y1 - ey0, x0 - ex0 : x1 - ex0])

                jobs.append(job)
        _run_all(jobs)

    def _bands_of(self, h: int, band: int, d: int, g: int, rows: Callable, put: Callable, ctl: _Controls) -> None:
        """Finish row bands of ``band`` rows (each with ``d`` rows of context, starting on the ``g``
        grid); ``rows(r0, r1)`` gives the image and maps of rows r0:r1."""
        jobs = []
        for y0 in range(0, h, band):

            def job(y0: int = y0) -> None:
                between_tiles()
                y1 = min(y0 + band, h)
                ey0, ey1 = max(y0 - d, 0) // g * g, min(y1 + d, h)
                xr, ar = rows(ey0, ey1)
                y = self._finish(np.ascontiguousarray(xr), ar, ctl)
                put(slice(y0, y1), slice(None), y[..., y0 - ey0 : y1 - ey0, :])

            jobs.append(job)
        _run_all(jobs)

    # ---- the interface every pipeline shares ----------------------------------------------------------
    @staticmethod
    def _check(x: np.ndarray) -> None:
        if not isinstance(x, np.ndarray) or x.ndim != 4 or x.shape[1] != 3:
            shape = x.shape if isinstance(x, np.ndarray) else type(x).__name__
            raise ValueError(f"expected an array of shape (B, 3, H, W), got {shape}")
        if 0 in x.shape:
            raise ValueError(f"empty image array {x.shape}")

    def run_float(
        self, x: np.ndarray, exposure: np.ndarray | None = None, scalars: np.ndarray | None = None
    ) -> np.ndarray:
        """Enhance float (B, 3, H, W) in [0, 1]; float32 (B, 3, H, W) out, clamped to [0, 1]."""
        self._check(x)
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"expected floating-point samples in [0, 1], got {x.dtype}")
        xf = np.clip(np.nan_to_num(x.astype(np.float32), nan=0.0), 0.0, 1.0)
        out = np.empty_like(xf)

        def put(rows: slice, cols: slice, y: np.ndarray) -> None:
            np.clip(y, 0.0, 1.0, out=out[..., rows, cols])

        self._run(xf, put, self._controls(xf, exposure, scalars=scalars))
        return out

    def run_integer(
        self, x: np.ndarray, scale: int, exposure: np.ndarray | None = None, scalars: np.ndarray | None = None
    ) -> np.ndarray:
        """Enhance integer samples (B, 3, H, W) on 0..``scale`` (uint8: 255, uint16: 65535), any strides;
        the result is (B, 3, H, W) of the input's dtype, a view of a contiguous (B, H, W, 3) array."""
        self._check(x)
        b, _, h, w = x.shape
        fused = kernels.enabled()
        # Contiguous planes (not astype's copy of the caller's interleaved layout): every band and
        # the fast model's downscale then read contiguous rows (the downscale 10x faster at 12 MP).
        if fused:
            xf = kernels.to_float(x, scale)
        else:
            xf = np.empty((b, 3, h, w), np.float32)
            np.multiply(x, np.float32(1.0 / scale), out=xf)
        out = np.empty((b, h, w, 3), dtype=x.dtype)
        s = np.float32(scale)

        def put(rows: slice, cols: slice, y: np.ndarray) -> None:
            if fused:
                kernels.to_integer(y, scale, out, rows, cols)
                return
            y = np.clip(y * s, 0.0, s)
            np.rint(y, out=y)
            out[:, rows, cols, :] = y.transpose(0, 2, 3, 1)

        self._run(xf, put, self._controls(xf, exposure, scalars=scalars))
        return out.transpose(0, 3, 1, 2)

    def scalars_of(self, x: np.ndarray) -> np.ndarray:
        """The exposure scalar ``u`` (B,) this session gives each image (float32 (B, 3, H, W))."""
        u = self._controls(np.asarray(x, dtype=np.float32), with_noise=False).u
        return u if u is not None else np.ones(x.shape[0], np.float32)

    def follow_scalars(self, x: np.ndarray, follow: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Exposure scalars (B,) that give each image the mean luma ``follow(levels)``, ``levels`` being
        the mean luma of the tone this session gives each image alone (video smoothing)."""
        xf = np.asarray(x, dtype=np.float32)
        small, mm = self._prepared(xf)
        n = self.config.n_iter
        u = self._controls(small, with_noise=False, prepared=(small, mm)).u
        if u is None:
            raise ValueError("scalars: the paper's method has no exposure control")
        native = luma(apply_gain(small, value_gain(value(small), mm, n, u))).mean(axis=(1, 2, 3))
        target = np.asarray(follow(native), dtype=np.float32)
        return solve_exposure(small, mm, n, target, "mean")
