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
def _srgb_to_linear(v):  # noqa: ANN001, ANN202 - color.srgb_to_linear of one value
    if v <= _S2L_KNEE:
        return v / _S2L_LIN
    o = max(v, _S2L_KNEE) + _S2L_OFF
    o = o / _S2L_DIV
    return o**_S2L_POW


def _linear_to_srgb(v):  # noqa: ANN001, ANN202 - color.linear_to_srgb of one value
    if v <= _L2S_KNEE:
        return v * _S2L_LIN
    o = max(v, _L2S_KNEE) ** _L2S_POW
    o = o * _S2L_DIV
    return o - _S2L_OFF


def _hsum(src, r, out):  # noqa: ANN001, ANN202 - window sums of a row, edges replicated
    w = src.shape[0]
    s = 0.0
    for t in range(-r, r + 1):
        s += src[min(max(t, 0), w - 1)]
    out[0] = s
    for j in range(1, w):
        s += src[min(j + r, w - 1)]
        s -= src[max(j - r - 1, 0)]
        out[j] = s


def _vsum_step(plane, i, r, h, c0, c1, acc):  # noqa: ANN001, ANN202 - acc: window sums of rows about i
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
            acc[j] += add[c0 + j]
            acc[j] -= sub[c0 + j]


# ---- the gain-aware denoiser --------------------------------------------------------------------------
def _dn_rows(y, x, r, ycc, hs):  # noqa: ANN001, ANN202
    # YCbCr of y and luma of x per row, then horizontal window sums of Y, Y^2, luma(x) (radius r)
    # and Cb, Cb^2, Cr, Cr^2 (2r) into hs (B, 7, H, W).
    b_n, _, h_n, w_n = y.shape
    for bh in prange(b_n * h_n):
        b, i = bh // h_n, bh % h_n
        lx = np.empty(w_n, np.float32)
        sq = np.empty(w_n, np.float32)
        tmp = np.empty(w_n, np.float64)
        for j in range(w_n):
            r0, g0, b0 = y[b, 0, i, j], y[b, 1, i, j], y[b, 2, i, j]
            for k in range(3):
                ycc[b, k, i, j] = _YCC[k, 0] * r0 + _YCC[k, 1] * g0 + _YCC[k, 2] * b0
            lx[j] = _LR * x[b, 0, i, j] + _LG * x[b, 1, i, j] + _LB * x[b, 2, i, j]
        for p in range(7):  # Y, Y^2, luma(x), Cb, Cb^2, Cr, Cr^2
            rad = r if p < 3 else 2 * r
            if p == 2:
                _hsum(lx, r, tmp)
            elif p == 1 or p == 4 or p == 6:
                src = ycc[b, 0 if p == 1 else p // 2 - 1, i]
                for j in range(w_n):
                    sq[j] = src[j] * src[j]
                _hsum(sq, rad, tmp)
            else:
                _hsum(ycc[b, 0 if p == 0 else (p - 1) // 2, i], rad, tmp)
            for j in range(w_n):
                hs[b, p, i, j] = tmp[j]


def _dn_coefs(hs, r, strength, sig, bound, knee2, ab):  # noqa: ANN001, ANN202
    # Window means, local gain, eps, and the self-guided filters' a and b for Y, Cb, Cr, the chroma
    # bound and the chroma weight: ab (B, 8, H, W) = aY, bY, aCb, bCb, aCr, bCr, bound, weight.
    b_n, _, h_n, w_n = hs.shape
    blocks = (w_n + _COLS - 1) // _COLS
    k1, k2 = 2 * r + 1, 4 * r + 1
    scale1, scale2 = np.float32(1.0 / (k1 * k1)), np.float32(1.0 / (k2 * k2))
    for bb in prange(b_n * blocks):
        b, c0 = bb // blocks, (bb % blocks) * _COLS
        c1 = min(c0 + _COLS, w_n)
        acc = np.empty((7, _COLS), np.float64)
        for i in range(h_n):
            for p in range(7):
                _vsum_step(hs[b, p], i, r if p < 3 else 2 * r, h_n, c0, c1, acc[p])
            for j in range(c1 - c0):
                mean_y, mean_yy = np.float32(acc[0, j]) * scale1, np.float32(acc[1, j]) * scale1
                mean_x = np.float32(acc[2, j]) * scale1
                gain = mean_y / max(mean_x, _LX_FLOOR)
                eps = gain * strength
                eps = eps * sig[b]
                eps = eps * eps + _EPS0
                for c in range(3):
                    if c == 0:
                        m, mm = mean_y, mean_yy
                    else:
                        m = np.float32(acc[2 * c + 1, j]) * scale2
                        mm = np.float32(acc[2 * c + 2, j]) * scale2
                    var = max(mm - m * m, _ZERO)
                    a = var / (var + eps)
                    ab[b, 2 * c, i, c0 + j] = a
                    ab[b, 2 * c + 1, i, c0 + j] = m - a * m
                ab[b, 6, i, c0 + j] = gain * bound[b]
                t = max(mean_x * mean_x + knee2[b], _W_FLOOR)
                ab[b, 7, i, c0 + j] = _ONE - knee2[b] / t


def _dn_rows2(ab, r, hs):  # noqa: ANN001, ANN202 - horizontal window sums of the six a, b planes
    b_n, _, h_n, w_n = ab.shape
    for bh in prange(b_n * h_n):
        b, i = bh // h_n, bh % h_n
        tmp = np.empty(w_n, np.float64)
        for p in range(6):
            _hsum(ab[b, p, i], r if p < 2 else 2 * r, tmp)
            for j in range(w_n):
                hs[b, p, i, j] = tmp[j]


def _dn_out(hs, ab, ycc, r, has_bound, out):  # noqa: ANN001, ANN202 - the filtered YCbCr, bounded, weighted, to RGB
    b_n, _, h_n, w_n = ycc.shape
    blocks = (w_n + _COLS - 1) // _COLS
    k1, k2 = 2 * r + 1, 4 * r + 1
    scale1, scale2 = np.float32(1.0 / (k1 * k1)), np.float32(1.0 / (k2 * k2))
    for bb in prange(b_n * blocks):
        b, c0 = bb // blocks, (bb % blocks) * _COLS
        c1 = min(c0 + _COLS, w_n)
        acc = np.empty((6, _COLS), np.float64)
        f = np.empty(3, np.float32)
        for i in range(h_n):
            for p in range(6):
                _vsum_step(hs[b, p], i, r if p < 2 else 2 * r, h_n, c0, c1, acc[p])
            for j in range(c1 - c0):
                for c in range(3):
                    s = scale1 if c == 0 else scale2
                    v = ycc[b, c, i, c0 + j]
                    f[c] = (np.float32(acc[2 * c, j]) * s) * v + np.float32(acc[2 * c + 1, j]) * s
                    if c > 0:
                        if has_bound:
                            lim = ab[b, 6, i, c0 + j]
                            d = min(max(f[c] - v, -lim), lim)
                            f[c] = d + v
                        f[c] = f[c] * ab[b, 7, i, c0 + j]
                for k in range(3):
                    o = _RGB[k, 0] * f[0] + _RGB[k, 1] * f[1] + _RGB[k, 2] * f[2]
                    out[b, k, i, c0 + j] = min(max(o, _ZERO), _ONE)


# ---- the tone chain -------------------------------------------------------------------------------
def _tone_rows(x, maps, n_iter, mode, u, off, e2, cast, has_cast, out):  # noqa: ANN001, ANN202
    # mode per image: 0 u = 0, 1 0 < u < 1, 2 u = 1, 3 u > 1, 4 u < 0 (tone._gain's branches).
    b_n, _, h_n, w_n = x.shape
    m_n = maps.shape[1]
    for bh in prange(b_n * h_n):
        b, i = bh // h_n, bh % h_n
        md, ub = mode[b], u[b]
        ws = min(max(ub, _ZERO), _ONE)
        xs = np.empty(3, np.float32)
        ys = np.empty(3, np.float32)
        ps = np.empty(3, np.float32)
        for j in range(w_n):
            for c in range(3):
                xs[c] = x[b, c, i, j]
            v = max(max(xs[0], xs[1]), xs[2])
            vf = max(v, _V_FLOOR)
            cv, co = vf, vf  # the value curve, and with the offset (u > 1)
            for n in range(n_iter):
                k = 3 * n if m_n > 3 else 0
                a = (maps[b, k, i, j] + maps[b, k + 1, i, j]) + maps[b, k + 2, i, j]
                a = a / _THREE
                cv = cv + (a * cv) * (_ONE - cv)
                if md == 3:
                    ao = min(max(a + off[b], -_ONE), _ONE)
                    co = co + (ao * co) * (_ONE - co)
            g1 = cv / vf  # the model's gain (u = 1)
            if md == 3:
                gain = co / vf
            elif md == 4:
                gain = _linear_to_srgb(_srgb_to_linear(vf) * e2[b]) / vf
            elif md == 0:
                gain = _ONE
            else:
                gain = max(g1, _GAIN_FLOOR)
                if md == 1:
                    gain = gain**ub
            cap = min(gain, _ONE / vf)
            for c in range(3):
                ys[c] = xs[c] * cap
            # curve_saturation: the per-channel curves' colour at this exposure, projected on chroma
            for c in range(3):
                if ws == _ZERO:
                    rel = _ONE
                else:
                    xf = max(xs[c], _V_FLOOR)
                    p = xf
                    for n in range(n_iter):
                        a = maps[b, 3 * n + c if m_n > 3 else c, i, j]
                        p = p + (a * p) * (_ONE - p)
                    rel = max((p / xf) / g1, _GAIN_FLOOR)
                    if ws != _ONE:
                        rel = rel**ws
                ps[c] = ys[c] * rel
            lum_y = (_LR * ys[0] + _LG * ys[1]) + _LB * ys[2]
            lum_p = (_LR * ps[0] + _LG * ps[1]) + _LB * ps[2]
            dyb, dyr = ys[2] - lum_y, ys[0] - lum_y
            dpb, dpr = ps[2] - lum_p, ps[0] - lum_p
            dot = (_CB2 * dyb) * dpb + (_CR2 * dyr) * dpr
            norm = max((_CB2 * dyb) * dyb + (_CR2 * dyr) * dyr, _NORM_FLOOR)
            kk = min(max(dot / norm, _ZERO), _ONE)
            for c in range(3):
                ys[c] = (ys[c] - lum_y) * kk + lum_y
            if has_cast:  # apply_cast: channel gains in linear light, the brightest channel at most 1
                for c in range(3):
                    ps[c] = _srgb_to_linear(min(max(ys[c], _ZERO), _ONE)) * cast[b, c]
                top = max(max(max(ps[0], ps[1]), ps[2]), _ONE)
                for c in range(3):
                    ys[c] = _linear_to_srgb(ps[c] / top)
            for c in range(3):
                out[b, c, i, j] = ys[c]


@functools.cache
def _kernels() -> SimpleNamespace:
    global prange
    import numba as nb

    prange = nb.prange

    def jit(fn, parallel: bool = True):  # noqa: ANN001, ANN202
        try:  # compiled code cached on disk beside the module (or in the user's cache directory)
            return nb.njit(parallel=parallel, nogil=True, cache=True)(fn)
        except RuntimeError:  # no writable cache location: compile per process
            return nb.njit(parallel=parallel, nogil=True)(fn)

    globals().update({f.__name__: jit(f, False) for f in (_srgb_to_linear, _linear_to_srgb, _hsum, _vsum_step)})
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
