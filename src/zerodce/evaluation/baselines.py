"""Enhancement methods for evaluation: classical baselines and models, behind one signature.

Every method maps a uint8 RGB array (H, W, 3) to a uint8 RGB array of the same shape, and is
named by a spec string (``zerodce evaluate --method SPEC``):

- ``identity``: the input unchanged.
- ``gamma:G``: ``255 (x / 255)^G`` per channel (``gamma:0.4`` brightens).
- ``gamma-mean:L``: per image, the gamma ``G`` whose output has mean luma ``L`` (bisection);
  a brightness-matched baseline that uses no reference image.
- ``he``: global histogram equalisation of the luma (JPEG YCbCr Y), chroma kept.
- ``clahe``: contrast-limited adaptive histogram equalisation of the luma (scikit-image,
  ``clip_limit=0.01``, default 1/8-image tiles), chroma kept.
- ``bilateral``: OpenCV's ``bilateralFilter(d=9, sigmaColor=40, sigmaSpace=9)`` (``bilateral:D,SC,SS``
  for other values); a post-filter, meant for chains.
- ``model:NAME_OR_PATH[,KEY=VALUE...]``: a bundled model (``model:zerodce``) or weights file,
  including the authors' ``.pth`` (converted on load, never unpickled with code), with any
  :class:`~zerodce.options.Options` given as ``key=value`` (``preset``, ``strength``, ``exposure``,
  ``metering``, ``balance``, ``denoise``, ``denoiser``, ``backend``, ``precision``, ``tile``,
  ``device``; the preset's values when not given), parsed and checked as the CLI's and the
  service's (:func:`model_options`); ``model:NAME,paper`` is the paper's method, nothing added.
- ``A+B+...``: a chain, applied left to right, e.g. ``model:authors.pth+bilateral+gamma-mean:0.45``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps

if TYPE_CHECKING:
    from ..options import Options

__all__ = ["Method", "parse_method", "model_options", "DEFAULT_BASELINES", "gamma", "gamma_to_mean", "hist_eq", "clahe",
           "bilateral"]  # fmt: skip

Method = Callable[[np.ndarray], np.ndarray]
DEFAULT_BASELINES = ("identity", "gamma:0.4", "gamma-mean:0.45", "he", "clahe")


def _to8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def gamma(rgb: np.ndarray, g: float) -> np.ndarray:
    """Global gamma on [0, 1] values."""
    return _to8((rgb.astype(np.float64) / 255.0) ** g)


def gamma_to_mean(rgb: np.ndarray, level: float, iters: int = 40) -> np.ndarray:
    """The gamma that brings this image's mean luma to ``level`` (monotone, so bisection)."""
    x = rgb.astype(np.float64) / 255.0
    weights = np.array([0.299, 0.587, 0.114])
    lo, hi = np.log(0.02), np.log(50.0)  # search log-gamma; the mean luma falls as gamma grows
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if float(np.mean((x ** np.exp(mid)) @ weights)) > level:
            lo = mid
        else:
            hi = mid
    return _to8(x ** np.exp(0.5 * (lo + hi)))


def _on_luma(rgb: np.ndarray, fn: Callable[[Image.Image], Image.Image]) -> np.ndarray:
    ycc = Image.fromarray(rgb, "RGB").convert("YCbCr")
    y, cb, cr = ycc.split()
    return np.asarray(Image.merge("YCbCr", (fn(y), cb, cr)).convert("RGB"))


def hist_eq(rgb: np.ndarray) -> np.ndarray:
    """Global histogram equalisation of the luma."""
    return _on_luma(rgb, ImageOps.equalize)


def clahe(rgb: np.ndarray, clip_limit: float = 0.01) -> np.ndarray:
    """CLAHE of the luma (scikit-image)."""
    from skimage.exposure import equalize_adapthist

    def fn(y: Image.Image) -> Image.Image:
        out = equalize_adapthist(np.asarray(y), clip_limit=clip_limit)
        return Image.fromarray(_to8(out), "L")

    return _on_luma(rgb, fn)


def bilateral(rgb: np.ndarray, d: int = 9, sigma_color: float = 40.0, sigma_space: float = 9.0) -> np.ndarray:
    """OpenCV's bilateral filter on uint8 RGB (extra ``zerodce[eval]``)."""
    import cv2

    return cv2.bilateralFilter(np.ascontiguousarray(rgb), d, sigma_color, sigma_space)


def model_options(spec: str, device: str = "cpu") -> Options:
    """The :class:`~zerodce.options.Options` of a ``model:`` spec's argument: ``NAME_OR_PATH[,key=value...]``.

    The keys are the options' names (and ``paper`` alone means ``paper=true``), parsed by
    :meth:`Options.parse <zerodce.options.Options.parse>`: the names, values and rules of the CLI
    and the service. ``device`` is ``--device``'s, unless the spec gives one.

    Example:
        >>> o = model_options("zerodce,preset=night,strength=0.5,tile=none")
        >>> o.model, o.preset, o.strength, o.tile
        ('zerodce', 'night', 0.5, None)
        >>> model_options("zerodce,vivid=2")
        Traceback (most recent call last):
        ...
        ValueError: model:zerodce,vivid=2: unknown option(s) vivid; known: backend, balance, denoise, ...
    """
    from ..options import Options

    name, *opts = spec.split(",")
    given: dict[str, str] = {"model": name, "device": device}
    seen: set[str] = set()
    for opt in opts:
        key, eq, value = opt.partition("=")
        if not eq and key == "paper":
            value = "true"
        elif not eq:
            raise ValueError(f"model:{spec}: {opt!r} is not key=value (only paper stands alone)")
        if key == "model":
            raise ValueError(f"model:{spec}: the model is the spec's name ({name!r}), not an option")
        if key in seen:
            raise ValueError(f"model:{spec}: {key} given twice")
        seen.add(key)
        given[key] = value
    try:
        return Options.parse(given)
    except ValueError as exc:
        raise ValueError(f"model:{spec}: {exc}") from None


def _model(spec: str, device: str) -> Method:
    from ..enhance import enhance, pipeline

    enhancer = pipeline(model_options(spec, device))
    return lambda rgb: enhance(rgb, enhancer)


def _chain(methods: list[Method]) -> Method:
    def run(rgb: np.ndarray) -> np.ndarray:
        for m in methods:
            rgb = m(rgb)
        return rgb

    return run


def parse_method(spec: str, device: str = "cpu") -> Method:
    """Build the method a spec string names (see the module docstring)."""
    if "+" in spec:
        return _chain([parse_method(part, device) for part in spec.split("+")])
    name, _, arg = spec.partition(":")
    try:
        if name == "identity" and not arg:
            return lambda rgb: rgb.copy()
        if name == "gamma":
            g = float(arg)
            return lambda rgb: gamma(rgb, g)
        if name == "gamma-mean":
            level = float(arg or 0.45)
            return lambda rgb: gamma_to_mean(rgb, level)
        if name == "he" and not arg:
            return hist_eq
        if name == "bilateral":
            d, sc, ss = (float(v) for v in arg.split(",")) if arg else (9, 40.0, 9.0)
            return lambda rgb: bilateral(rgb, int(d), sc, ss)
        if name == "clahe":
            limit = float(arg) if arg else 0.01
            return lambda rgb: clahe(rgb, limit)
    except ValueError:
        raise ValueError(f"bad method parameter in {spec!r}") from None
    if name == "model" and arg:
        try:
            return _model(arg, device)
        except RuntimeError as exc:  # e.g. needs PyTorch, which the light install lacks: one line
            raise ValueError(f"{spec}: {exc}") from None
    raise ValueError(
        f"unknown method {spec!r}; expected identity, gamma:G, gamma-mean:L, he, clahe, bilateral, "
        "model:PATH or a chain A+B"
    )
