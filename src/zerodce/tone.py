"""Hue-safe controls: the model's curves as a luminance gain, exposure, strength and cast correction.

The paper applies its curves to each colour channel separately. That is harmless while the curves
brighten gently, but per-channel curves change the ratios between channels, and pushed hard they
rotate hue: curve parameters near -1 (asked to darken) give ``x^256`` per channel, which crushes the
weaker channels of a sunset sky into green and red bands. Every control here therefore acts on one
quantity per pixel, its HSV *value* ``v = max(R, G, B)``, and scales the three channels by one gain:

    ``out = x * gain``,   ``gain = f(v) / v``

Scaling a pixel's three channels by one factor keeps its HSV hue and saturation exactly (a raw
editor's exposure slider and LIME's illumination map work the same way), and since ``f`` maps
[0, 1] into [0, 1], ``v * gain <= 1``: nothing clips, so nothing is rotated by clipping either.

**The model's tone** (:func:`curve_value`): the n curves are applied to ``v`` with, at each step,
the mean of the three channel maps, ``LE_n(v) = LE_{n-1}(v) + mean_c(A_n) LE_{n-1}(v) (1 - LE_{n-1}(v))``.

**One exposure scalar** ``u`` per image (:func:`value_gain`) walks through every brightness the
controls can give, monotonically: ``u < 0`` darkens below the input by ``-u`` stops in linear light
(a camera's exposure compensation: ``v_lin * 2^u``), ``u = 0`` is the input, ``0 < u <= 1`` the
model's gain raised to ``u`` (``gain^u``: strength turns the effect down in the log domain, so half
strength is half the exposure change in stops), ``u = 1`` the model, and ``1 < u <= 3`` the curves
with ``u - 1`` added to every curve parameter (brighter, highlights
rolling off). :func:`solve_exposure` finds ``u`` for a requested level by bisection.

**The model's colour, without its hue shifts** (:func:`curve_saturation`): the per-channel curves
also change saturation (they lift weak channels more, which mutes colour noise in dark regions).
That part is kept: the output is moved towards grey of its own luma by the share ``k`` (0..1) that
the per-channel curves' chroma has along the hue-safe output's chroma (Rec. 601 CbCr), at the same
exposure. Moving a pixel towards grey of its own luma changes neither its HSV hue nor its luma,
and the component of the per-channel chroma that would turn the hue is dropped.

**Cast correction** (:func:`cast_gains`): a von Kries diagonal gain in linear light towards the
grey-world neutral, raised to ``balance`` and bounded so that the strongest channel gain is at
most ``MAX_CAST_RATIO`` times the weakest. A bounded gain can only take part of a cast away; it
cannot turn the orange of a sodium lamp or the gold of a floodlit tower into its complement, as
full grey-world correction of a scene lit in one colour does.

**Do no harm** (:func:`auto_strength`): a photo that is already exposed well is left nearly
unchanged. Its *key* (Reinhard et al. 2002: the log-average of the linear luminance, which a few
lamps or a bright sky do not dominate) is compared with photographic middle grey (18%): at two
stops under or darker the effect is full, from half a stop under it is none (a camera's own
exposure tolerance), smooth (cubic) between. Presets also never darken a photo.
"""

from __future__ import annotations

import torch

from .adjust import LUMINANCE_709, Metering, linear_to_srgb, luma, metered, srgb_to_linear, thumbnail
from .core.tone import AUTO_FULL, AUTO_NONE, MAX_CAST_RATIO, MIDDLE_GREY, U_RANGE, V_FLOOR
from .curves import apply_curves, check_map_channels, le_curve

__all__ = [
    "value",
    "mean_maps",
    "curve_value",
    "value_gain",
    "apply_gain",
    "curve_saturation",
    "solve_exposure",
    "cast_gains",
    "apply_cast",
    "auto_strength",
    "key",
    "MAX_CAST_RATIO",
    "U_RANGE",
]

# The constants (MAX_CAST_RATIO, U_RANGE, V_FLOOR, AUTO_FULL, AUTO_NONE, MIDDLE_GREY) are defined in
# zerodce.core.tone, the torch-free twin of this module.


def value(x: torch.Tensor) -> torch.Tensor:
    """HSV value ``max(R, G, B)`` of (B, 3, H, W) -> (B, 1, H, W)."""
    return x.amax(dim=1, keepdim=True)


def mean_maps(maps: torch.Tensor, n_iter: int) -> torch.Tensor:
    """The mean of each iteration's three channel maps: (B, 3n, H, W) -> (B, n, H, W); (B, 3, H, W)
    (one map re-used, Zero-DCE++) -> (B, 1, H, W)."""
    c = check_map_channels(maps.shape[1], n_iter)
    b, _, h, w = maps.shape
    return maps.view(b, c // 3, 3, h, w).mean(dim=2)


def curve_value(v: torch.Tensor, mmaps: torch.Tensor, n_iter: int, offset: torch.Tensor | None = None) -> torch.Tensor:
    """The curves on the value channel: ``v`` (B, 1, H, W) through ``n_iter`` LE steps with the
    channel-mean maps ``mmaps`` (B, n or 1, H, W), plus an optional offset (B,) on every parameter."""
    for n in range(n_iter):
        a = mmaps[:, n : n + 1] if mmaps.shape[1] > 1 else mmaps
        if offset is not None:
            a = (a + offset.view(-1, 1, 1, 1)).clamp(-1.0, 1.0)
        v = le_curve(v, a)
    return v


def value_gain(v: torch.Tensor, mmaps: torch.Tensor, n_iter: int, u: torch.Tensor) -> torch.Tensor:
    """The gain (B, 1, H, W) that brings each pixel's value ``v`` to exposure ``u`` (B,) (module docstring).

    Example:
        >>> v = torch.full((1, 1, 1, 1), 0.25)
        >>> m = torch.full((1, 1, 1, 1), 0.5)  # one step: 0.25 + 0.5 * 0.25 * 0.75 = 0.34375
        >>> [round(float(v * value_gain(v, m, 1, torch.tensor([u]))), 5) for u in (0.0, 1.0)]
        [0.25, 0.34375]
        >>> from zerodce.adjust import srgb_to_linear  # one stop darker halves the linear light
        >>> round(float(srgb_to_linear(v * value_gain(v, m, 1, torch.tensor([-1.0]))) / srgb_to_linear(v)), 4)
        0.5
    """
    vf = v.clamp_min(V_FLOOR)
    uu = u.view(-1, 1, 1, 1).to(v)
    model = curve_value(vf, mmaps, n_iter) / vf
    gain = model.clamp_min(1e-6) ** uu.clamp(0.0, 1.0)  # 0 < u <= 1 (u = 0: gain 1)
    if bool((uu > 1).any()):
        brighter = curve_value(vf, mmaps, n_iter, (uu - 1).clamp(0.0, 2.0).flatten()) / vf
        gain = torch.where(uu > 1, brighter, gain)
    if bool((uu < 0).any()):
        darker = linear_to_srgb(srgb_to_linear(vf) * torch.exp2(uu.clamp(max=0.0))) / vf  # -u stops
        gain = torch.where(uu < 0, darker, gain)
    return gain


def apply_gain(x: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """``x * gain``, with the gain capped so that no channel passes 1 (hue and saturation kept)."""
    return x * torch.minimum(gain, 1.0 / value(x).clamp_min(V_FLOOR))


def curve_saturation(
    x: torch.Tensor, maps: torch.Tensor, n_iter: int, y: torch.Tensor, u: torch.Tensor
) -> torch.Tensor:
    """``y`` = the hue-safe output of ``x`` at exposure ``u`` (B,), desaturated as far as the
    per-channel curves ``maps`` would desaturate it (module docstring); hue and luma of ``y`` kept.

    Example:
        >>> x = torch.tensor([0.2, 0.1, 0.05]).view(1, 3, 1, 1)   # a dark orange
        >>> maps = torch.full((1, 24, 1, 1), 0.6)                 # per-channel curves lift blue most
        >>> y = apply_gain(x, value_gain(value(x), mean_maps(maps, 8), 8, torch.tensor([1.0])))
        >>> out = curve_saturation(x, maps, 8, y, torch.tensor([1.0]))
        >>> spread = lambda t: t.amax(1) - t.amin(1)
        >>> bool(luma(out).sub(luma(y)).abs().max() < 1e-6), bool((spread(out) < spread(y)).all())
        (True, True)
    """
    vf = value(x).clamp_min(V_FLOOR)
    xf = x.clamp_min(V_FLOOR)
    g1 = curve_value(vf, mean_maps(maps, n_iter), n_iter) / vf  # the model's value gain (u = 1)
    rel = apply_curves(xf, maps, n_iter) / xf / g1  # per-channel gain relative to the common one
    w = u.view(-1, 1, 1, 1).to(x).clamp(0.0, 1.0)
    yp = y * rel.clamp_min(1e-6) ** w  # the per-channel curves' colour at y's exposure
    lum_y, lum_p = luma(y), luma(yp)
    cb, cr = 0.5 / (1 - 0.114), 0.5 / (1 - 0.299)  # Rec. 601 CbCr = these times (B - Y), (R - Y)
    dyb, dyr = y[:, 2:3] - lum_y, y[:, 0:1] - lum_y
    dpb, dpr = yp[:, 2:3] - lum_p, yp[:, 0:1] - lum_p
    dot = cb * cb * dyb * dpb + cr * cr * dyr * dpr
    norm = cb * cb * dyb * dyb + cr * cr * dyr * dyr
    k = (dot / norm.clamp_min(1e-12)).clamp(0.0, 1.0)
    return lum_y + k * (y - lum_y)


@torch.no_grad()
def solve_exposure(
    x: torch.Tensor,
    mmaps: torch.Tensor,
    n_iter: int,
    target: torch.Tensor,
    metering: Metering = "mean",
    lo: float = U_RANGE[0],
    hi: float = U_RANGE[1],
    iters: int = 18,
) -> torch.Tensor:
    """The exposure scalar ``u`` (B,) in ``[lo, hi]`` whose output meets ``target`` (B,) as ``metering``
    measures it; the nearest end when the target is out of reach. Run on a thumbnail.

    Example:
        >>> x = torch.full((1, 3, 4, 4), 0.1)
        >>> m = torch.full((1, 8, 4, 4), 0.3)
        >>> u = solve_exposure(x, m, 8, torch.tensor([0.3]))
        >>> round(float(metered(apply_gain(x, value_gain(value(x), m, 8, u)))), 3)
        0.3
    """
    v = value(x)
    b = x.shape[0]
    lo_t = torch.full((b,), float(lo), device=x.device)
    hi_t = torch.full((b,), float(hi), device=x.device)
    for _ in range(iters):
        mid = 0.5 * (lo_t + hi_t)
        got = metered(apply_gain(x, value_gain(v, mmaps, n_iter, mid)), metering)
        bright = got > target
        hi_t = torch.where(bright, mid, hi_t)
        lo_t = torch.where(bright, lo_t, mid)
    return 0.5 * (lo_t + hi_t)


def cast_gains(y: torch.Tensor, balance: float | torch.Tensor, max_ratio: float = MAX_CAST_RATIO) -> torch.Tensor:
    """Linear-light channel gains (B, 3) that take ``balance`` (0..1, or one per image (B,)) of the
    grey-world cast of ``y`` away, bounded to a ``max_ratio`` spread and normalised to keep the mean
    luminance.

    Example:
        >>> y = torch.stack([torch.full((4, 4), v) for v in (0.6, 0.5, 0.4)])[None]  # warm grey
        >>> g = cast_gains(y, 1.0)
        >>> round(float(g.max() / g.min()), 4), bool(g[0, 2] > 1 > g[0, 0])
        (1.25, True)
    """
    lin = srgb_to_linear(y.clamp(0.0, 1.0)).mean(dim=(2, 3))  # (B, 3) channel means in linear light
    w = lin.new_tensor(LUMINANCE_709)
    grey = (lin * w).sum(1, keepdim=True)
    k = balance.view(-1, 1).to(lin) if isinstance(balance, torch.Tensor) else balance
    log_g = k * (grey.clamp_min(1e-6).log() - lin.clamp_min(1e-6).log())  # (B, 3)
    # Bound the spread symmetrically about its middle, then keep the mean luminance.
    mid = 0.5 * (log_g.amax(1, keepdim=True) + log_g.amin(1, keepdim=True))
    half = 0.5 * torch.log(torch.tensor(max_ratio))
    g = (mid + (log_g - mid).clamp(-half, half)).exp()
    return g / ((lin * g * w).sum(1, keepdim=True) / grey.clamp_min(1e-12)).clamp_min(1e-6)


def apply_cast(y: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """Channel gains (B, 3) applied in linear light; a pixel pushed past 1 is scaled back as a whole."""
    lin = srgb_to_linear(y.clamp(0.0, 1.0)) * gains.view(-1, 3, 1, 1)
    lin = lin / value(lin).clamp_min(1.0)  # hue-safe: the brightest channel at most 1
    return linear_to_srgb(lin)


def key(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """The key (B,) of images (B, 3, H, W): log-average linear luminance (Reinhard et al. 2002)."""
    lum = (srgb_to_linear(x.clamp(0.0, 1.0)) * x.new_tensor(LUMINANCE_709).view(1, 3, 1, 1)).sum(1)
    return torch.exp(torch.log(lum + eps).mean(dim=(1, 2)))


def auto_strength(x: torch.Tensor, full: float = AUTO_FULL, none: float = AUTO_NONE) -> torch.Tensor:
    """The do-no-harm factor (B,): 1 for inputs whose key is ``full`` stops from middle grey or
    darker, 0 from ``none`` stops, smooth (cubic) between (module docstring).

    Example:
        >>> from zerodce.adjust import linear_to_srgb
        >>> grey = lambda stops: torch.full((1, 3, 8, 8), float(linear_to_srgb(torch.tensor(0.18 * 2**stops))))
        >>> [round(float(auto_strength(grey(s))), 2) for s in (-4, -2, -1.25, -0.5, 1)]  # eps: 0.48, not 0.5
        [1.0, 1.0, 0.48, 0.0, 0.0]
    """
    stops = torch.log2(key(thumbnail(x)) / MIDDLE_GREY)
    t = ((none - stops) / (none - full)).clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)
