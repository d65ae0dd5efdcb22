"""Enhance images: :func:`enhance` for one image, :func:`pipeline` for a loaded, reusable pipeline.

Torch-free. A *pipeline* is what enhances: the numpy/onnxruntime :class:`~zerodce.runtime.session.Session`
(the default on the CPU for the bundled models: no torch needed) or the PyTorch
:class:`~zerodce.torch_enhance.Enhancer` (GPU, bf16, other weights files, modules). Both take float32
(B, 3, H, W) arrays in [0, 1] (``run_float``) or integer samples (``run_integer``), with options
resolved by :class:`~zerodce.options.Options`; tests pin them to each other. :func:`enhance` adapts
numpy arrays, PIL images, tensors and file paths to that contract and returns the same kind, shape
and dtype it was given.

``zerodce.enhance.Enhancer`` is the PyTorch class, imported on first use (it needs torch).
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from .options import DEFAULT_MODEL, SESSION_FIELDS, Options
from .tiling import BYTES_PER_PIXEL, auto_tile, available_memory, interruptible

__all__ = [
    "enhance",
    "pipeline",
    "torch_free",
    "interruptible",
    "auto_tile",
    "available_memory",
    "BYTES_PER_PIXEL",
]

T = TypeVar("T")
Pipeline = Any  # a Session or a torch Enhancer: run_float, run_integer, options(), with_options(...)

_PIPELINES: dict[tuple, Pipeline] = {}
_PIPELINES_LOCK = threading.Lock()


def __getattr__(name: str) -> object:
    if name == "Enhancer":  # the PyTorch pipeline: imported (with torch) on first use only
        from .torch_enhance import Enhancer

        return Enhancer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def torch_free(options: Options) -> bool:
    """Whether ``options`` run on the torch-free runtime: the CPU, onnxruntime (or auto), fp32 or
    int8, a bundled model (whose graphs are shipped)."""
    from .options import BUNDLED_MODELS

    return (
        options.device == "cpu"
        and options.backend in ("auto", "onnxruntime")
        and options.precision in ("fp32", "int8")
        and options.model in BUNDLED_MODELS
    )


def _load(options: Options) -> Pipeline:
    from .options import BUNDLED_MODELS

    if options.model not in BUNDLED_MODELS and not Path(options.model).is_file():
        what = "no such weights file" if Path(options.model).suffix else "unknown model"
        names = ", ".join(BUNDLED_MODELS)
        raise ValueError(f"{what} {options.model!r}; choose {names}, or a path to a .safetensors file")
    if torch_free(options) and _session_available():
        from .runtime.session import Session

        return _probed(Session(options), options.model)
    if not torch_installed():
        from .errors import needs_torch

        raise RuntimeError(needs_torch(_needs_torch(options)))
    from .torch_enhance import Enhancer

    return _probed(Enhancer(options=options), options.model)


def _probed(pipe: Pipeline, model: str) -> Pipeline:
    """``pipe``, once it has enhanced a small grey ramp into something that is not NaN and not black.

    Weights that are finite but absurd (a file scaled by 1e30, a diverged training) pass every check
    of the file and turn each photo black or NaN without a word; this refuses them at load, once,
    before any photo is read. No trained model maps a mid-grey ramp to black: that takes ``A`` near -1
    at every pixel and iteration (``x -> x^2``, eight times: 0.9 becomes 2e-12).

    Raises:
        WeightsError: the model's output on the ramp is NaN/infinite, or black.
    """
    from .errors import WeightsError

    ramp = np.linspace(0.1, 0.9, 3 * 16 * 16, dtype=np.float32).reshape(1, 3, 16, 16)
    with np.errstate(all="ignore"):
        out = pipe.with_options(paper=True).run_float(ramp)
    if not np.isfinite(out).all():
        raise WeightsError(f"{model}: the model's output is NaN or infinite (broken weights, not a trained model)")
    if float(out.max()) < 1.0 / 255.0:
        raise WeightsError(f"{model}: the model turns a grey ramp black (broken weights, not a trained model)")
    return pipe


def _session_available() -> bool:
    try:
        return importlib.util.find_spec("zerodce.runtime.session") is not None
    except ModuleNotFoundError:
        return False


def _needs_torch(o: Options) -> str:
    if o.device != "cpu":
        return f"device {o.device!r}"
    if o.precision == "bf16":
        return "precision bf16"
    if o.backend == "torch":
        return "backend torch"
    return f"model {o.model!r} (a weights file; the light install runs the bundled models)"


def pipeline(options: Options) -> Pipeline:
    """The pipeline for ``options``: one loaded per session key (model, backend, precision, device,
    tile), kept for the process, and bound to ``options``' controls per call (``with_options``).

    Every surface (CLI, service, Ray, evaluate, :func:`enhance`) gets its pipeline here, so the
    loading rules and the cache are one. Thread-safe.
    """
    key = options.session_key()
    with _PIPELINES_LOCK:
        base = _PIPELINES.get(key)
        if base is None:
            base = _PIPELINES[key] = _load(Options(**dict(zip(SESSION_FIELDS, key, strict=True))))
    return base.with_options(options)


def _is_pipeline(obj: object) -> bool:
    return callable(getattr(obj, "run_integer", None)) and callable(getattr(obj, "with_options", None))


def _is_module(obj: object) -> bool:
    return callable(getattr(obj, "curve_maps", None))


def _get_pipeline(model: object, device: str, options: dict[str, object] | None = None) -> Pipeline:
    options = {k: v for k, v in (options or {}).items() if v is not None}
    if _is_pipeline(model):  # per-call controls bind to the loaded pipeline (its session stays)
        return model.with_options(**options) if options else model
    if _is_module(model):  # a loaded torch module: the PyTorch pipeline
        from .torch_enhance import Enhancer

        return Enhancer(model, device, **options)  # type: ignore[arg-type]
    return pipeline(Options(model=str(model), device=str(device), **options))  # type: ignore[arg-type]


def _enhance_hwc(rgb: np.ndarray, pipe: Pipeline) -> np.ndarray:
    """float32 (H, W, 3) in [0, 1] -> float32 (H, W, 3)."""
    return pipe.run_float(np.ascontiguousarray(rgb.transpose(2, 0, 1))[None])[0].transpose(1, 2, 0)


def _to_unit(a: np.ndarray) -> tuple[np.ndarray, float | None]:
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0, 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0, 65535.0
    if np.issubdtype(a.dtype, np.floating):
        return np.clip(np.nan_to_num(a, nan=0.0), 0.0, 1.0).astype(np.float32), None
    raise TypeError(f"unsupported array dtype {a.dtype}; expected uint8, uint16 or float in [0, 1]")


def _from_unit(a: np.ndarray, scale: float | None, dtype: np.dtype) -> np.ndarray:
    if scale is None:
        return a.astype(dtype)
    return np.clip(np.rint(a * scale), 0, scale).astype(dtype)


def _enhance_array(a: np.ndarray, enhancer: Pipeline) -> np.ndarray:
    if a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (1, 2)):
        # Grey (optionally with alpha): enhance as three equal channels, return their mean.
        grey = a if a.ndim == 2 else a[..., 0]
        g, scale = _to_unit(grey)
        y = _enhance_hwc(np.repeat(g[..., None], 3, axis=2), enhancer).mean(axis=2)
        out = _from_unit(y, scale, a.dtype)
        if a.ndim == 3:
            out = np.concatenate([out[..., None], a[..., 1:]], axis=2)
        return out
    if a.ndim == 3 and a.shape[2] in (3, 4) and a.dtype in (np.uint8, np.uint16):
        # Integer samples: no float copy on the numpy side; quantised tile by tile.
        scale = 255 if a.dtype == np.uint8 else 65535
        y = enhancer.run_integer(a[..., :3].transpose(2, 0, 1)[None], scale)
        out = y[0].transpose(1, 2, 0)
        if a.shape[2] == 4:
            out = np.concatenate([out, a[..., 3:]], axis=2)  # alpha untouched
        return out
    if a.ndim == 3 and a.shape[2] in (3, 4):
        rgb, scale = _to_unit(a[..., :3])
        out = _from_unit(_enhance_hwc(rgb, enhancer), scale, a.dtype)
        if a.shape[2] == 4:
            out = np.concatenate([out, a[..., 3:]], axis=2)  # alpha untouched
        return out
    raise ValueError(f"unsupported array shape {a.shape}; expected HxW, HxWx1, HxWx2, HxWx3 or HxWx4")


_PIL_RGB_MODES = {"RGB", "RGBA", "L", "LA", "I", "I;16", "I;16B", "I;16L"}


def _enhance_pil(im: Image.Image, enhancer: Pipeline) -> Image.Image:
    mode = im.mode
    if mode not in _PIL_RGB_MODES:
        has_alpha = mode in ("P", "PA") and ("transparency" in im.info or mode == "PA") or mode == "RGBa"
        im = im.convert("RGBA" if has_alpha else "RGB")
        mode = im.mode
    if mode.startswith("I;16"):
        out = _enhance_array(np.asarray(im).astype(np.uint16), enhancer)
        return Image.fromarray(out)  # native-endian 16-bit grey ("I;16")
    if mode == "I":  # 32-bit integer grey, in practice 16-bit data: enhanced on the 0..65535 scale
        arr = np.clip(np.asarray(im), 0, 65535).astype(np.uint16)
        return Image.fromarray(_enhance_array(arr, enhancer).astype(np.int32), "I")
    out = _enhance_array(np.asarray(im), enhancer)
    return Image.fromarray(out, mode)


def enhance(
    image: T,
    model: str | Path | Any | None = DEFAULT_MODEL,
    *,
    device: str = "cpu",
    preset: str | None = None,
    strength: float | None = None,
    **options: object,
) -> T:
    """Brighten a low-light image with Zero-DCE; return the same kind, shape and dtype.

    Args:
        image: a numpy array (uint8, uint16, or float in [0, 1]; HxW grey, HxWx3 RGB, HxWx4 RGBA
            with alpha kept untouched), a PIL image, a float tensor (B, 3, H, W) or (3, H, W), or
            the path of an image file (read with the pixel limit and EXIF orientation of
            :func:`zerodce.files.io.read_image`; a PIL image is returned, its metadata in ``info``).
        model: bundled name, weights path, loaded module, or a pipeline (:func:`pipeline`), e.g. a
            :class:`~zerodce.runtime.session.Session`; None: the default model.
        device: where to compute.
        preset, strength, options: the controls and session options of :class:`~zerodce.options.Options`
            (``exposure``, ``metering``, ``balance``, ``denoise``, ``denoiser``, ``backend``, ``precision``,
            ``tile``, ``paper``); pipelines are loaded once per model and session options.

    Returns:
        The enhanced image, of the input's type, shape and dtype (a PIL image for a path).

    Example:
        >>> out = enhance(np.full((3, 5), 0.1, dtype=np.float32))
        >>> out.shape, out.dtype, bool(out.min() > 0.1)
        ((3, 5), dtype('float32'), True)
        >>> half = enhance(np.full((3, 5), 0.1, dtype=np.float32), strength=0.5)
        >>> bool(0.1 < half.min() and half.max() < out.min())
        True
    """
    if isinstance(image, (str, Path)):
        from .files.io import read_image

        image = read_image(Path(image))  # type: ignore[assignment]
    if model is None:  # e.g. enhance(img, session) written before a session exists
        model = DEFAULT_MODEL
    pipe = _get_pipeline(model, str(device), {"preset": preset, "strength": strength, **options})
    if type(image).__module__.startswith("torch"):  # a tensor: through numpy, back to its device and dtype
        import torch

        t: torch.Tensor = image  # type: ignore[assignment]
        if not t.is_floating_point():
            raise TypeError(f"expected a floating-point tensor in [0, 1], got {t.dtype}")
        batch = t[None] if t.dim() == 3 else t
        if batch.dim() != 4 or batch.shape[1] != 3:
            raise ValueError(f"expected a tensor of shape (B, 3, H, W) or (3, H, W), got {tuple(t.shape)}")
        x = batch.detach().float().cpu().numpy()
        y = torch.from_numpy(pipe.run_float(np.nan_to_num(x, nan=0.0).clip(0.0, 1.0)))
        y = y.to(t.device, t.dtype)
        return y[0] if t.dim() == 3 else y  # type: ignore[return-value]
    if isinstance(image, Image.Image):
        return _enhance_pil(image, pipe)  # type: ignore[return-value]
    if isinstance(image, np.ndarray):
        return _enhance_array(image, pipe)  # type: ignore[return-value]
    raise TypeError(
        f"unsupported image type {type(image).__name__}; expected numpy array, PIL image, tensor or file path"
    )
