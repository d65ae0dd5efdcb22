"""Box and guided filters on numpy images, and the gain-aware denoiser built from them.

The numpy twin of the filter half of :mod:`zerodce.adjust` (whose module docstring explains the
denoiser), and the home of its constants. Images are float32 arrays (B, C, H, W); the filters act
on the last two axes of any array.
"""

from __future__ import annotations

import numpy as np

from . import kernels
from ._bands import into
from .color import from_ycc, luma, to_ycc

__all__ = [
    "CHROMA_KNEE",
    "CHROMA_BOUND",
    "box",
    "guided_filter",
    "self_guided",
    "local_gain",
    "denoise_halo",
    "bound_change",
    "chroma_weight",
    "gain_aware_denoise",
]

# Chroma is halved where the input's local mean luma is CHROMA_KNEE * strength * sigma (README).
CHROMA_KNEE = 2.0
# A denoiser may move a pixel's chroma (Cb, Cr) by at most CHROMA_BOUND times the output's chroma
# noise std there (the input's, measured on Cb and Cr by chroma_noise_level, times the local gain):
# noise that large is rare (3 sigma: 0.3% of Gaussian draws), so a larger change would be averaging
# colour detail (grass blades, brick) into its neighbours' hue. Fixed a priori (the 3-sigma rule).
CHROMA_BOUND = 3.0
BOX_PIXELS = 32_768  # pixels of one band of rows :func:`box` filters at a time (its six buffers fit in L2)


def box(x: np.ndarray, r: int, out: np.ndarray | None = None) -> np.ndarray:
    """Mean over a (2r+1)^2 window, edges replicated, of every (H, W) plane of ``x`` (..., H, W).

    Separable, and run on bands of rows that stay in cache through both passes; each pass sums a
    window of k = 2r+1 values from partial sums of 1, 2, 4, ... values (about 2 log2(k) additions
    per pixel, where the running sum of k shifted copies takes k - 1). ``out`` may be ``x``: each
    band keeps the input rows its successor shares. ``r <= 0`` returns ``x`` (copied into ``out`` if given).

    Example:
        >>> box(np.array([[0.0, 0.0, 9.0]], np.float32), 1).tolist()  # rows replicated: 3 x (0+0+0, 0+0+9, 0+9+9) / 9
        [[0.0, 3.0, 6.0]]
    """
    if r <= 0:
        if out is None or out is x:
            return x
        np.copyto(out, x)
        return out
    dt = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    if out is None:
        out = np.empty(x.shape, dtype=dt)
    h, w = x.shape[-2:]
    k = 2 * r + 1
    band = min(h, max(k, BOX_PIXELS // (w + 2 * r)))  # rows per band; when not all, more than 2r
    rows = band + 2 * r
    pad = np.empty((rows, w + 2 * r), dt)  # new input rows, edge columns replicated
    hsum = np.empty((rows, w), dt)  # horizontal window sums of the band's rows and the 2r around them
    hbuf = (np.empty((rows, w + 2 * r), dt), np.empty((rows, w + 2 * r), dt))
    vbuf = (np.empty((rows, w), dt), np.empty((rows, w), dt))
    scale = dt.type(1.0 / (k * k))
    for index in np.ndindex(x.shape[:-2]):
        src, dst = x[index], out[index]
        for i0 in range(0, h, band):
            i1 = min(i0 + band, h)
            # Rows i0 - r .. i1 + r - 1 (clipped: replicated); all but the first band hold the
            # previous band's last 2r horizontal sums already, computed before it was written.
            lo = i0 - r if i0 == 0 else i0 + r
            held = 0 if i0 == 0 else 2 * r
            n = i1 + r - lo
            p = pad[:n]
            np.take(src, np.arange(lo, i1 + r), axis=0, out=p[:, r : r + w], mode="clip")
            p[:, :r] = p[:, r : r + 1]
            p[:, r + w :] = p[:, r + w - 1 : r + w]
            _window_sums(p, k, 1, hsum[held : held + n], hbuf)
            m = i1 - i0
            _window_sums(hsum[: m + 2 * r], k, 0, dst[i0:i1], vbuf)
            dst[i0:i1] *= scale
            hsum[: 2 * r] = hsum[m : m + 2 * r]
    return out


def _window_sums(a: np.ndarray, k: int, axis: int, out: np.ndarray, bufs: tuple[np.ndarray, np.ndarray]) -> None:
    """``out`` = sums of ``k`` (odd) consecutive entries of 2D ``a`` along ``axis`` (0 or 1).

    The window is cut into consecutive pieces whose lengths are the binary digits of ``k``, 1 first;
    a piece of length ``2p`` is the sum of two pieces of length ``p`` (``bufs`` ping-pong between
    lengths: a 5-window is ``a[i] + s4[i + 1]`` with ``s4 = s2 + s2 shifted by 2``, ``s2 = a + a shifted by 1``).
    """
    n = out.shape[axis]
    other = a.shape[1 - axis]
    bufs = tuple(b[:other] if axis == 1 else b[:, :other] for b in bufs)

    def part(arr: np.ndarray, start: int, length: int) -> np.ndarray:
        return arr[start : start + length] if axis == 0 else arr[:, start : start + length]

    s, p, offset, started = a, 1, 1, False
    while 2 * p <= k:
        length = s.shape[axis] - p
        nxt = part(bufs[p.bit_length() % 2], 0, length)
        np.add(part(s, 0, length), part(s, p, length), out=nxt)
        s, p = nxt, 2 * p
        if k & p:
            if started:
                out += part(s, offset, n)
            else:
                np.add(part(a, 0, n), part(s, offset, n), out=out)
                started = True
            offset += p
    if not started:  # k = 1
        np.copyto(out, part(a, 0, n))


def self_guided(
    i: np.ndarray,
    mean_i: np.ndarray,
    mean_ii: np.ndarray,
    eps: np.ndarray | float,
    r: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """He et al.'s guided filter of ``i`` (B, C, H, W) guided by itself, channel by channel, from
    the window means of ``i`` and ``i^2`` (radius ``r``); ``eps`` broadcasts (per pixel).

    Example:
        >>> i = np.array([[[[0.0, 1.0, 0.0]]]], np.float32)  # one row: windows of 3 x 3 (rows replicated)
        >>> m, mm = box(i, 1), box(i * i, 1)
        >>> [round(v, 3) for v in self_guided(i, m, mm, 0.0, 1).ravel().tolist()]  # eps 0: the input back
        [0.0, 1.0, 0.0]
    """
    out = np.empty(np.broadcast_shapes(i.shape, mean_i.shape), dtype=np.float32) if out is None else out
    return self_guided_inplace(i, np.array(mean_i, dtype=np.float32), np.array(mean_ii, dtype=np.float32), eps, r, out)


def self_guided_inplace(
    i: np.ndarray, mean_i: np.ndarray, mean_ii: np.ndarray, eps: np.ndarray | float, r: int, out: np.ndarray
) -> np.ndarray:
    """:func:`self_guided` into ``out``, overwriting ``mean_i`` and ``mean_ii`` (no other full-size buffer)."""
    var, a, b = mean_ii, mean_ii, mean_i  # names for what the two buffers hold in turn
    np.multiply(mean_i, mean_i, out=out)
    np.subtract(mean_ii, out, out=var)
    np.maximum(var, 0.0, out=var)
    np.add(var, eps, out=out)
    np.divide(var, out, out=a)  # a = var / (var + eps)
    np.multiply(a, mean_i, out=out)
    np.subtract(mean_i, out, out=b)  # b = mean_i - a mean_i
    box(a, r, out=a)
    box(b, r, out=b)
    np.multiply(a, i, out=out)
    out += b
    return out


def guided_filter(guide: np.ndarray, src: np.ndarray, r: int, eps: np.ndarray | float) -> np.ndarray:
    """He et al.'s guided filter, with a per-pixel (broadcastable) regulariser ``eps``.

    ``guide`` (B, 1, H, W) or, when ``guide is src``, any (B, C, H, W) filtered channel by channel
    (self-guided); output like ``src``. ``q = mean(a) I + mean(b)`` with ``a = cov(I, p) / (var(I)
    + eps)``, ``b = mean(p) - a mean(I)`` over (2r+1)^2 windows.

    Example:
        >>> flat = np.full((1, 1, 5, 5), 0.3, np.float32)
        >>> bool(np.allclose(guided_filter(flat, flat, 2, 1e-4), 0.3))  # a flat image is kept
        True
    """
    sq = np.multiply(guide, guide)
    mean_i = box(guide, r)
    if guide is src:  # self-guided: cov(I, p) = var(I), mean(p) = mean(I)
        return self_guided_inplace(guide, mean_i, box(sq, r, out=sq), eps, r, np.empty_like(mean_i))
    var_i = box(sq, r, out=sq)
    var_i -= mean_i * mean_i
    np.maximum(var_i, 0.0, out=var_i)
    mean_p = box(src, r)
    cov = box(guide * src, r)
    cov -= mean_i * mean_p
    a = cov / (var_i + eps)
    b = mean_p - a * mean_i
    out = box(a, r, out=a)
    out *= guide
    out += box(b, r, out=b)
    return out


def local_gain(mean_y: np.ndarray, mean_x: np.ndarray) -> np.ndarray:
    """The curves' local luma gain from window means of output and input luma (input floored at 1/255)."""
    return mean_y / np.maximum(mean_x, np.float32(1.0 / 255.0))


def denoise_halo(radius: int = 2) -> int:
    """Pixels of context one output pixel of :func:`gain_aware_denoise` depends on."""
    # chroma: eps (pointwise) is averaged over 2r, and the gain in eps is a box of r: 5r; rounded up.
    return 6 * radius


def bound_change(
    before: np.ndarray, after: np.ndarray, limit: np.ndarray | float, out: np.ndarray | None = None
) -> np.ndarray:
    """``after``, moved back to within ``limit`` of ``before`` (elementwise; ``limit`` broadcasts).

    Example:
        >>> f = lambda *v: np.array(v, np.float32)
        >>> bound_change(f(0.5, 0.5, 0.5), f(0.2, 0.45, 0.9), np.float32(0.1)).tolist()
        [0.4000000059604645, 0.44999998807907104, 0.6000000238418579]
    """
    d = np.subtract(after, before, out=out)
    np.maximum(d, -limit, out=d)
    np.minimum(d, limit, out=d)
    d += before
    return d


def chroma_weight(level: np.ndarray, knee: np.ndarray | float) -> np.ndarray:
    """Wiener-style chroma weight ``level^2 / (level^2 + knee^2)``; exactly 1 where ``knee`` is 0.

    ``level`` is the input's local mean luma, ``knee`` the level at which its colour is halved.

    Example:
        >>> [round(v, 4) for v in chroma_weight(np.array([0.0, 0.02, 0.5], np.float32), np.float32(0.02)).tolist()]
        [0.0, 0.5, 0.9984]
    """
    k2 = np.multiply(knee, knee, dtype=np.float32)
    t = np.multiply(level, level)
    t = np.add(t, k2, out=t if np.broadcast_shapes(t.shape, np.shape(k2)) == t.shape else None)
    np.maximum(t, np.float32(1e-20), out=t)
    np.divide(k2, t, out=t)
    np.subtract(np.float32(1.0), t, out=t)
    return t


def gain_aware_denoise(
    y: np.ndarray,
    x: np.ndarray,
    strength: float,
    sigma: np.ndarray,
    radius: int = 2,
    chroma_sigma: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Suppress the noise the curves amplified in ``y`` = curves(``x``); edges and colour kept.

    Args:
        y: enhanced images (B, 3, H, W) float32 in [0, 1].
        x: the inputs they were enhanced from (same shape).
        strength: multiplies the predicted noise level; 0 returns ``y`` unchanged.
        sigma: input noise standard deviation per image (B,), e.g. :func:`~zerodce.core.noise.noise_level` of ``x``.
        radius: luma window radius; chroma uses twice that.
        chroma_sigma: the input's chroma noise std (B,): if given, no pixel's chroma moves by more
            than :data:`CHROMA_BOUND` times it, times the local gain.
        out: float32 C-contiguous (B, 3, H, W) for the result (a band's reused buffer); it may be
            ``y``'s or ``x``'s (then the kernel's result is copied in).

    With numba installed (and ``ZERODCE_NO_NUMBA`` not 1), float32 C-contiguous inputs run as one
    fused kernel (:mod:`zerodce.core.kernels`), equal to this numpy code to float rounding.

    Returns:
        ``out``, or a new array (B, 3, H, W), clipped to [0, 1].

    Example:
        >>> y = np.full((1, 3, 8, 8), 0.4, np.float32)
        >>> bool(np.allclose(gain_aware_denoise(y, y / 4, 1.0, np.array([0.01])), y))  # flat stays flat
        True
    """
    if kernels.takes(y, x) and strength > 0:
        return kernels.denoise(y, x, strength, sigma, radius, chroma_sigma, out)
    return into(out, _gain_aware_denoise(y, x, strength, sigma, radius, chroma_sigma) if strength > 0 else y)


def _gain_aware_denoise(
    y: np.ndarray, x: np.ndarray, strength: float, sigma: np.ndarray, radius: int, chroma_sigma: np.ndarray | None
) -> np.ndarray:
    """:func:`gain_aware_denoise` in numpy (the reference the kernel is tested against)."""
    sig = np.asarray(sigma, dtype=np.float32).reshape(-1, 1, 1, 1)
    ycc = to_ycc(y)  # (B, 3, H, W); Y is the same Rec. 601 luma as luma()
    lum, chroma = ycc[:, :1], ycc[:, 1:]
    mean_y = box(lum, radius)
    lx = luma(x)
    box(lx, radius, out=lx)  # the input's local mean luma
    mean_yy = np.multiply(lum, lum)
    box(mean_yy, radius, out=mean_yy)
    gain = local_gain(mean_y, lx)  # (B, 1, H, W)
    eps = np.multiply(gain, np.float32(strength))
    eps *= sig
    np.square(eps, out=eps)
    eps += np.float32(1e-8)
    out = np.empty_like(ycc)
    self_guided_inplace(lum, mean_y, mean_yy, eps, radius, out[:, :1])
    del mean_y, mean_yy
    mean_c = box(chroma, 2 * radius)  # Cb and Cr, each self-guided over twice the window
    mean_cc = np.multiply(chroma, chroma)
    box(mean_cc, 2 * radius, out=mean_cc)
    out_c = self_guided_inplace(chroma, mean_c, mean_cc, eps, 2 * radius, out[:, 1:])
    del mean_c, mean_cc, eps
    if chroma_sigma is not None:
        gain *= np.float32(CHROMA_BOUND) * np.asarray(chroma_sigma, dtype=np.float32).reshape(-1, 1, 1, 1)
        bound_change(chroma, out_c, gain, out=out_c)
    out_c *= chroma_weight(lx, np.float32(CHROMA_KNEE * strength) * sig)
    from_ycc(out, out=ycc)
    return np.clip(ycc, np.float32(0.0), np.float32(1.0), out=ycc)
