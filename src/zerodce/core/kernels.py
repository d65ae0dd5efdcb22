"""Fused numba kernels for the work after the networks: the gain-aware denoiser, the tone chain, the
curves alone, the conversions of integer samples to float planes and back, the fast model's map rows,
the thumbnail's area resampling and the noise estimator's patch energies.

Optional, like :mod:`zerodce.core.coded`'s curve loop: numba is imported and the kernels compiled on
first use (cached on disk where a cache directory is writable), and the numpy functions they mirror
(:func:`~zerodce.core.filters.gain_aware_denoise`, :func:`~zerodce.core.tone.tone`,
:func:`~zerodce.core.curves.apply_curves`, :func:`~zerodce.core.resample.upsample_rows`,
:func:`~zerodce.core.color.area_resize`, ``zerodce.core.noise._patches``) remain the reference and
the fallback; each dispatches here itself (:func:`takes`). Each kernel does the numpy code's float32
arithmetic in its order, a pixel at a time, over rows (tone) or column strips (denoiser) in
parallel, but for the sRGB curves (tables: see _LUT_N); the denoiser's window sums are float64
running sums down the columns and float32 sums of shifted rows across them (as
:func:`~zerodce.core.filters.box`), so results agree with numpy to about 3e-7 on the tests' random
images. Loops read views that start at index 0: numba checks an index it cannot prove non-negative
for wrap-around, and that check keeps a loop from vectorising. One exception: where the noise level is 0 the
guided filters' regulariser is 1e-8, and in flat regions ``var / (var + eps)`` then amplifies
float32 rounding: there numpy moves by up to 8e-5 when its input moves by one unit in the last
place, numpy and torch differ by up to 7e-5, and the kernel differs from either as much (a 1200x900
photo whose noise estimate is 0).

``ZERODCE_NO_NUMBA=1`` in the environment turns the kernels off (the numpy code runs).
"""

from __future__ import annotations

import functools
import logging
import math
import os
from types import SimpleNamespace

import numpy as np

from ._fork import ForkSafeLock, numba_usable
from .coded import _LAUNCH, NUMBA_INSTALLED
from .color import LUMA, RGB_TO_YCC, YCC_TO_RGB

__all__ = [
    "enabled",
    "takes",
    "denoise",
    "tone",
    "curves",
    "curve_value",
    "to_float",
    "to_integer",
    "lerp_rows",
    "patches",
    "area",
    "warm",
]

_F = np.float32
log = logging.getLogger("zerodce")
prange = range  # numba.prange once compiled (_kernels)


# Constants as float32 globals: numba freezes them at compile time, and keeps float32 arithmetic
# float32 (a Python float literal would promote it to float64).
_ZERO, _ONE, _THREE = _F(0.0), _F(1.0), _F(3.0)
_V_FLOOR = _F(1.0 / 1024)  # tone.V_FLOOR
_GAIN_FLOOR, _NORM_FLOOR = _F(1e-6), _F(1e-12)
_CB2, _CR2 = _F((0.5 / (1 - 0.114)) ** 2), _F((0.5 / (1 - 0.299)) ** 2)  # tone._CB2, tone._CR2
_LR, _LG, _LB = (_F(c) for c in LUMA)
_S2L_KNEE, _S2L_LIN = _F(0.04045), _F(12.92)
_L2S_KNEE = _F(0.0031308)
_S2L_OFF = _F(0.055)
# The sRGB curves' power segments as tables of _LUT_N cells, linearly interpolated: per pixel two
# loads instead of a _pow (6 a pixel with a cast: 0.060 s against 0.034 s without, 1200x900, 1 thread).
# Each table holds its power segment continued past the knee (the linear segment is computed), so
# that the cell across the knee interpolates a smooth curve. linear_to_srgb is indexed by sqrt(v):
# uniform in v, its curvature at the knee (1.055 v^(1/2.4) has v'' = -2400 there) would need 64
# times the cells for the same error (measured: 1.6e-5 with 4096 cells); in sqrt(v) it is 4.2.
# Interpolation error below 3e-8 at 4096 cells; against color's float32 functions (whose own
# error, from the float32 rounding of the power's argument, is up to 2.2e-7) at most 2.4e-7
# (measured on 4M points of [0, 1]). Float32 tables: 16 KiB each, in L1 with the rows.
_LUT_N = 4096
_LUT_SCALE = _F(_LUT_N)
_S2L_LUT = (((np.arange(_LUT_N + 1) / _LUT_N + 0.055) / 1.055) ** 2.4).astype(np.float32)
_L2S_LUT = (1.055 * (np.arange(_LUT_N + 1) / _LUT_N) ** (2 / 2.4) - 0.055).astype(np.float32)
_LX_FLOOR, _EPS0, _W_FLOOR = _F(1.0 / 255.0), _F(1e-8), _F(1e-20)
_YCC = RGB_TO_YCC.copy()
_RGB = YCC_TO_RGB.copy()
_COLS = 256  # columns per block of the vertical (running-sum) passes
_TONE_COLS = 256  # columns per segment of the tone chain: its buffers (about 20 KiB for DCE-Net) in L1


def enabled() -> bool:
    """Whether the kernels run: numba installed and ``ZERODCE_NO_NUMBA`` not set to 1, and not in a
    child forked after numba ran on GNU OpenMP (:func:`~zerodce.core._fork.numba_usable`)."""
    return os.environ.get("ZERODCE_NO_NUMBA", "") != "1" and numba_usable(NUMBA_INSTALLED)


def takes(*arrays: np.ndarray) -> bool:
    """Whether the kernels run on ``arrays``: :func:`enabled`, and each float32 and C-contiguous (as
    the kernels read them); the numpy code runs otherwise."""
    return all(a.dtype == np.float32 and a.flags.c_contiguous for a in arrays) and enabled()


# ---- pointwise helpers (inlined into the kernels) ----------------------------------------------------
_LN2, _INV_LN2, _SQRT2 = np.log(2.0), 1.0 / np.log(2.0), np.sqrt(2.0)
_MANTISSA, _ONE_BITS = np.int64((1 << 52) - 1), np.int64(1023 << 52)
_L3, _L5, _L7, _L9 = (1.0 / k for k in (3, 5, 7, 9))  # atanh's series
_E2, _E3, _E4, _E5, _E6, _E7, _E8, _E9 = (1.0 / math.factorial(k) for k in range(2, 10))  # exp's


def _as_int(v):  # noqa: ANN001, ANN202 - the bits of a float64 (an intrinsic once compiled: _kernels)
    return np.array([v]).view(np.int64)[0]


def _as_float(v):  # noqa: ANN001, ANN202 - the float64 of 64 bits (an intrinsic once compiled)
    return np.array([v]).view(np.float64)[0]


def _pow(x, y):  # noqa: ANN001, ANN202
    # float32 x ** y for x > 0, as exp2(y log2 x) in float64 from arithmetic alone, so that loops
    # of it vectorise (numba has no vector pow without Intel's SVML; numpy's float32 power has one).
    # Relative error below 3e-9 before the final rounding: the float32 result is within one unit
    # in the last place of numpy's float32 power (measured: equal for 81% of random inputs).
    bits = _as_int(np.float64(x))
    e = np.float64((bits >> 52) - 1023)
    m = _as_float((bits & _MANTISSA) | _ONE_BITS)  # x = m 2^e, m in [1, 2)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    e = e + 1.0 if big else e
    s = (m - 1.0) / (m + 1.0)  # ln m = 2 atanh(s), |s| < 0.172: the series to s^9 (error < 1e-9)
    s2 = s * s
    ln = (((_L9 * s2 + _L7) * s2 + _L5) * s2 + _L3) * s2 + 1.0
    t = np.float64(y) * (e + 2.0 * s * ln * _INV_LN2)
    t = min(max(t, -1000.0), 1000.0)
    n = np.floor(t + 0.5)
    g = (t - n) * _LN2  # |g| <= ln 2 / 2: exp by Taylor to g^9 (error < 1e-11)
    p = (((_E9 * g + _E8) * g + _E7) * g + _E6) * g + _E5
    p = ((((p * g + _E4) * g + _E3) * g + _E2) * g + 1.0) * g + 1.0
    return np.float32(_as_float(_as_int(p) + (np.int64(n) << 52)))


def _lut(table, t):  # noqa: ANN001, ANN202 - table linearly interpolated at t in [0, _LUT_N] (in cells)
    t = t if t > _ZERO else _ZERO  # no index outside the table, whatever t: NaN gives 0 here
    t = t if t < _LUT_SCALE else _LUT_SCALE  # (numba's max and min would return the NaN)
    i = min(np.uint64(t), np.uint64(_LUT_N - 1))  # unsigned: no wrap-around check (see _hsum)
    f = t - np.float32(i)
    return table[i] + f * (table[i + 1] - table[i])


def _srgb_to_linear(v):  # noqa: ANN001, ANN202 - color.srgb_to_linear of one value in [0, 1]
    o = _lut(_S2L_LUT, v * _LUT_SCALE)
    return v / _S2L_LIN if v <= _S2L_KNEE else o


def _linear_to_srgb(v):  # noqa: ANN001, ANN202 - color.linear_to_srgb of one value in [0, 1]
    o = _lut(_L2S_LUT, np.sqrt(v) * _LUT_SCALE)
    return v * _S2L_LIN if v <= _L2S_KNEE else o


def _hsum(pad, r, out):  # noqa: ANN001, ANN202
    # Window sums of radius r along a row whose edges are replicated in pad (2 big more entries
    # than out, big >= r): 2r + 1 shifted rows added in turn, in float32 like filters.box. Each
    # shift is a slice read from 0, so that the loop vectorises (an index that numba cannot prove
    # non-negative gets a wrap-around check per access, which kept it scalar: 5x slower), and
    # unlike a running sum it is not one chain of dependent additions.
    w = out.shape[0]
    base = (pad.shape[0] - w) // 2 - r
    src = pad[base : base + w]
    for j in range(w):
        out[j] = src[j]
    for t in range(1, 2 * r + 1):
        src = pad[base + t : base + t + w]
        for j in range(w):
            out[j] += src[j]


def _edges(pad, lo, hi):  # noqa: ANN001, ANN202 - pad[:, lo:hi] filled: replicate its edges outwards
    for p in range(pad.shape[0]):
        for t in range(lo):
            pad[p, t] = pad[p, lo]
        for t in range(hi, pad.shape[1]):
            pad[p, t] = pad[p, hi - 1]


def _vstep(ring, p, m, r, h, acc):  # noqa: ANN001, ANN202
    # acc = sums of plane p of rows m - r .. m + r (clamped to 0 .. h - 1) of ring (row i in slot
    # i % len(ring)), from those of row m - 1: one exact float64 difference per entry.
    k = ring.shape[0]
    if m == 0:
        acc[:] = 0.0
        for t in range(-r, r + 1):
            row = ring[min(max(t, 0), h - 1) % k, p]
            for j in range(acc.shape[0]):
                acc[j] += row[j]
    else:
        add, sub = ring[min(m + r, h - 1) % k, p], ring[max(m - r - 1, 0) % k, p]
        for j in range(acc.shape[0]):
            acc[j] += np.float64(add[j]) - np.float64(sub[j])


# ---- the gain-aware denoiser --------------------------------------------------------------------------
def _dn_strips(y, x, r, strength, sig, bound, knee2, has_bound, out):  # noqa: ANN001, ANN202, C901
    # filters._gain_aware_denoise on strips of _COLS columns (in parallel), each streamed row by
    # row through ring buffers that stay in cache: (1) luma/chroma planes of a row, their
    # horizontal window sums; (2) once the rows below are in, the vertical sums (means) of row m,
    # the self-guided filters' a and b, the chroma bound and weight, a and b's horizontal sums;
    # (3) with a lag of 2r rows, their vertical sums and the output row. A strip computes 4r
    # columns either side of its own (the windows' reach), so strips are independent.
    b_n, _, h_n, w_n = y.shape
    blocks = (w_n + _COLS - 1) // _COLS
    big = 2 * r  # the chroma radius; the lag of each vertical stage
    k = 2 * big + 2  # ring rows: a window and the row leaving it
    s1, s2 = np.float32(1.0 / ((2 * r + 1) ** 2)), np.float32(1.0 / ((2 * big + 1) ** 2))
    for bb in prange(b_n * blocks):
        b, c0 = bb // blocks, (bb % blocks) * _COLS
        c1 = min(c0 + _COLS, w_n)
        cw = c1 - c0
        w2 = cw + 2 * big  # stage 2: columns c0 - big .. c1 + big
        w1 = w2 + 2 * big  # stage 1: columns c0 - 2 big .. c1 + 2 big
        e1a, e1b = max(c0 - 2 * big, 0), min(c1 + 2 * big, w_n)  # those in the image
        e2a, e2b = max(c0 - big, 0), min(c1 + big, w_n)
        t1a, t1b, t2a, t2b = e1a - (c0 - 2 * big), e1b - (c0 - 2 * big), e2a - (c0 - big), e2b - (c0 - big)
        sb, bd, k2b = sig[b], bound[b], knee2[b]
        pad1 = np.empty((7, w1), np.float32)  # Y, Y^2, luma(x), Cb, Cb^2, Cr, Cr^2
        ring1 = np.empty((k, 7, w2), np.float32)  # their horizontal sums
        acc1 = np.empty((7, w2), np.float64)
        pad2 = np.empty((6, w2), np.float32)  # aY, bY, aCb, bCb, aCr, bCr
        ring2 = np.empty((k, 8, cw), np.float32)  # their horizontal sums; the bound; the weight
        acc2 = np.empty((6, cw), np.float64)
        nxt = 0  # the next input row
        for m in range(h_n + big):
            if m < h_n:
                while nxt <= min(m + big, h_n - 1):
                    y0, y1, y2 = y[b, 0, nxt, e1a:e1b], y[b, 1, nxt, e1a:e1b], y[b, 2, nxt, e1a:e1b]
                    x0, x1, x2 = x[b, 0, nxt, e1a:e1b], x[b, 1, nxt, e1a:e1b], x[b, 2, nxt, e1a:e1b]
                    # Views from column 0 (t1a on): an index numba cannot prove non-negative
                    # (t1a + j) gets a wrap-around check per access, which keeps a loop scalar.
                    d0, d1, d2, d3 = pad1[0, t1a:t1b], pad1[1, t1a:t1b], pad1[2, t1a:t1b], pad1[3, t1a:t1b]
                    d4, d5, d6 = pad1[4, t1a:t1b], pad1[5, t1a:t1b], pad1[6, t1a:t1b]
                    for j in range(e1b - e1a):
                        v0 = _YCC[0, 0] * y0[j] + _YCC[0, 1] * y1[j] + _YCC[0, 2] * y2[j]
                        v1 = _YCC[1, 0] * y0[j] + _YCC[1, 1] * y1[j] + _YCC[1, 2] * y2[j]
                        v2 = _YCC[2, 0] * y0[j] + _YCC[2, 1] * y1[j] + _YCC[2, 2] * y2[j]
                        d0[j], d1[j], d3[j], d4[j] = v0, v0 * v0, v1, v1 * v1
                        d5[j], d6[j] = v2, v2 * v2
                        d2[j] = _LR * x0[j] + _LG * x1[j] + _LB * x2[j]
                    _edges(pad1, t1a, t1b)
                    for p in range(7):
                        _hsum(pad1[p], r if p < 3 else big, ring1[nxt % k, p])
                    nxt += 1
                for p in range(7):
                    _vstep(ring1, p, m, r if p < 3 else big, h_n, acc1[p])
                lim, wt = ring2[m % k, 6], ring2[m % k, 7]
                m0, m1, m2, m3 = acc1[0, t2a:t2b], acc1[1, t2a:t2b], acc1[2, t2a:t2b], acc1[3, t2a:t2b]
                m4, m5, m6 = acc1[4, t2a:t2b], acc1[5, t2a:t2b], acc1[6, t2a:t2b]
                a0, b0, a1, b1 = pad2[0, t2a:t2b], pad2[1, t2a:t2b], pad2[2, t2a:t2b], pad2[3, t2a:t2b]
                a2, b2 = pad2[4, t2a:t2b], pad2[5, t2a:t2b]
                for t in range(t2b - t2a):
                    mean_y, mean_yy = np.float32(m0[t]) * s1, np.float32(m1[t]) * s1
                    mean_x = np.float32(m2[t]) * s1
                    gain = mean_y / max(mean_x, _LX_FLOOR)
                    eps = gain * strength
                    eps = eps * sb
                    eps = eps * eps + _EPS0
                    var = max(mean_yy - mean_y * mean_y, _ZERO)  # filters._self_guided's order
                    a = var / (var + eps)
                    a0[t], b0[t] = a, mean_y - a * mean_y
                    mc, mcc = np.float32(m3[t]) * s2, np.float32(m4[t]) * s2
                    var = max(mcc - mc * mc, _ZERO)
                    a = var / (var + eps)
                    a1[t], b1[t] = a, mc - a * mc
                    mc, mcc = np.float32(m5[t]) * s2, np.float32(m6[t]) * s2
                    var = max(mcc - mc * mc, _ZERO)
                    a = var / (var + eps)
                    a2[t], b2[t] = a, mc - a * mc
                m0, m2 = acc1[0, big : big + cw], acc1[2, big : big + cw]
                for j in range(cw):  # the output columns' bound and weight
                    mean_y, mean_x = np.float32(m0[j]) * s1, np.float32(m2[j]) * s1
                    lim[j] = (mean_y / max(mean_x, _LX_FLOOR)) * bd
                    wt[j] = _ONE - k2b / max(mean_x * mean_x + k2b, _W_FLOOR)
                _edges(pad2, t2a, t2b)
                for p in range(6):
                    _hsum(pad2[p], r if p < 2 else big, ring2[m % k, p])
            o = m - big  # the output row
            if o < 0:
                continue
            for p in range(6):
                _vstep(ring2, p, o, r if p < 2 else big, h_n, acc2[p])
            lim, wt = ring2[o % k, 6], ring2[o % k, 7]
            y0, y1, y2 = y[b, 0, o, c0:c1], y[b, 1, o, c0:c1], y[b, 2, o, c0:c1]
            q0, q1, q2 = out[b, 0, o, c0:c1], out[b, 1, o, c0:c1], out[b, 2, o, c0:c1]
            for j in range(cw):
                lum = _YCC[0, 0] * y0[j] + _YCC[0, 1] * y1[j] + _YCC[0, 2] * y2[j]
                cb = _YCC[1, 0] * y0[j] + _YCC[1, 1] * y1[j] + _YCC[1, 2] * y2[j]
                cr = _YCC[2, 0] * y0[j] + _YCC[2, 1] * y1[j] + _YCC[2, 2] * y2[j]
                fy = (np.float32(acc2[0, j]) * s1) * lum + np.float32(acc2[1, j]) * s1
                fb = (np.float32(acc2[2, j]) * s2) * cb + np.float32(acc2[3, j]) * s2
                fr = (np.float32(acc2[4, j]) * s2) * cr + np.float32(acc2[5, j]) * s2
                if has_bound:  # filters.bound_change
                    fb = min(max(fb - cb, -lim[j]), lim[j]) + cb
                    fr = min(max(fr - cr, -lim[j]), lim[j]) + cr
                fb, fr = fb * wt[j], fr * wt[j]
                q0[j] = min(max(_RGB[0, 0] * fy + _RGB[0, 1] * fb + _RGB[0, 2] * fr, _ZERO), _ONE)
                q1[j] = min(max(_RGB[1, 0] * fy + _RGB[1, 1] * fb + _RGB[1, 2] * fr, _ZERO), _ONE)
                q2[j] = min(max(_RGB[2, 0] * fy + _RGB[2, 1] * fb + _RGB[2, 2] * fr, _ZERO), _ONE)


# ---- the tone chain -------------------------------------------------------------------------------
def _tone_rows(x, maps, r0, c0, n_iter, mode, u, off, e2, cast, has_cast, out, n_threads):  # noqa: ANN001, ANN202
    # A segment of _TONE_COLS columns of one image row at a time, each step a loop over the
    # segment (so that it vectorises, and the segment's rows of every buffer stay in L1: whole rows
    # of a 12 MP photo streamed from L2); mode per image: 0 u = 0, 1 0 < u < 1, 2 u = 1, 3 u > 1,
    # 4 u < 0 (tone._gain's branches). The maps of image row i are row r0 + i of maps, from column
    # c0 (a band's or tile's in the whole maps). Each thread allocates its buffers once.
    b_n, _, h_n, w_n = x.shape
    per_iter = maps.shape[1] > 3
    segs = (w_n + _TONE_COLS - 1) // _TONE_COLS
    total = b_n * h_n * segs
    threads = max(1, min(n_threads, total))
    args = (x, maps, r0, c0, n_iter, mode, u, off, e2, cast, has_cast, out)
    for t in prange(threads):
        vf = np.empty(_TONE_COLS, np.float32)
        g1 = np.empty(_TONE_COLS, np.float32)  # the value curve, then the model's gain (u = 1)
        gain = np.empty(_TONE_COLS, np.float32)  # the value curve with the offset (u > 1), then the gain
        p = np.empty(_TONE_COLS, np.float32)
        ys = np.empty((3, _TONE_COLS), np.float32)
        ps = np.empty((3, _TONE_COLS), np.float32)
        xr = np.empty((3, _TONE_COLS), np.float32)  # the segment's samples, copied
        mr = np.empty((maps.shape[1], _TONE_COLS), np.float32)
        am = np.empty(_TONE_COLS, np.float32)  # this iteration's channel-mean map
        ao = np.empty(_TONE_COLS, np.float32)  # the same with the offset (u > 1)
        flag = np.empty(_TONE_COLS, np.int64)  # 1: a pixel the cast's tables compute
        idx = np.empty(_TONE_COLS, np.int64)  # their columns
        bufs = (vf, g1, gain, p, ys, ps, xr, mr, am, ao, flag, idx)
        for item in range(t, total, threads):
            _tone_segment(args, bufs, item // segs, (item % segs) * _TONE_COLS, per_iter)


def _tone_segment(args, bufs, bh, j0, per_iter):  # noqa: ANN001, ANN202, C901
    # Columns j0 .. j0 + w_n of image row bh (batch-major) of _tone_rows, in its buffers.
    x, maps, r0, c0, n_iter, mode, u, off, e2, cast, has_cast, out = args
    vf, g1, gain, p, ys, ps, xr, mr, am, ao, flag, idx = bufs
    h_n = x.shape[2]
    w_n = min(_TONE_COLS, x.shape[3] - j0)
    b, i = bh // h_n, bh % h_n
    md, ub, ob, eb = mode[b], u[b], off[b], e2[b]
    ws = min(max(ub, _ZERO), _ONE)
    for c in range(3):
        xr[c, :w_n] = x[b, c, i, j0 : j0 + w_n]
    for c in range(maps.shape[1]):
        mr[c, :w_n] = maps[b, c, r0 + i, c0 + j0 : c0 + j0 + w_n]
    for j in range(w_n):
        vf[j] = max(max(max(xr[0, j], xr[1, j]), xr[2, j]), _V_FLOOR)
        g1[j] = vf[j]
        gain[j] = vf[j]
    for n in range(n_iter):
        if per_iter or n == 0:  # Zero-DCE++'s one map: its mean computed once, not per iteration
            k = 3 * n if per_iter else 0
            a0, a1, a2 = mr[k], mr[k + 1], mr[k + 2]
            for j in range(w_n):
                am[j] = ((a0[j] + a1[j]) + a2[j]) / _THREE
            if md == 3:
                for j in range(w_n):
                    ao[j] = min(max(am[j] + ob, -_ONE), _ONE)
        for j in range(w_n):
            g1[j] = g1[j] + (am[j] * g1[j]) * (_ONE - g1[j])
        if md == 3:
            for j in range(w_n):
                gain[j] = gain[j] + (ao[j] * gain[j]) * (_ONE - gain[j])
    for j in range(w_n):
        g1[j] = g1[j] / vf[j]
    if md == 3:
        for j in range(w_n):
            gain[j] = gain[j] / vf[j]
    elif md == 4:
        for j in range(w_n):
            gain[j] = _linear_to_srgb(_srgb_to_linear(vf[j]) * eb) / vf[j]
    elif md == 0:
        gain[:w_n] = _ONE
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
            ps[c, :w_n] = ys[c, :w_n]
            continue
        for j in range(w_n):
            p[j] = max(xr[c, j], _V_FLOOR)
        for n in range(n_iter):
            a = mr[3 * n + c if per_iter else c]
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
    res = ys
    if has_cast:  # apply_cast: channel gains in linear light, the brightest channel at most 1
        res = ps
        # The cast is affine in sRGB where a channel's decoding and its encoding are both on their
        # power segments: L2S(g S2L(v)) = g^(1/2.4) (v + 0.055) - 0.055; and g v where both are on
        # their linear segments. Those pixels (nearly all) in one vectorised pass, unless a channel
        # would pass 1 (then the pixel is scaled back as a whole); the rest through the tables.
        g0, g1c, g2 = cast[b, 0, 0], cast[b, 0, 1], cast[b, 0, 2]
        k0, k1, k2 = cast[b, 1, 0], cast[b, 1, 1], cast[b, 1, 2]
        lo0, lo1, lo2 = cast[b, 2, 0], cast[b, 2, 1], cast[b, 2, 2]
        hi0, hi1, hi2 = cast[b, 3, 0], cast[b, 3, 1], cast[b, 3, 2]
        dk0, dk1, dk2 = cast[b, 4, 0], cast[b, 4, 1], cast[b, 4, 2]
        for j in range(w_n):
            v0, v1, v2 = ys[0, j], ys[1, j], ys[2, j]
            ps[0, j] = k0 * (v0 + _S2L_OFF) - _S2L_OFF if v0 >= lo0 else g0 * max(v0, _ZERO)
            ps[1, j] = k1 * (v1 + _S2L_OFF) - _S2L_OFF if v1 >= lo1 else g1c * max(v1, _ZERO)
            ps[2, j] = k2 * (v2 + _S2L_OFF) - _S2L_OFF if v2 >= lo2 else g2 * max(v2, _ZERO)
            ok0 = (v0 <= hi0) & ((v0 >= lo0) | (v0 <= dk0))  # False for NaN: the tables' path
            ok1 = (v1 <= hi1) & ((v1 >= lo1) | (v1 <= dk1))
            ok2 = (v2 <= hi2) & ((v2 >= lo2) | (v2 <= dk2))
            flag[j] = 0 if ok0 & ok1 & ok2 else 1
        n_slow = 0
        for j in range(w_n):  # the others' columns, gathered (a branch per pixel would not vectorise)
            idx[n_slow] = j
            n_slow += flag[j]
        for t in range(n_slow):
            j = idx[t]
            l0 = _srgb_to_linear(min(max(ys[0, j], _ZERO), _ONE)) * g0
            l1 = _srgb_to_linear(min(max(ys[1, j], _ZERO), _ONE)) * g1c
            l2 = _srgb_to_linear(min(max(ys[2, j], _ZERO), _ONE)) * g2
            top = max(max(max(l0, l1), l2), _ONE)
            ps[0, j] = _linear_to_srgb(l0 / top)
            ps[1, j] = _linear_to_srgb(l1 / top)
            ps[2, j] = _linear_to_srgb(l2 / top)
    for c in range(3):
        o = out[b, c, i, j0 : j0 + w_n]  # indexed from 0: see _hsum
        for j in range(w_n):
            o[j] = res[c, j]


# ---- the curves alone, and the conversions at either end -----------------------------------------------
def _curve_rows(x, maps, r0, c0, n_iter):  # noqa: ANN001, ANN202
    # curves.apply_curves in place (its in-place arithmetic, x += a (x - x^2)), one row of one
    # channel at a time through all iterations, in L1; image row i's maps are row r0 + i of maps,
    # from column c0 (as _tone_rows).
    b_n, _, h_n, w_n = x.shape
    per_iter = maps.shape[1] > 3
    for bh in prange(b_n * h_n):
        b, i = bh // h_n, bh % h_n
        for c in range(3):
            row = x[b, c, i]
            for n in range(n_iter):
                a = maps[b, 3 * n + c if per_iter else c, r0 + i, c0 : c0 + w_n]  # read from 0: see _hsum
                for j in range(w_n):
                    v = row[j]
                    row[j] = v + (v - v * v) * a[j]


def _value_curve_rows(v, mmaps, n_iter, off, has_off, out):  # noqa: ANN001, ANN202
    # tone.curve_value: each row of the value planes v (B, 1, H, W) through n_iter LE steps with
    # the channel-mean maps (their parameters offset by off[b] and clipped to [-1, 1] when has_off),
    # in curve_value's float32 order, v + (a v) (1 - v): the same numbers as numpy.
    b_n, _, h_n, w_n = v.shape
    per_iter = mmaps.shape[1] > 1
    for bh in prange(b_n * h_n):
        b, i = bh // h_n, bh % h_n
        row, o = v[b, 0, i], out[b, 0, i]
        for j in range(w_n):
            o[j] = row[j]
        ob = off[b]
        for n in range(n_iter):
            a = mmaps[b, n if per_iter else 0, i]
            if has_off:
                for j in range(w_n):
                    t = min(max(a[j] + ob, -_ONE), _ONE)
                    o[j] = o[j] + (t * o[j]) * (_ONE - o[j])
            else:
                for j in range(w_n):
                    o[j] = o[j] + (a[j] * o[j]) * (_ONE - o[j])


def _to_float_rows(x, inv, out):  # noqa: ANN001, ANN202
    # out = float32(x) * inv: integer samples (any strides, e.g. a (B, H, W, 3) image seen as
    # (B, 3, H, W)) to contiguous float32 planes, one image row at a time.
    b_n, c_n, h_n, w_n = x.shape
    for bh in prange(b_n * h_n):
        b, i = bh // h_n, bh % h_n
        for j in range(w_n):
            for c in range(c_n):
                out[b, c, i, j] = np.float32(x[b, c, i, j]) * inv


def _to_integer_rows(y, s, out, r0, c0):  # noqa: ANN001, ANN202
    # out[:, r0 + i, c0 + j, c] = rint(clip(y[:, c, i, j] * s, 0, s)): float planes of a region to
    # the interleaved integer image, one row at a time.
    b_n, c_n, h_n, w_n = y.shape
    for bh in prange(b_n * h_n):
        b, i = bh // h_n, bh % h_n
        o = out[b, r0 + i, c0 : c0 + w_n]  # indexed from 0: see _hsum
        for j in range(w_n):
            for c in range(c_n):
                v = min(max(y[b, c, i, j] * s, _ZERO), s)
                o[j, c] = np.rint(v)


def _lerp_rows_of(cols, i0, i1, wgt, out):  # noqa: ANN001, ANN202
    # resample.upsample_rows' arithmetic: top + (bottom - top) * weight, one output row at a time.
    b_n, c_n, h_n, w_n = out.shape
    for bh in prange(b_n * h_n):
        b, i = bh // h_n, bh % h_n
        t, u, g = i0[i], i1[i], wgt[i]
        for c in range(c_n):
            top, bottom, o = cols[b, c, t], cols[b, c, u], out[b, c, i]
            for j in range(w_n):
                o[j] = top[j] + (bottom[j] - top[j]) * g


# ---- the noise estimator's patches --------------------------------------------------------------------
def _patch_rows(x, k, stride, nw, weights, p, energy):  # noqa: ANN001, ANN202
    # noise.noise_levels' sampling in one pass: the k x k patch of image x (C, H, W) at row
    # stride * (n // nw), column stride * (n % nw), mixed over channels with each row m of weights
    # (float32 sums, as numpy's product), widened to float64 into p[m, n], and its gradient energy
    # (numpy: a strided copy, a product and six passes over arrays of the patches' size). The
    # float64 differences of float32 values are exact, so only the order of the energy's sums differs.
    c_n, m_n = x.shape[0], weights.shape[0]
    for n in prange(p.shape[1]):
        i0, j0 = stride * (n // nw), stride * (n % nw)
        for m in range(m_n):
            q = p[m, n]
            for r in range(k):
                for s in range(k):
                    acc = weights[m, 0] * x[0, i0 + r, j0 + s]
                    for c in range(1, c_n):
                        acc += weights[m, c] * x[c, i0 + r, j0 + s]
                    q[r * k + s] = acc
            e = 0.0
            for t in range(k * (k - 1)):  # vertical differences
                d = q[t + k] - q[t]
                e += d * d
            for a in range(k):  # horizontal differences
                for t in range(a * k, a * k + k - 1):
                    d = q[t + 1] - q[t]
                    e += d * d
            energy[m, n] = e


def _area_rows(x, rs, re, cs, ce, out):  # noqa: ANN001, ANN202
    # color.area_resize: each output row's input rows summed in float64 over the width, then each
    # output pixel's columns of that sum, divided by the bin's size.
    b_n, c_n, _, w_n = x.shape
    h_o, w_o = out.shape[2], out.shape[3]
    for bci in prange(b_n * c_n * h_o):
        b, c, i = bci // (c_n * h_o), (bci // h_o) % c_n, bci % h_o
        acc = np.zeros(w_n, np.float64)
        for r in range(rs[i], re[i]):
            row = x[b, c, r]
            for j in range(w_n):
                acc[j] += row[j]
        rows = re[i] - rs[i]
        for j in range(w_o):
            t = 0.0
            for q in range(cs[j], ce[j]):
                t += acc[q]
            out[b, c, i, j] = t / (rows * (ce[j] - cs[j]))


_BUILDING = ForkSafeLock()


def _kernels() -> SimpleNamespace:
    """The compiled kernels, built once per process. Locked: the noise estimate's thread and the
    caller's both reach here on a first photo, and :func:`functools.cache` alone lets both run the
    body (the second then found the helpers already replaced by their jitted versions)."""
    with _BUILDING:
        return _build_kernels()


@functools.cache
def _build_kernels() -> SimpleNamespace:
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

    # The helpers are inlined in numba's IR: called as separate functions, the kernels compiled in
    # a process ran 8x slower than the same kernels loaded from the cache (measured: 155 ms
    # against 20 ms for a band of the tone chain; the calls were not inlined, so no loop vectorised).
    helpers = (_pow, _lut, _srgb_to_linear, _linear_to_srgb, _hsum, _edges, _vstep, _tone_segment)
    inlined = {f.__name__: nb.njit(inline="always", error_model="numpy")(f) for f in helpers}
    globals().update({"_as_int": as_int, "_as_float": as_float} | inlined)
    built = SimpleNamespace(
        denoise=jit(_dn_strips),
        tone_rows=jit(_tone_rows),
        curve_rows=jit(_curve_rows),
        value_curve=jit(_value_curve_rows),
        to_float=jit(_to_float_rows),
        to_integer=jit(_to_integer_rows),
        lerp_rows=jit(_lerp_rows_of),
        area=jit(_area_rows),
        patches=jit(_patch_rows),
    )
    missing = uncached(vars(built))
    if missing:  # the first photo after installing numba (or zerodce) waits for them: say why
        log.info(
            "%d of %d numba kernels are not compiled for this machine yet: their first use compiles them, "
            "once (about 30 s for all of them on 2 cores); later processes load them from disk in about 0.5 s",
            len(missing),
            len(vars(built)),
        )
    return built


def warm() -> None:
    """Run every kernel once on tiny arrays, so that numba compiles (on a machine's first use, about
    30 s) or loads each now rather than in the middle of a first photo (``scripts/setup.sh fast``)."""
    rng = np.random.default_rng(0)
    f = rng.random((1, 3, 9, 11), dtype=np.float32)
    m = rng.random((1, 24, 9, 11), dtype=np.float32)
    y = tone(f, m, 8, np.array([1.03], np.float32), np.ones((1, 3), np.float32))
    denoise(y, f, 1.0, np.array([0.01]), 2, np.array([0.01]))
    curves(f.copy(), m, 8)
    curve_value(f[:, :1].copy(), m[:, :8].copy(), 8, np.array([0.5], np.float32))
    to_float((f * 255).astype(np.uint8).transpose(0, 1, 3, 2), 255)  # strided, as a decoded photo is
    to_integer(f, 255, np.zeros((1, 9, 11, 3), np.uint8), slice(0, 9), slice(0, 11))
    lerp_rows(f, np.array([0, 1]), np.array([1, 2]), np.array([0.5, 0.5]))
    area(f, (np.array([0, 3]), np.array([3, 9])), (np.array([0, 5]), np.array([6, 11])))
    patches(f[0], 3, 2, np.ones((2, 3), np.float32))


def uncached(dispatchers: dict) -> list[str]:
    """The names of the numba ``dispatchers`` with no compiled code cached on disk yet (their index
    file absent), which their first call will compile. Best effort: numba's cache internals, read
    defensively (nothing is reported if they move); an index left by an older version of the code
    is not detected (numba then recompiles without this notice)."""
    missing = []
    for name, dispatcher in dispatchers.items():
        try:
            index = dispatcher._cache._cache_file._index_path
        except AttributeError:
            continue
        if not os.path.exists(index):
            missing.append(name)
    return missing


def denoise(
    y: np.ndarray,
    x: np.ndarray,
    strength: float,
    sigma: np.ndarray,
    radius: int,
    chroma_sigma: np.ndarray | None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`~zerodce.core.filters.gain_aware_denoise` (``strength > 0``) of float32 C-contiguous
    ``y`` and ``x`` (B, 3, H, W), fused; into ``out`` (returned; a new array if None)."""
    k = _kernels()
    b, _, h, w = y.shape
    sig = np.ascontiguousarray(np.broadcast_to(np.asarray(sigma, dtype=np.float32).reshape(-1), (b,)))
    has_bound = chroma_sigma is not None
    csig = np.asarray(chroma_sigma if has_bound else np.zeros(b), dtype=np.float32).reshape(-1)
    bound = np.ascontiguousarray(np.broadcast_to(_F(3.0) * csig, (b,)))  # filters.CHROMA_BOUND
    knee = _F(2.0 * strength) * sig  # filters.CHROMA_KNEE
    knee2 = knee * knee
    dest = _output(out, (b, 3, h, w), y, x)
    with _LAUNCH:
        k.denoise(y, x, radius, _F(strength), sig, bound, knee2, has_bound, dest)
    return _deliver(out, dest)


def tone(
    x: np.ndarray,
    maps: np.ndarray,
    n_iter: int,
    u: np.ndarray,
    cast: np.ndarray | None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`~zerodce.core.tone.tone` of float32 ``x`` (B, 3, H, W) in one pass; into ``out``
    (returned; a new array if None)."""
    if maps.shape[0] != x.shape[0] or maps.shape[2:] != x.shape[2:]:
        raise ValueError(f"maps {maps.shape} do not cover images {x.shape}")
    k = _kernels()
    b = x.shape[0]
    u = np.ascontiguousarray(np.broadcast_to(np.asarray(u, dtype=np.float32).reshape(-1), (b,)))
    mode = np.where(u == 0, 0, np.where(u < 0, 4, np.where(u > 1, 3, np.where(u == 1, 2, 1)))).astype(np.int64)
    off = np.minimum(u.astype(np.float64) - 1.0, 2.0).astype(np.float32)
    e2 = np.exp2(u)
    has_cast = cast is not None
    g = _cast_constants(np.asarray(cast if has_cast else np.ones((b, 3)), dtype=np.float64).reshape(b, 3))
    dest = _output(out, x.shape, x, maps)
    # One compiled specialisation (each takes about 10 s to compile on first use): contiguous
    # arrays. DCE-Net's maps of a band or tile are read in place, from the whole maps at an offset
    # (a copy of their 24 planes took 23 ms of a 1200x900 photo's 1 s); other crops are copied.
    x = np.ascontiguousarray(x, dtype=np.float32)
    whole, r0, c0 = _crop_of(maps)
    with _LAUNCH:
        from numba import get_num_threads  # an argument: a call inside the kernel stops numba caching it

        threads = get_num_threads()
        k.tone_rows(x, whole, r0, c0, n_iter, mode, u, off, e2, g, has_cast, dest, threads)
    return _deliver(out, dest)


def _output(out: np.ndarray | None, shape: tuple[int, ...], *reads: np.ndarray) -> np.ndarray:
    """Where a kernel writes: ``out``, checked to be a float32 C-contiguous array of ``shape``; a new
    array when it is None or shares memory with one of the kernel's inputs ``reads`` (a kernel reads
    rows and windows that another strip or thread may already have written): :func:`_deliver`."""
    if out is None:
        return np.empty(shape, np.float32)
    if out.shape != tuple(shape) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {tuple(shape)}")
    return np.empty(shape, np.float32) if any(np.may_share_memory(out, a) for a in reads) else out


def _deliver(out: np.ndarray | None, dest: np.ndarray) -> np.ndarray:
    """The result a kernel wrote into ``dest`` (:func:`_output`), in ``out`` when one was given."""
    if out is None or dest is out:
        return dest
    np.copyto(out, dest)
    return out


def _cast_constants(g: np.ndarray) -> np.ndarray:
    """Per image and channel (B, 5, 3) float32: the cast gain g; g^(1/2.4), the slope of the cast in
    sRGB on the power segments; the smallest value from which both curves are on them; the largest
    value whose channel stays at most 1; the largest value with both on their linear segments."""
    g = np.maximum(g, 1e-30)
    lo = np.where(g >= 1.0, 0.04045, 1.055 * (0.0031308 / g) ** (1 / 2.4) - 0.055)
    hi = np.where(g <= 1.0, 1.0, 1.055 * (1.0 / g) ** (1 / 2.4) - 0.055)
    dark = np.minimum(0.04045, 0.04045 / g)
    return np.ascontiguousarray(np.stack([g, g ** (1 / 2.4), lo, hi, dark], axis=1), dtype=np.float32)


def _crop_of(a: np.ndarray) -> tuple[np.ndarray, int, int]:
    """``(whole, r0, c0)`` with ``a == whole[:, :, r0 : r0 + h, c0 : c0 + w]`` and ``whole`` a C-contiguous
    float32 array: the array ``a`` is a crop of (all its images and channels), else a contiguous copy."""
    base = a.base
    if (
        a.dtype == np.float32
        and isinstance(base, np.ndarray)
        and base.dtype == np.float32
        and base.ndim == 4
        and base.flags.c_contiguous
        and base.shape[:2] == a.shape[:2]
        and a.strides == base.strides
    ):
        offset = a.__array_interface__["data"][0] - base.__array_interface__["data"][0]
        h, w = base.shape[2:]
        r0, c0 = divmod(offset // base.itemsize, w)
        if offset % base.itemsize == 0 and 0 <= r0 and r0 + a.shape[2] <= h and c0 + a.shape[3] <= w:
            return base, r0, c0
    return np.ascontiguousarray(a, dtype=np.float32), 0, 0


def curves(x: np.ndarray, maps: np.ndarray, n_iter: int) -> np.ndarray:
    """:func:`~zerodce.core.curves.apply_curves` in place on float32 C-contiguous ``x`` (B, 3, H, W),
    with maps (B, 3n or 3, H, W) of the same size (a crop of larger maps is read in place); returns ``x``."""
    if maps.shape[0] != x.shape[0] or maps.shape[2:] != x.shape[2:]:
        raise ValueError(f"maps {maps.shape} do not cover images {x.shape}")
    whole, r0, c0 = _crop_of(maps)  # as in tone: DCE-Net's maps of a band read in place
    with _LAUNCH:
        _kernels().curve_rows(x, whole, r0, c0, n_iter)
    return x


def curve_value(v: np.ndarray, mmaps: np.ndarray, n_iter: int, offset: np.ndarray | None) -> np.ndarray:
    """:func:`~zerodce.core.tone.curve_value` of float32 C-contiguous ``v`` (B, 1, H, W) and ``mmaps``
    (B, n or 1, H, W); a new array."""
    if mmaps.shape[0] != v.shape[0] or mmaps.shape[2:] != v.shape[2:]:
        raise ValueError(f"maps {mmaps.shape} do not cover values {v.shape}")
    if 1 < mmaps.shape[1] < n_iter:  # numpy's broadcast fails there; the kernel would read past the maps
        raise ValueError(f"{mmaps.shape[1]} maps for {n_iter} steps")
    b = v.shape[0]
    has_off = offset is not None
    off = np.ascontiguousarray(np.broadcast_to(np.asarray(offset if has_off else 0.0, np.float32).reshape(-1), (b,)))
    out = np.empty(v.shape, np.float32)
    with _LAUNCH:
        _kernels().value_curve(v, mmaps, n_iter, off, has_off, out)
    return out


def to_float(x: np.ndarray, scale: int) -> np.ndarray:
    """Integer samples (B, C, H, W) on 0..``scale``, any strides, as contiguous float32 in [0, 1]:
    ``x.astype(float32) * float32(1 / scale)``, in one parallel pass."""
    out = np.empty(x.shape, np.float32)
    with _LAUNCH:
        _kernels().to_float(x, _F(1.0 / scale), out)
    return out


def to_integer(y: np.ndarray, scale: int, out: np.ndarray, rows: slice, cols: slice) -> None:
    """Store float32 ``y`` (B, C, h, w) as ``rint(clip(y * scale, 0, scale))`` into ``out[:, rows, cols, :]``
    of the integer image ``out`` (B, H, W, C); ``rows`` and ``cols`` are slices with unit steps."""
    r0, c0 = rows.indices(out.shape[1])[0], cols.indices(out.shape[2])[0]
    with _LAUNCH:
        _kernels().to_integer(y, _F(scale), out, r0, c0)


def lerp_rows(
    cols: np.ndarray, i0: np.ndarray, i1: np.ndarray, wgt: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """Rows ``cols[..., i0, :] + (cols[..., i1, :] - cols[..., i0, :]) * wgt[:, None]`` of float32
    C-contiguous ``cols`` (B, C, hs, W), in one parallel pass; into ``out`` (B, C, len(i0), W)
    (returned; a new array if None)."""
    b, c, _, w = cols.shape
    dest = _output(out, (b, c, len(i0), w), cols)
    with _LAUNCH:
        _kernels().lerp_rows(cols, i0, i1, np.ascontiguousarray(wgt, dtype=np.float32), dest)
    return _deliver(out, dest)


def patches(x: np.ndarray, k: int, stride: int, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``zerodce.core.noise._patches`` of float32 C-contiguous ``x`` (C, H, W): its k x k patches
    every ``stride`` pixels, mixed by each row of ``weights`` (M, C), as float64 (M, N, k*k), and
    their gradient energies (M, N); new arrays."""
    kern = _kernels()
    nh, nw = (x.shape[1] - k) // stride + 1, (x.shape[2] - k) // stride + 1
    w = np.ascontiguousarray(weights, dtype=np.float32)
    p = np.empty((w.shape[0], nh * nw, k * k), np.float64)
    energy = np.empty((w.shape[0], nh * nw), np.float64)
    with _LAUNCH:
        kern.patches(x, k, stride, nw, w, p, energy)
    return p, energy


def area(x: np.ndarray, rows: tuple[np.ndarray, np.ndarray], cols: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """:func:`~zerodce.core.color.area_resize` of float32 C-contiguous ``x`` (B, C, H, W), its output bins'
    input ``rows`` and ``cols`` given as (starts, ends), in one pass (bin sums in float64); a new array."""
    (rs, re), (cs, ce) = rows, cols
    out = np.empty((*x.shape[:2], len(rs), len(cs)), np.float32)
    with _LAUNCH:
        _kernels().area(x, rs, re, cs, ce, out)
    return out
