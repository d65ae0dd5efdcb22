"""Hue-safe controls on numpy images: the curves as a value gain, exposure, strength and cast correction.

The numpy twin of :mod:`zerodce.tone` (whose module docstring explains every control), and the
home of its constants. The full-resolution functions are pointwise; they run on bands of rows
(:mod:`zerodce.core._bands`) so that their chain of operations stays in cache.
"""

from __future__ import annotations

import numpy as np

from . import kernels
from ._bands import into, row_bands
from .color import LUMINANCE_709, Metering, linear_to_srgb, luma, metered, mix, srgb_to_linear, thumbnail
from .curves import apply_curves, check_map_channels

__all__ = [
    "MAX_CAST_RATIO",
    "U_RANGE",
    "V_FLOOR",
    "AUTO_FULL",
    "AUTO_NONE",
    "MIDDLE_GREY",
    "value",
    "mean_maps",
    "curve_value",
    "value_gain",
    "apply_gain",
    "curve_saturation",
    "solve_exposure",
    "cast_gains",
    "apply_cast",
    "tone",
    "key",
    "auto_strength",
]

MAX_CAST_RATIO = 1.25  # strongest / weakest channel gain of the cast correction (linear light)
U_RANGE = (-8.0, 3.0)  # exposure scalar: 8 stops darker .. every curve parameter +2
V_FLOOR = 1.0 / 1024  # gains are computed on v >= this (a black pixel stays black: 0 * gain)
AUTO_FULL, AUTO_NONE = -2.0, -0.5  # the input's key, in stops from middle grey, of full / no effect
MIDDLE_GREY = 0.18  # linear

_F = np.float32
_CB, _CR = 0.5 / (1 - 0.114), 0.5 / (1 - 0.299)  # Rec. 601 CbCr = these times (B - Y), (R - Y)
_CB2, _CR2 = _F(_CB * _CB), _F(_CR * _CR)


def value(x: np.ndarray) -> np.ndarray:
    """HSV value ``max(R, G, B)`` of (B, 3, H, W) -> (B, 1, H, W)."""
    return x.max(axis=1, keepdims=True)


def mean_maps(maps: np.ndarray, n_iter: int) -> np.ndarray:
    """The mean of each iteration's three channel maps: (B, 3n, H, W) -> (B, n, H, W); (B, 3, H, W)
    (one map re-used, Zero-DCE++) -> (B, 1, H, W)."""
    c = check_map_channels(maps.shape[1], n_iter)
    b, _, h, w = maps.shape
    m = maps.reshape(b, c // 3, 3, h, w)
    out = np.add(m[:, :, 0], m[:, :, 1])
    out += m[:, :, 2]
    out /= _F(3.0)
    return out


def curve_value(v: np.ndarray, mmaps: np.ndarray, n_iter: int, offset: np.ndarray | None = None) -> np.ndarray:
    """The curves on the value channel: ``v`` (B, 1, H, W) through ``n_iter`` LE steps with the
    channel-mean maps ``mmaps`` (B, n or 1, H, W), plus an optional offset (B,) on every parameter.
    One pass with numba (:mod:`zerodce.core.kernels`, the same arithmetic) when it is installed."""
    if kernels.takes(v, mmaps):
        return kernels.curve_value(v, mmaps, n_iter, offset)
    out = np.array(v, dtype=np.float32)
    t1, t2 = np.empty_like(out), np.empty_like(out)
    off = None if offset is None else np.asarray(offset, dtype=np.float32).reshape(-1, 1, 1, 1)
    for n in range(n_iter):
        a = mmaps[:, n : n + 1] if mmaps.shape[1] > 1 else mmaps
        if off is not None:
            a = np.clip(a + off, _F(-1.0), _F(1.0))
        np.multiply(a, out, out=t1)  # le_curve's order: v + (a v) (1 - v)
        np.subtract(_F(1.0), out, out=t2)
        t1 *= t2
        out += t1
    return out


def _gain(vf: np.ndarray, model: np.ndarray | None, mmaps: np.ndarray, n_iter: int, u: float) -> np.ndarray:
    """The value gain of one image's values ``vf`` (1, 1, h, w) (floored) at exposure ``u``;
    ``model`` is its gain at ``u = 1`` (computed here when None and needed)."""
    if u > 1:  # the curves with u - 1 added to every parameter
        brighter = curve_value(vf, mmaps, n_iter, np.array([min(u - 1.0, 2.0)], np.float32))
        return np.divide(brighter, vf, out=brighter)
    if u < 0:  # -u stops darker in linear light
        lin = srgb_to_linear(vf)
        lin *= np.exp2(_F(u))
        darker = linear_to_srgb(lin)
        return np.divide(darker, vf, out=darker)
    if u == 0:
        return np.ones_like(vf)
    if model is None:
        model = curve_value(vf, mmaps, n_iter)
        model /= vf
    gain = np.maximum(model, _F(1e-6))
    if u < 1:  # u = 1 is the model's gain itself (x^1 skipped: exact, and a pass fewer)
        np.power(gain, _F(u), out=gain)
    return gain


def value_gain(v: np.ndarray, mmaps: np.ndarray, n_iter: int, u: np.ndarray) -> np.ndarray:
    """The gain (B, 1, H, W) that brings each pixel's value ``v`` to exposure ``u`` (B,) (:mod:`zerodce.tone`).

    Example:
        >>> v = np.full((1, 1, 1, 1), 0.25, np.float32)
        >>> m = np.full((1, 1, 1, 1), 0.5, np.float32)  # one step: 0.25 + 0.5 * 0.25 * 0.75 = 0.34375
        >>> [round(float((v * value_gain(v, m, 1, np.array([u])))[0, 0, 0, 0]), 5) for u in (0.0, 1.0)]
        [0.25, 0.34375]
        >>> dark = v * value_gain(v, m, 1, np.array([-1.0]))  # one stop darker halves the linear light
        >>> round(float(srgb_to_linear(dark)[0, 0, 0, 0] / srgb_to_linear(v)[0, 0, 0, 0]), 4)
        0.5
    """
    us = np.broadcast_to(np.asarray(u, dtype=np.float32).reshape(-1), v.shape[:1])
    out = np.empty(v.shape, dtype=np.float32)
    h, w = v.shape[-2:]
    for rows in row_bands(h, w):
        vf = np.maximum(v[..., rows, :], _F(V_FLOOR))
        mm = mmaps[..., rows, :]
        for b in range(v.shape[0]):
            out[b : b + 1, :, rows] = _gain(vf[b : b + 1], None, mm[b : b + 1], n_iter, float(us[b]))
    return out


def apply_gain(x: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """``x * gain``, with the gain capped so that no channel passes 1 (hue and saturation kept)."""
    out = np.empty(x.shape, dtype=np.float32)
    h, w = x.shape[-2:]
    for rows in row_bands(h, w):
        xb = x[..., rows, :]
        cap = np.maximum(value(xb), _F(V_FLOOR))
        np.divide(_F(1.0), cap, out=cap)
        np.minimum(gain[..., rows, :] if gain.shape[-2] == h else gain, cap, out=cap)
        np.multiply(xb, cap, out=out[..., rows, :])
    return out


def curve_saturation(x: np.ndarray, maps: np.ndarray, n_iter: int, y: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``y`` = the hue-safe output of ``x`` at exposure ``u`` (B,), desaturated as far as the
    per-channel curves ``maps`` would desaturate it (:mod:`zerodce.tone`); hue and luma of ``y`` kept.

    Example:
        >>> x = np.array([0.2, 0.1, 0.05], np.float32).reshape(1, 3, 1, 1)  # a dark orange
        >>> maps = np.full((1, 24, 1, 1), 0.6, np.float32)  # per-channel curves lift blue most
        >>> one = np.array([1.0])
        >>> y = apply_gain(x, value_gain(value(x), mean_maps(maps, 8), 8, one))
        >>> out = curve_saturation(x, maps, 8, y, one)
        >>> spread = lambda t: t.max(1) - t.min(1)
        >>> bool(np.abs(luma(out) - luma(y)).max() < 1e-6), bool((spread(out) < spread(y)).all())
        (True, True)
    """
    check_map_channels(maps.shape[1], n_iter)
    ws = np.clip(np.broadcast_to(np.asarray(u, dtype=np.float32).reshape(-1), y.shape[:1]), _F(0.0), _F(1.0))
    out = np.empty(y.shape, dtype=np.float32)
    h, w = y.shape[-2:]
    for rows in row_bands(h, w):
        _saturation_rows(x[..., rows, :], maps[..., rows, :], n_iter, y[..., rows, :], ws, out[..., rows, :])
    return out


def _saturation_rows(
    x: np.ndarray, maps: np.ndarray, n_iter: int, y: np.ndarray, ws: np.ndarray, out: np.ndarray
) -> None:
    """:func:`curve_saturation` of a band of rows, into ``out``."""
    vf = np.maximum(value(x), _F(V_FLOOR))
    xf = np.maximum(x, _F(V_FLOOR))
    g1 = curve_value(vf, mean_maps(maps, n_iter), n_iter)
    g1 /= vf  # the model's value gain (u = 1)
    rel = apply_curves(xf, maps, n_iter)
    rel /= xf
    rel /= g1  # per-channel gain relative to the common one
    np.maximum(rel, _F(1e-6), out=rel)
    for b, wb in enumerate(ws):
        if wb == 0:
            rel[b] = 1.0
        elif wb != 1:  # x^1 skipped
            np.power(rel[b], wb, out=rel[b])
    yp = np.multiply(y, rel, out=rel)  # the per-channel curves' colour at y's exposure
    lum_y, lum_p = luma(y), luma(yp)
    dyb, dyr = y[:, 2:3] - lum_y, y[:, 0:1] - lum_y
    dpb, dpr = yp[:, 2:3] - lum_p, yp[:, 0:1] - lum_p
    dot = _CB2 * dyb * dpb
    dot += _CR2 * dyr * dpr
    norm = _CB2 * dyb * dyb
    norm += _CR2 * dyr * dyr
    np.maximum(norm, _F(1e-12), out=norm)
    k = np.divide(dot, norm, out=dot)
    np.clip(k, _F(0.0), _F(1.0), out=k)
    np.subtract(y, lum_y, out=out)
    out *= k
    out += lum_y


def solve_exposure(
    x: np.ndarray,
    mmaps: np.ndarray,
    n_iter: int,
    target: np.ndarray,
    metering: Metering = "mean",
    lo: float = U_RANGE[0],
    hi: float = U_RANGE[1],
    iters: int = 18,
) -> np.ndarray:
    """The exposure scalar ``u`` (B,) in ``[lo, hi]`` whose output meets ``target`` (B,) as ``metering``
    measures it; the nearest end when the target is out of reach. Run on a thumbnail.

    What does not depend on ``u`` (the floored values, the model's gain, the gain cap) is computed
    once; each bisection step is then one gain per image, a product and a meter.

    Example:
        >>> x = np.full((1, 3, 4, 4), 0.1, np.float32)
        >>> m = np.full((1, 8, 4, 4), 0.3, np.float32)
        >>> u = solve_exposure(x, m, 8, np.array([0.3]))
        >>> round(float(metered(apply_gain(x, value_gain(value(x), m, 8, u)))[0]), 3)
        0.3
    """
    b = x.shape[0]
    vf = np.maximum(value(x), _F(V_FLOOR))
    cap = np.divide(_F(1.0), vf)  # apply_gain's cap: no channel past 1
    model = curve_value(vf, mmaps, n_iter)
    model /= vf
    target = np.asarray(target).reshape(-1)
    lo_t, hi_t = np.full(b, lo, dtype=np.float32), np.full(b, hi, dtype=np.float32)
    gain = np.empty_like(vf)
    y = np.empty_like(x)
    for _ in range(iters):
        mid = _F(0.5) * (lo_t + hi_t)
        for i in range(b):
            gain[i : i + 1] = _gain(vf[i : i + 1], model[i : i + 1], mmaps[i : i + 1], n_iter, float(mid[i]))
        np.minimum(gain, cap, out=gain)
        np.multiply(x, gain, out=y)
        bright = metered(y, metering) > target
        hi_t = np.where(bright, mid, hi_t)
        lo_t = np.where(bright, lo_t, mid)
    return _F(0.5) * (lo_t + hi_t)


def _channel_means_linear(y: np.ndarray) -> np.ndarray:
    """Means (B, 3) of the sRGB-decoded channels of ``y`` (clipped to [0, 1]), summed per band in float64."""
    h, w = y.shape[-2:]
    sums = np.zeros(y.shape[:2], dtype=np.float64)
    for rows in row_bands(h, w):
        sums += srgb_to_linear(np.clip(y[..., rows, :], _F(0.0), _F(1.0))).sum(axis=(2, 3), dtype=np.float64)
    return (sums / (h * w)).astype(np.float32)


def cast_gains(y: np.ndarray, balance: float | np.ndarray, max_ratio: float = MAX_CAST_RATIO) -> np.ndarray:
    """Linear-light channel gains (B, 3) that take ``balance`` (0..1, or one per image (B,)) of the
    grey-world cast of ``y`` away, bounded to a ``max_ratio`` spread and normalised to keep the mean
    luminance.

    Example:
        >>> y = np.stack([np.full((4, 4), v, np.float32) for v in (0.6, 0.5, 0.4)])[None]  # warm grey
        >>> g = cast_gains(y, 1.0)
        >>> round(float(g.max() / g.min()), 4), bool(g[0, 2] > 1 > g[0, 0])
        (1.25, True)
    """
    lin = _channel_means_linear(y)  # (B, 3)
    w = np.asarray(LUMINANCE_709, dtype=np.float32)
    grey = (lin * w).sum(axis=1, keepdims=True, dtype=np.float32)
    k = np.asarray(balance, dtype=np.float32).reshape(-1, 1) if isinstance(balance, np.ndarray) else _F(balance)
    log_g = k * (np.log(np.maximum(grey, _F(1e-6))) - np.log(np.maximum(lin, _F(1e-6))))  # (B, 3)
    # Bound the spread symmetrically about its middle, then keep the mean luminance.
    mid = _F(0.5) * (log_g.max(axis=1, keepdims=True) + log_g.min(axis=1, keepdims=True))
    half = _F(0.5) * np.log(_F(max_ratio))
    g = np.exp(mid + np.clip(log_g - mid, -half, half))
    norm = (lin * g * w).sum(axis=1, keepdims=True, dtype=np.float32) / np.maximum(grey, _F(1e-12))
    return (g / np.maximum(norm, _F(1e-6))).astype(np.float32)


def apply_cast(y: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Channel gains (B, 3) applied in linear light; a pixel pushed past 1 is scaled back as a whole."""
    g = np.asarray(gains, dtype=np.float32).reshape(-1, 3, 1, 1)
    out = np.empty(y.shape, dtype=np.float32)
    h, w = y.shape[-2:]
    for rows in row_bands(h, w):
        lin = srgb_to_linear(np.clip(y[..., rows, :], _F(0.0), _F(1.0)))
        lin *= g
        lin /= np.maximum(value(lin), _F(1.0))  # hue-safe: the brightest channel at most 1
        out[..., rows, :] = linear_to_srgb(lin)
    return out


def tone(
    x: np.ndarray,
    maps: np.ndarray,
    n_iter: int,
    u: np.ndarray,
    cast: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The hue-safe tone of ``x`` (B, 3, H, W) at exposure ``u`` (B,): the value gain, its cap,
    the curves' saturation, and the cast gains (B, 3) when given (:mod:`zerodce.tone`); into
    ``out`` (float32, the shape of ``x``) if given, else a new array.

    ``maps`` are the curve maps (B, 3n, H, W) or (B, 3, H, W). One fused pass with numba
    (:mod:`zerodce.core.kernels`) when it is installed, else the numpy functions above in turn.

    Example:
        >>> x = np.full((1, 3, 2, 2), 0.2, np.float32)
        >>> maps = np.full((1, 24, 2, 2), 0.5, np.float32)
        >>> y = tone(x, maps, 8, np.array([1.0], np.float32))
        >>> bool(np.allclose(y, apply_gain(x, value_gain(value(x), mean_maps(maps, 8), 8, np.array([1.0])))))
        True
    """
    check_map_channels(maps.shape[1], n_iter)
    if kernels.enabled() and x.dtype == np.float32 and maps.dtype == np.float32:
        return kernels.tone(x, maps, n_iter, u, cast, out)
    return into(out, _tone(x, maps, n_iter, u, cast))


def _tone(x: np.ndarray, maps: np.ndarray, n_iter: int, u: np.ndarray, cast: np.ndarray | None) -> np.ndarray:
    """:func:`tone` in numpy (the reference the kernel is tested against)."""
    y = curve_saturation(x, maps, n_iter, apply_gain(x, value_gain(value(x), mean_maps(maps, n_iter), n_iter, u)), u)
    return y if cast is None else apply_cast(y, cast)


def key(x: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    """The key (B,) of images (B, 3, H, W): log-average linear luminance (Reinhard et al. 2002)."""
    lin = srgb_to_linear(np.clip(x, _F(0.0), _F(1.0)))
    lum = mix(lin, LUMINANCE_709, out=lin[:, :1])
    lum += _F(eps)
    return np.exp(np.log(lum, out=lum).mean(axis=(1, 2, 3), dtype=np.float32))


def auto_strength(x: np.ndarray, full: float = AUTO_FULL, none: float = AUTO_NONE) -> np.ndarray:
    """The do-no-harm factor (B,): 1 for inputs whose key is ``full`` stops from middle grey or
    darker, 0 from ``none`` stops, smooth (cubic) between (:mod:`zerodce.tone`).

    Example:
        >>> grey = lambda stops: np.full((1, 3, 8, 8), linear_to_srgb(np.float32(0.18 * 2**stops)))
        >>> [round(float(auto_strength(grey(s))[0]), 2) for s in (-4, -2, -1.25, -0.5, 1)]  # eps: 0.48, not 0.5
        [1.0, 1.0, 0.48, 0.0, 0.0]
    """
    stops = np.log2(key(thumbnail(x)) / _F(MIDDLE_GREY))
    t = np.clip((_F(none) - stops) / _F(none - full), _F(0.0), _F(1.0))
    return t * t * (_F(3.0) - _F(2.0) * t)
