"""Image files in and out: decoding with limits, EXIF orientation, metadata kept, atomic writes.

I/O never does the enhancement maths; it hands PIL images to :func:`zerodce.enhance`.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ._atomic import atomic_write

__all__ = ["ImageReadError", "read_image", "write_image", "encode_image", "MAX_PIXELS", "FORMATS"]

MAX_PIXELS = 100_000_000  # decompression-bomb guard: larger images are refused before decoding

_FORMAT_BY_SUFFIX = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".heic": "HEIF",
    ".heif": "HEIF",
}
# --format names (ImageMagick-style) -> (Pillow format, file suffix)
FORMATS = {
    "jpeg": ("JPEG", ".jpg"),
    "jpg": ("JPEG", ".jpg"),
    "png": ("PNG", ".png"),
    "tiff": ("TIFF", ".tif"),
    "tif": ("TIFF", ".tif"),
    "webp": ("WEBP", ".webp"),
    "bmp": ("BMP", ".bmp"),
}


def _register_heif() -> bool:
    """HEIC/HEIF decoding through pillow-heif when it is installed (extra ``zerodce[heif]``)."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


HEIF = _register_heif()


class ImageReadError(ValueError):
    """A file could not be decoded as an image (message names the file, one line)."""


def read_image(src: str | Path | bytes, max_pixels: int = MAX_PIXELS, name: str = "upload") -> Image.Image:
    """Decode a file (or ``bytes``, called ``name`` in messages) fully, upright (EXIF orientation
    applied), with its metadata in ``.info`` and its format in ``.format``.

    Raises:
        ImageReadError: empty, truncated, unknown or oversized files.
    """
    path = Path(name) if isinstance(src, bytes) else Path(src)
    try:
        if (len(src) if isinstance(src, bytes) else path.stat().st_size) == 0:
            raise ImageReadError(f"{path}: empty file")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(src) if isinstance(src, bytes) else path) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise ImageReadError(f"{path}: {w}x{h} exceeds the {max_pixels:,}-pixel limit")
                im.load()
                fmt = im.format
                upright = ImageOps.exif_transpose(im) or im
                upright.load()
                upright.format = fmt  # type: ignore[attr-defined]
                return upright
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not a recognised image format") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageReadError(f"{path}: cannot decode image ({msg})") from None


def output_format(path: Path, fallback: str | None) -> str:
    """The Pillow format for ``path``'s suffix (or the source format when the suffix is unknown)."""
    fmt = _FORMAT_BY_SUFFIX.get(path.suffix.lower()) or fallback
    if not fmt:
        raise ValueError(f"{path}: cannot tell the output format from the suffix")
    return fmt


def _prepare(im: Image.Image, fmt: str, source: Image.Image | None, quality: int) -> tuple[Image.Image, dict]:
    """The image in a mode ``fmt`` can store, and the save parameters (ICC, EXIF, quality)."""
    params: dict[str, object] = {}
    info = source.info if source is not None else {}
    if info.get("icc_profile"):
        params["icc_profile"] = info["icc_profile"]
    if source is not None and fmt in ("JPEG", "PNG", "TIFF", "WEBP", "HEIF"):
        exif = source.getexif()
        if len(exif):
            exif[0x0112] = 1
            params["exif"] = exif.tobytes()
    if fmt in ("JPEG", "WEBP", "BMP", "HEIF") and im.mode in ("I;16", "I"):  # 8-bit-only formats
        im = Image.fromarray((np.asarray(im, dtype=np.float64) / 257).round().clip(0, 255).astype(np.uint8))
    if fmt == "JPEG":
        params.update(quality=quality, subsampling=0 if quality >= 90 else 2)
        if im.mode not in ("RGB", "L", "CMYK"):
            im = im.convert("RGB")
    elif fmt == "WEBP" and im.mode not in ("RGB", "RGBA"):
        im = im.convert("RGBA" if "A" in im.mode else "RGB")
    elif fmt == "HEIF":
        params["quality"] = quality
        if im.mode not in ("RGB", "RGBA"):
            im = im.convert("RGB")
    elif fmt == "BMP" and im.mode not in ("RGB", "L", "P", "1"):
        im = im.convert("RGB")
    return im, params


def write_image(
    im: Image.Image, path: str | Path, source: Image.Image | None = None, quality: int = 95, fmt: str | None = None
) -> Path:
    """Write ``im`` to ``path`` atomically, carrying the source's ICC profile and EXIF.

    The image is written to a temporary file in the destination folder and renamed over
    ``path`` only when complete, so an interrupted write never leaves a partial file.
    EXIF orientation is reset to 1 because :func:`read_image` already applied it to the pixels.
    ``fmt`` (a Pillow format name) overrides the format the suffix implies.
    """
    path = Path(path)
    fmt = fmt or output_format(path, getattr(source, "format", None))
    im, params = _prepare(im, fmt, source, quality)
    return atomic_write(path, lambda f: im.save(f, format=fmt, **params))


def encode_image(im: Image.Image, fmt: str, source: Image.Image | None = None, quality: int = 95) -> bytes:
    """Encode to bytes like :func:`write_image` does to a file (ICC and EXIF carried)."""
    im, params = _prepare(im, fmt, source, quality)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **params)
    return buf.getvalue()
