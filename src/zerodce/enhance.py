"""The one inference contract: :class:`Enhancer` and the convenience function :func:`enhance`.

Contract (everything that enhances calls it: CLI, Python API, and later service, video, Ray):
a float tensor (B, 3, H, W) with values in [0, 1] goes in; a tensor of the same shape, dtype
and device comes out, clamped to [0, 1], computed under ``torch.inference_mode()``. Tiling,
device and memory format are the enhancer's concern. :func:`enhance` adapts numpy arrays, PIL
images and tensors to that contract and returns the same kind, shape and dtype it was given.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
import torch
from PIL import Image
from torch import nn

from .curves import apply_curves
from .weights import DEFAULT_MODEL, load_model

__all__ = ["Enhancer", "enhance", "receptive_radius"]

TileArg = int | Literal["auto"] | None
T = TypeVar("T")

# Above this many pixels per image the default ("auto") processes DCE-Net in tiles: its
# activations take about 1 KB per pixel, so an untiled 12 MP photo needs ~12 GB.
AUTO_TILE_PIXELS = 1536 * 1536
AUTO_TILE = 1024


def receptive_radius(model: nn.Module) -> int:
    """Pixels on each side that influence one output pixel: 7 chained 3x3 convolutions -> 7."""
    return 7


class Enhancer:
    """Apply a curve-estimation model to image tensors, exactly and in bounded memory.

    Args:
        model: a bundled model name (``"zerodce"``), a weights path, or a loaded module.
        device: torch device for the computation (``"cpu"``, ``"cuda"``).
        tile: tile side in pixels for large images, ``None`` for never, ``"auto"`` (default) to
            tile images above ~2.4 MP. Tiles overlap by the receptive radius, so the result
            equals the untiled one up to float rounding.

    Example:
        >>> enh = Enhancer("zerodce")
        >>> x = torch.rand(2, 3, 16, 20) * 0.2
        >>> y = enh(x)
        >>> y.shape == x.shape and bool((y >= x - 1e-6).float().mean() > 0.9)
        True
    """

    def __init__(
        self, model: str | Path | nn.Module = DEFAULT_MODEL, device: str | torch.device = "cpu", tile: TileArg = "auto"
    ) -> None:
        self.device = torch.device(device)
        net = model if isinstance(model, nn.Module) else load_model(model)
        self.model = net.to(self.device).eval().to(memory_format=torch.channels_last)
        self.config = self.model.config
        if tile is not None and tile != "auto" and (not isinstance(tile, int) or tile < 16):
            raise ValueError(f"tile must be None, 'auto' or an integer >= 16, got {tile!r}")
        self.tile = tile

    def _tile_for(self, h: int, w: int) -> int | None:
        if self.tile is None:
            return None
        if self.tile == "auto":
            return AUTO_TILE if h * w > AUTO_TILE_PIXELS else None
        return self.tile if max(h, w) > self.tile else None

    def _whole(self, x: torch.Tensor) -> torch.Tensor:
        a = self.model.curve_maps(x)
        return apply_curves(x.clone(), a, self.config.n_iter, inplace=True)

    def _tiled(self, x: torch.Tensor, tile: int) -> torch.Tensor:
        _, _, h, w = x.shape
        out = torch.empty_like(x)
        global_maps = None
        if self.config.arch == "dcenet++" and self.config.scale > 1:
            global_maps = self.model.curve_maps(x)  # estimated at 1/scale: small even for huge inputs
        r = receptive_radius(self.model)
        for y0 in range(0, h, tile):
            for x0 in range(0, w, tile):
                y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
                if global_maps is not None:
                    a = global_maps[..., y0:y1, x0:x1]
                else:
                    # Halo of r pixels of real image around the tile: inner pixels see exactly
                    # what they would see in the whole image (zero padding only at true borders).
                    hy0, hx0, hy1, hx1 = max(y0 - r, 0), max(x0 - r, 0), min(y1 + r, h), min(x1 + r, w)
                    region = x[..., hy0:hy1, hx0:hx1].contiguous(memory_format=torch.channels_last)
                    a = self.model.curve_maps(region)[..., y0 - hy0 : y1 - hy0, x0 - hx0 : x1 - hx0]
                out[..., y0:y1, x0:x1] = apply_curves(x[..., y0:y1, x0:x1].clone(), a, self.config.n_iter, inplace=True)
        return out

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Enhance a float batch (B, 3, H, W) in [0, 1]; same shape, dtype and device out."""
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"expected a tensor of shape (B, 3, H, W), got {shape}")
        if not x.is_floating_point():
            raise TypeError(f"expected a floating-point tensor in [0, 1], got {x.dtype}")
        if x.shape[0] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
            raise ValueError(f"empty image tensor {tuple(x.shape)}")
        src_dtype, src_device = x.dtype, x.device
        xf = torch.nan_to_num(x.to(self.device, torch.float32), nan=0.0).clamp_(0.0, 1.0)
        xf = xf.contiguous(memory_format=torch.channels_last)
        tile = self._tile_for(x.shape[2], x.shape[3])
        y = self._tiled(xf, tile) if tile else self._whole(xf)
        return y.clamp_(0.0, 1.0).to(src_device, src_dtype).contiguous()


@functools.lru_cache(maxsize=4)
def _cached_enhancer(model: str, device: str) -> Enhancer:
    return Enhancer(model, device)


def _get_enhancer(model: str | Path | nn.Module | Enhancer, device: str | torch.device) -> Enhancer:
    if isinstance(model, Enhancer):
        return model
    if isinstance(model, nn.Module):
        return Enhancer(model, device)
    return _cached_enhancer(str(model), str(device))


def _enhance_hwc(rgb: np.ndarray, enhancer: Enhancer) -> np.ndarray:
    """float32 (H, W, 3) in [0, 1] -> float32 (H, W, 3)."""
    x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
    return enhancer(x)[0].permute(1, 2, 0).numpy()


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


def _enhance_array(a: np.ndarray, enhancer: Enhancer) -> np.ndarray:
    if a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (1, 2)):
        # Grey (optionally with alpha): enhance as three equal channels, return their mean.
        grey = a if a.ndim == 2 else a[..., 0]
        g, scale = _to_unit(grey)
        y = _enhance_hwc(np.repeat(g[..., None], 3, axis=2), enhancer).mean(axis=2)
        out = _from_unit(y, scale, a.dtype)
        if a.ndim == 3:
            out = np.concatenate([out[..., None], a[..., 1:]], axis=2)
        return out
    if a.ndim == 3 and a.shape[2] in (3, 4):
        rgb, scale = _to_unit(a[..., :3])
        out = _from_unit(_enhance_hwc(rgb, enhancer), scale, a.dtype)
        if a.shape[2] == 4:
            out = np.concatenate([out, a[..., 3:]], axis=2)  # alpha untouched
        return out
    raise ValueError(f"unsupported array shape {a.shape}; expected HxW, HxWx1, HxWx2, HxWx3 or HxWx4")


_PIL_RGB_MODES = {"RGB", "RGBA", "L", "LA", "I", "I;16", "I;16B", "I;16L"}


def _enhance_pil(im: Image.Image, enhancer: Enhancer) -> Image.Image:
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
    model: str | Path | nn.Module | Enhancer = DEFAULT_MODEL,
    *,
    device: str | torch.device = "cpu",
) -> T:
    """Brighten a low-light image with Zero-DCE; return the same kind, shape and dtype.

    Args:
        image: a numpy array (uint8, uint16, or float in [0, 1]; HxW grey, HxWx3 RGB, HxWx4 RGBA
            with alpha kept untouched), a PIL image, or a float tensor (B, 3, H, W) or (3, H, W).
        model: bundled name, weights path, loaded module, or an :class:`Enhancer`.
        device: where to compute.

    Returns:
        The enhanced image, of the input's type, shape and dtype.

    Example:
        >>> out = enhance(np.full((3, 5), 0.1, dtype=np.float32))
        >>> out.shape, out.dtype, bool(out.min() > 0.1)
        ((3, 5), dtype('float32'), True)
    """
    enhancer = _get_enhancer(model, device)
    if isinstance(image, torch.Tensor):
        if image.dim() == 3:
            return enhancer(image[None])[0]  # type: ignore[return-value]
        return enhancer(image)  # type: ignore[return-value]
    if isinstance(image, Image.Image):
        return _enhance_pil(image, enhancer)  # type: ignore[return-value]
    if isinstance(image, np.ndarray):
        return _enhance_array(image, enhancer)  # type: ignore[return-value]
    raise TypeError(f"unsupported image type {type(image).__name__}; expected numpy array, PIL image or tensor")
