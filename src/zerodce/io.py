"""Image files in and out: decoding with limits, EXIF orientation, metadata kept, atomic writes.

I/O never does the enhancement maths; it hands PIL images to :func:`zerodce.enhance`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from ._atomic import atomic_write

__all__ = ["ImageReadError", "read_image", "write_image", "MAX_PIXELS"]

MAX_PIXELS = 100_000_000  # decompression-bomb guard: larger images are refused before decoding

_FORMAT_BY_SUFFIX = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}


class ImageReadError(ValueError):
    """A file could not be decoded as an image (message names the file, one line)."""


def read_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode ``path`` fully, upright (EXIF orientation applied), with its metadata in ``.info``.

    Raises:
        ImageReadError: empty, truncated, unknown or oversized files.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageReadError(f"{path}: empty file")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
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


def write_image(im: Image.Image, path: str | Path, source: Image.Image | None = None, quality: int = 95) -> Path:
    """Write ``im`` to ``path`` atomically, carrying the source's ICC profile and EXIF.

    The image is written to a temporary file in the destination folder and renamed over
    ``path`` only when complete, so an interrupted write never leaves a partial file.
    EXIF orientation is reset to 1 because :func:`read_image` already applied it to the pixels.
    """
    path = Path(path)
    fmt = output_format(path, getattr(source, "format", None))
    params: dict[str, object] = {}
    info = source.info if source is not None else {}
    if info.get("icc_profile"):
        params["icc_profile"] = info["icc_profile"]
    if source is not None and fmt in ("JPEG", "PNG", "TIFF", "WEBP"):
        exif = source.getexif()
        if len(exif):
            exif[0x0112] = 1
            params["exif"] = exif.tobytes()
    if fmt == "JPEG":
        params.update(quality=quality, subsampling=0 if quality >= 90 else 2)
        if im.mode not in ("RGB", "L", "CMYK"):
            im = im.convert("RGB")
    elif fmt == "BMP" and im.mode not in ("RGB", "L", "P", "1"):
        im = im.convert("RGB")
    return atomic_write(path, lambda f: im.save(f, format=fmt, **params))
