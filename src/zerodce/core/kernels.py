"""Fused numba kernels for the work after the networks: the gain-aware denoiser and the tone chain.

Optional, like :mod:`zerodce.core.coded`'s curve loop: numba is imported and the kernels compiled on
first use (cached on disk where a cache directory is writable), and the numpy functions they mirror
(:func:`~zerodce.core.filters.gain_aware_denoise`, :func:`~zerodce.core.tone.tone`) remain the
reference and the fallback. Each kernel does the numpy code's float32 arithmetic in its order, a
pixel at a time, over rows in parallel; box sums are running sums in float64 (exact to float32
rounding, O(1) per pixel whatever the radius), so results agree with numpy to about 1e-7.

``ZERODCE_NO_NUMBA=1`` in the environment turns the kernels off (the numpy code runs).
"""

from __future__ import annotations

import functools
import math
import os
from types import SimpleNamespace

import numpy as np

from .coded import _LAUNCH, NUMBA_INSTALLED
from .color import LUMA, RGB_TO_YCC, YCC_TO_RGB

__all__ = ["enabled", "denoise", "tone"]

_F = np.float32
prange = range  # numba.prange once compiled (_kernels)

# Constants as float32 globals: numba freezes them at compile time, and keeps float32 arithmetic
# float32 (a Python float literal would promote it to float64).
_ZERO, _ONE, _THREE = _F(0.0), _F(1.0), _F(3.0)
_V_FLOOR = _F(1.0 / 1024)  # tone.V_FLOOR
_GAIN_FLOOR, _NORM_FLOOR = _F(1e-6), _F(1e-12)
_CB2, _CR2 = _F((0.5 / (1 - 0.114)) ** 2), _F((0.5 / (1 - 0.299)) ** 2)  # tone._CB2, tone._CR2
_LR, _LG, _LB = (_F(c) for c in LUMA)
_S2L_KNEE, _S2L_OFF, _S2L_DIV, _S2L_POW, _S2L_LIN = _F(0.04045), _F(0.055), _F(1.055), _F(2.4), _F(12.92)
_L2S_KNEE, _L2S_POW = _F(0.0031308), _F(1 / 2.4)
_LX_FLOOR, _EPS0, _W_FLOOR = _F(1.0 / 255.0), _F(1e-8), _F(1e-20)
_YCC = RGB_TO_YCC.copy()
_RGB = YCC_TO_RGB.copy()
_COLS = 256  # columns per block of the vertical (running-sum) passes


def enabled() -> bool:
    """Whether the kernels run: numba installed and ``ZERODCE_NO_NUMBA`` not set to 1."""
    return NUMBA_INSTALLED and os.environ.get("ZERODCE_NO_NUMBA", "") != "1"


# ---- pointwise helpers (inlined into the kernels) ----------------------------------------------------
_LN2, _INV_LN2, _SQRT2 = np.log(2.0), 1.0 / np.log(2.0), np.sqrt(2.0)
_MANTISSA, _ONE_BITS = np.int64((1 << 52) - 1), np.int64(1023 << 52)
_L3, _L5, _L7, _L9, _L11, _L13 = (1.0 / k for k in (3, 5, 7, 9, 11, 13))  # atanh's series
_E2, _E3, _E4, _E5, _E6, _E7, _E8, _E9, _E10, _E11, _E12 = (1.0 / math.factorial(k) for k in range(2, 13))  # exp's


def _as_int(v):  # noqa: ANN001, ANN202 - the bits of a float64 (an intrinsic once compiled: _kernels)
    return np.array([v]).view(np.int64)[0]


def _as_float(v):  # noqa: ANN001, ANN202 - the float64 of 64 bits (an intrinsic once compiled)
    return np.array([v]).view(np.float64)[0]


def _pow(x, y):  # noqa: ANN001, ANN202
    # float32 x ** y for x > 0, as exp2(y log2 x) in float64 from arithmetic alone, so that loops
    # of it vectorise (numba has no vector pow without Intel's SVML; numpy's float32 power has one).
    # Relative error about 1e-13 before the final rounding: the float32 result is powf's but for
    # a rare last-bit tie.
    bits = _as_int(np.float64(x))
    e = np.float64((bits >> 52) - 1023)
    m = _as_float((bits & _MANTISSA) | _ONE_BITS)  # x = m 2^e, m in [1, 2)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    e = e + 1.0 if big else e
    s = (m - 1.0) / (m + 1.0)  # ln m = 2 atanh(s), |s| < 0.172: the series to s^13 (error < 1e-12)
    s2 = s * s
    ln = _L13 * s2 + _L11
    ln = ((((ln * s2 + _L9) * s2 + _L7) * s2 + _L5) * s2 + _L3) * s2 + 1.0
    t = np.float64(y) * (e + 2.0 * s * ln * _INV_LN2)
    t = min(max(t, -1000.0), 1000.0)
    n = np.floor(t + 0.5)
    g = (t - n) * _LN2  # |g| <= ln 2 / 2: exp by Taylor to g^12 (error < 1e-15)
    p = _E12 * g + _E11
    p = ((((p * g + _E10) * g + _E9) * g + _E8) * g + _E7) * g + _E6
    p = (((((p * g + _E5) * g + _E4) * g + _E3) * g + _E2) * g + 1.0) * g + 1.0
    return np.float32(_as_float(_as_int(p) + (np.int64(n) << 52)))


def _srgb_to_linear(v):  # noqa: ANN001, ANN202 - color.srgb_to_linear of one value
    o = max(v, _S2L_KNEE) + _S2L_OFF
    o = _pow(o / _S2L_DIV, _S2L_POW)
    return v / _S2L_LIN if v <= _S2L_KNEE else o


def _linear_to_srgb(v):  # noqa: ANN001, ANN202 - color.linear_to_srgb of one value
    o = _pow(max(v, _L2S_KNEE), _L2S_POW) * _S2L_DIV
    o = o - _S2L_OFF
    return v * _S2L_LIN if v <= _L2S_KNEE else o


def _hsum(pad, r, out):  # noqa: ANN001, ANN202
    # Window sums of radius r along a row whose edges are replicated in pad (2 big more entries
    # than out, big >= r): a running sum in float64, one addition of an exact difference per entry.
    w = out.shape[0]
    big = (pad.shape[0] - w) // 2
    s = 0.0
    for t in range(big - r, big + r + 1):
        s += pad[t]
    out[0] = s
    lo, hi = big - r - 1, big + r
    for j in range(1, w):
        s += np.float64(pad[hi + j]) - np.float64(pad[lo + j])
        out[j] = s


def _replicate(pad, big, w):  # noqa: ANN001, ANN202 - pad[:, big:big + w] filled: replicate its edges
    for p in range(pad.shape[0]):
        for t in range(big):
            pad[p, t] = pad[p, big]
            pad[p, big + w + t] = pad[p, big + w - 1]


def _vsum_step(plane, i, r, c0, c1, acc):  # noqa: ANN001, ANN202 - acc: window sums of rows about i
    h = plane.shape[0]
    if i == 0:
        for j in range(c1 - c0):
            acc[j] = 0.0
        for t in range(-r, r + 1):
            row = plane[min(max(t, 0), h - 1)]
            for j in range(c1 - c0):
                acc[j] += row[c0 + j]
    else:
        add, sub = plane[min(i + r, h - 1)], plane[max(i - r - 1, 0)]
        for j in range(c1 - c0):
            acc[j] += np.float64(add[c0 + j]) - np.float64(sub[c0 + j])


# ---- the gain-aware denoiser --------------------------------------------------------------------------
def _dn_rows(y, x, r, ycc, hs):  # noqa: ANN001, ANN202
    # YCbCr of y and luma of x per row, then horizontal window sums of Y, Y^2, luma(x) (radius r)
    # and Cb, Cb^2, Cr, Cr^2 (2r) into hs (B, 7, H, W).
    b_n, _, h_n, w_n = y.shape
    big = 2 * r
    for bh in prange(b_n * h_n):
        b, i = bh // h_n, bh % h_n
        pad = np.empty((7, w_n + 2 * big), np.float32)  # Y, Y^2, luma(x), Cb, Cb^2, Cr, Cr^2
        y0, y1, y2, x0, x1, x2 = y[b, 0, i], y[b, 1, i], y[b, 2, i], x[b, 0, i], x[b, 1, i], x[b, 2, i]
        lum, cb, cr = ycc[b, 0, i], ycc[b, 1, i], ycc[b, 2, i]
        p0, p1, p2, p3, p4, p5, p6 = pad[0], pad[1], pad[2], pad[3], pad[4], pad[5], pad[6]
        for j in range(w_n):
            v0 = _YCC[0, 0] * y0[j] + _YCC[0, 1] * y1[j] + _YCC[0, 2] * y2[j]
            v1 = _YCC[1, 0] * y0[j] + _YCC[1, 1] * y1[j] + _YCC[1, 2] * y2[j]
            v2 = _YCC[2, 0] * y0[j] + _YCC[2, 1] * y1[j] + _YCC[2, 2] * y2[j]
            lum[j], cb[j], cr[j] = v0, v1, v2
            p0[big + j], p1[big + j], p3[big + j], p4[big + j] = v0, v0 * v0, v1, v1 * v1
            p5[big + j], p6[big + j] = v2, v2 * v2
            p2[big + j] = _LR * x0[j] + _LG * x1[j] + _LB * x2[j]
        _replicate(pad, big, w_n)
        for p in range(7):
            _hsum(pad[p], r if p < 3 else big, hs[b, p, i])


def _dn_coefs(hs, r, strength, sig, bound, knee2, ab):  # noqa: ANN001, ANN202
    # Window means, local gain, eps, and the self-guided filters' a and b for Y, Cb, Cr, the chroma
    # bound and the chroma weight: ab (B, 8, H, W) = aY, bY, aCb, bCb, aCr, bCr, bound, weight.
    b_n, _, h_n, w_n = hs.shape
    blocks = (w_n + _COLS - 1) // _COLS
    k1, k2 = 2 * r + 1, 4 * r + 1
    s1, s2 = np.float32(1.0 / (k1 * k1)), np.float32(1.0 / (k2 * k2))
    for bb in prange(b_n * blocks):
        b, c0 = bb // blocks, (bb % blocks) * _COLS
        c1 = min(c0 + _COLS, w_n)
        acc = np.empty((7, _COLS), np.float64)
        a0, a1, a2, a3, a4, a5, a6 = acc[0], acc[1], acc[2], acc[3], acc[4], acc[5], acc[6]
        sb, bd, k2b = sig[b], bound[b], knee2[b]
        for i in range(h_n):
            for p in range(7):
                _vsum_step(hs[b, p], i, r if p < 3 else 2 * r, c0, c1, acc[p])
            o0, o1, o2, o3 = ab[b, 0, i, c0:c1], ab[b, 1, i, c0:c1], ab[b, 2, i, c0:c1], ab[b, 3, i, c0:c1]
            o4, o5, o6, o7 = ab[b, 4, i, c0:c1], ab[b, 5, i, c0:c1], ab[b, 6, i, c0:c1], ab[b, 7, i, c0:c1]
            for j in range(c1 - c0):
                mean_y, mean_yy, mean_x = np.float32(a0[j]) * s1, np.float32(a1[j]) * s1, np.float32(a2[j]) * s1
                gain = mean_y / max(mean_x, _LX_FLOOR)
                eps = gain * strength
                eps = eps * sb
                eps = eps * eps + _EPS0
                var = max(mean_yy - mean_y * mean_y, _ZERO)  # filters._self_guided's order
                a = var / (var + eps)
                o0[j], o1[j] = a, mean_y - a * mean_y
                m, mm = np.float32(a3[j]) * s2, np.float32(a4[j]) * s2
                var = max(mm - m * m, _ZERO)
                a = var / (var + eps)
                o2[j], o3[j] = a, m - a * m
                m, mm = np.float32(a5[j]) * s2, np.float32(a6[j]) * s2
                var = max(mm - m * m, _ZERO)
                a = var / (var + eps)
                o4[j], o5[j] = a, m - a * m
                o6[j] = gain * bd
                o7[j] = _ONE - k2b / max(mean_x * mean_x + k2b, _W_FLOOR)


def _dn_rows2(ab, r, hs):  # noqa: ANN001, ANN202 - horizontal window sums of the six a, b planes
    b_n, _, h_n, w_n = ab.shape
    big = 2 * r
    for bh in prange(b_n * h_n):
        b, i = bh // h_n, bh % h_n
        pad = np.empty((6, w_n + 2 * big), np.float32)
        for p in range(6):
            pad[p, big : big + w_n] = ab[b, p, i]
        _replicate(pad, big, w_n)
        for p in range(6):
            _hsum(pad[p], r if p < 2 else big, hs[b, p, i])


def _dn_out(hs, ab, ycc, r, has_bound, out):  # noqa: ANN001, ANN202 - the filtered YCbCr, bounded, weighted, to RGB
    b_n, _, h_n, w_n = ycc.shape
    blocks = (w_n + _COLS - 1) // _COLS
    k1, k2 = 2 * r + 1, 4 * r + 1
    s1, s2 = np.float32(1.0 / (k1 * k1)), np.float32(1.0 / (k2 * k2))
    for bb in prange(b_n * blocks):
        b, c0 = bb // blocks, (bb % blocks) * _COLS
        c1 = min(c0 + _COLS, w_n)
        acc = np.empty((6, _COLS), np.float64)
        a0, a1, a2, a3, a4, a5 = acc[0], acc[1], acc[2], acc[3], acc[4], acc[5]
        for i in range(h_n):
            for p in range(6):
                _vsum_step(hs[b, p], i, r if p < 2 else 2 * r, c0, c1, acc[p])
            lum, cb, cr = ycc[b, 0, i, c0:c1], ycc[b, 1, i, c0:c1], ycc[b, 2, i, c0:c1]
            lim, wt = ab[b, 6, i, c0:c1], ab[b, 7, i, c0:c1]
            q0, q1, q2 = out[b, 0, i, c0:c1], out[b, 1, i, c0:c1], out[b, 2, i, c0:c1]
            for j in range(c1 - c0):
                fy = (np.float32(a0[j]) * s1) * lum[j] + np.float32(a1[j]) * s1
                fb = (np.float32(a2[j]) * s2) * cb[j] + np.float32(a3[j]) * s2
                fr = (np.float32(a4[j]) * s2) * cr[j] + np.float32(a5[j]) * s2
                if has_bound:  # filters.bound_change
                    fb = min(max(fb - cb[j], -lim[j]), lim[j]) + cb[j]
                    fr = min(max(fr - cr[j], -lim[j]), lim[j]) + cr[j]
                fb, fr = fb * wt[j], fr * wt[j]
                q0[j] = min(max(_RGB[0, 0] * fy + _RGB[0, 1] * fb + _RGB[0, 2] * fr, _ZERO), _ONE)
                q1[j] = min(max(_RGB[1, 0] * fy + _RGB[1, 1] * fb + _RGB[1, 2] * fr, _ZERO), _ONE)
                q2[j] = min(max(_RGB[2, 0] * fy + _RGB[2, 1] * fb + _RGB[2, 2] * fr, _ZERO), _ONE)


# ---- the tone chain -------------------------------------------------------------------------------
def _tone_rows(x, maps, n_iter, mode, u, off, e2, cast, has_cast, out):  # noqa: ANN001, ANN202
    # One image row at a time, each step a loop over the row (so that it vectorises); mode per
    # image: 0 u = 0, 1 0 < u < 1, 2 u = 1, 3 u > 1, 4 u < 0 (tone._gain's branches).
    b_n, _, h_n, w_n = x.shape
    per_iter = maps.shape[1] > 3
    for bh in prange(b_n * h_n):
        b, i = bh // h_n, bh % h_n
        md, ub, ob, eb = mode[b], u[b], off[b], e2[b]
        ws = min(max(ub, _ZERO), _ONE)
        vf = np.empty(w_n, np.float32)
        g1 = np.empty(w_n, np.float32)  # the value curve, then the model's gain (u = 1)
        gain = np.empty(w_n, np.float32)  # the value curve with the offset (u > 1), then the gain
        p = np.empty(w_n, np.float32)
        ys = np.empty((3, w_n), np.float32)
        ps = np.empty((3, w_n), np.float32)
        xr = np.empty((3, w_n), np.float32)  # contiguous (x's row is strided across channels)
        for c in range(3):
            xr[c] = x[b, c, i]
        for j in range(w_n):
            vf[j] = max(max(max(xr[0, j], xr[1, j]), xr[2, j]), _V_FLOOR)
            g1[j] = vf[j]
            gain[j] = vf[j]
        for n in range(n_iter):
            k = 3 * n if per_iter else 0
            a0, a1, a2 = maps[b, k, i], maps[b, k + 1, i], maps[b, k + 2, i]
            for j in range(w_n):
                a = ((a0[j] + a1[j]) + a2[j]) / _THREE
                g1[j] = g1[j] + (a * g1[j]) * (_ONE - g1[j])
            if md == 3:
                for j in range(w_n):
                    a = ((a0[j] + a1[j]) + a2[j]) / _THREE
                    a = min(max(a + ob, -_ONE), _ONE)
                    gain[j] = gain[j] + (a * gain[j]) * (_ONE - gain[j])
        for j in range(w_n):
            g1[j] = g1[j] / vf[j]
        if md == 3:
            for j in range(w_n):
                gain[j] = gain[j] / vf[j]
        elif md == 4:
            for j in range(w_n):
                gain[j] = _linear_to_srgb(_srgb_to_linear(vf[j]) * eb) / vf[j]
        elif md == 0:
            gain[:] = _ONE
        elif md == 2:
            for j in range(w_n):
                gain[j] = max(g1[j], _GAIN_FLOOR)
        else:
            for j in range(w_n):
                gain[j] = _pow(max(g1[j], _GAIN_FLOOR), ub)
        for j in range(w_n):
            cap = min(gain[j], _ONE / vf[j])
            for c in range(3):
                ys[c, j] = xr[c, j] * cap
        # curve_saturation: the per-channel curves' colour at this exposure, projected on chroma
        for c in range(3):
            if ws == _ZERO:
                ps[c] = ys[c]
                continue
            for j in range(w_n):
                p[j] = max(xr[c, j], _V_FLOOR)
            for n in range(n_iter):
                a = maps[b, 3 * n + c if per_iter else c, i]
                for j in range(w_n):
                    p[j] = p[j] + (a[j] * p[j]) * (_ONE - p[j])
            if ws == _ONE:
                for j in range(w_n):
                    ps[c, j] = ys[c, j] * max((p[j] / max(xr[c, j], _V_FLOOR)) / g1[j], _GAIN_FLOOR)
            else:
                for j in range(w_n):
                    rel = max((p[j] / max(xr[c, j], _V_FLOOR)) / g1[j], _GAIN_FLOOR)
                    ps[c, j] = ys[c, j] * _pow(rel, ws)
        for j in range(w_n):
            y0, y1, y2 = ys[0, j], ys[1, j], ys[2, j]
            lum_y = (_LR * y0 + _LG * y1) + _LB * y2
            lum_p = (_LR * ps[0, j] + _LG * ps[1, j]) + _LB * ps[2, j]
            dyb, dyr = y2 - lum_y, y0 - lum_y
            dpb, dpr = ps[2, j] - lum_p, ps[0, j] - lum_p
            dot = (_CB2 * dyb) * dpb + (_CR2 * dyr) * dpr
            norm = max((_CB2 * dyb) * dyb + (_CR2 * dyr) * dyr, _NORM_FLOOR)
            kk = min(max(dot / norm, _ZERO), _ONE)
            ys[0, j] = (y0 - lum_y) * kk + lum_y
            ys[1, j] = (y1 - lum_y) * kk + lum_y
            ys[2, j] = (y2 - lum_y) * kk + lum_y
        if has_cast:  # apply_cast: channel gains in linear light, the brightest channel at most 1
            for j in range(w_n):
                l0 = _srgb_to_linear(min(max(ys[0, j], _ZERO), _ONE)) * cast[b, 0]
                l1 = _srgb_to_linear(min(max(ys[1, j], _ZERO), _ONE)) * cast[b, 1]
                l2 = _srgb_to_linear(min(max(ys[2, j], _ZERO), _ONE)) * cast[b, 2]
                top = max(max(max(l0, l1), l2), _ONE)
                ys[0, j] = _linear_to_srgb(l0 / top)
                ys[1, j] = _linear_to_srgb(l1 / top)
                ys[2, j] = _linear_to_srgb(l2 / top)
        for c in range(3):
            for j in range(w_n):
                out[b, c, i, j] = ys[c, j]


@functools.cache
def _kernels() -> SimpleNamespace:
    global prange
    import numba as nb

    prange = nb.prange
    from llvmlite import ir
    from numba.core import types
    from numba.extending import intrinsic

    @intrinsic
    def as_int(typingctx, v):  # noqa: ANN001, ANN202
        return types.int64(types.float64), lambda context, builder, sig, args: builder.bitcast(args[0], ir.IntType(64))

    @intrinsic
    def as_float(typingctx, v):  # noqa: ANN001, ANN202
        return types.float64(types.int64), lambda context, builder, sig, args: builder.bitcast(args[0], ir.DoubleType())

    def jit(fn, parallel: bool = True):  # noqa: ANN001, ANN202
        try:  # compiled code cached on disk beside the module (or in the user's cache directory)
            return nb.njit(parallel=parallel, nogil=True, cache=True, error_model="numpy")(fn)
        except RuntimeError:  # no writable cache location: compile per process
            return nb.njit(parallel=parallel, nogil=True, error_model="numpy")(fn)

    helpers = (_pow, _srgb_to_linear, _linear_to_srgb, _hsum, _replicate, _vsum_step)
    globals().update({"_as_int": as_int, "_as_float": as_float} | {f.__name__: jit(f, False) for f in helpers})
    return SimpleNamespace(
        dn_rows=jit(_dn_rows),
        dn_coefs=jit(_dn_coefs),
        dn_rows2=jit(_dn_rows2),
        dn_out=jit(_dn_out),
        tone_rows=jit(_tone_rows),
    )


def denoise(
    y: np.ndarray, x: np.ndarray, strength: float, sigma: np.ndarray, radius: int, chroma_sigma: np.ndarray | None
) -> np.ndarray:
    """:func:`~zerodce.core.filters.gain_aware_denoise` (``strength > 0``) of float32 C-contiguous
    ``y`` and ``x`` (B, 3, H, W), fused; a new array."""
    k = _kernels()
    b, _, h, w = y.shape
    sig = np.ascontiguousarray(np.broadcast_to(np.asarray(sigma, dtype=np.float32).reshape(-1), (b,)))
    has_bound = chroma_sigma is not None
    csig = np.asarray(chroma_sigma if has_bound else np.zeros(b), dtype=np.float32).reshape(-1)
    bound = np.ascontiguousarray(np.broadcast_to(_F(3.0) * csig, (b,)))  # filters.CHROMA_BOUND
    knee = _F(2.0 * strength) * sig  # filters.CHROMA_KNEE
    knee2 = knee * knee
    ycc = np.empty((b, 3, h, w), np.float32)
    hs = np.empty((b, 7, h, w), np.float32)
    ab = np.empty((b, 8, h, w), np.float32)
    out = np.empty((b, 3, h, w), np.float32)
    with _LAUNCH:
        k.dn_rows(y, x, radius, ycc, hs)
        k.dn_coefs(hs, radius, _F(strength), sig, bound, knee2, ab)
        k.dn_rows2(ab, radius, hs)
        k.dn_out(hs, ab, ycc, radius, has_bound, out)
    return out


def tone(x: np.ndarray, maps: np.ndarray, n_iter: int, u: np.ndarray, cast: np.ndarray | None) -> np.ndarray:
    """:func:`~zerodce.core.tone.tone` of float32 ``x`` (B, 3, H, W) in one pass; a new array."""
    k = _kernels()
    b = x.shape[0]
    u = np.ascontiguousarray(np.broadcast_to(np.asarray(u, dtype=np.float32).reshape(-1), (b,)))
    mode = np.where(u == 0, 0, np.where(u < 0, 4, np.where(u > 1, 3, np.where(u == 1, 2, 1)))).astype(np.int64)
    off = np.minimum(u.astype(np.float64) - 1.0, 2.0).astype(np.float32)
    e2 = np.exp2(u)
    has_cast = cast is not None
    g = np.asarray(cast if has_cast else np.ones((b, 3)), dtype=np.float32).reshape(b, 3)
    out = np.empty(x.shape, np.float32)
    with _LAUNCH:
        k.tone_rows(x, maps, n_iter, mode, u, off, e2, np.ascontiguousarray(g), has_cast, out)
    return out
