"""Image files in and out: decoding with limits, EXIF orientation, metadata kept, atomic writes.

I/O never does the enhancement maths; it hands PIL images to :func:`zerodce.enhance`.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import stat
import struct
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ._atomic import atomic_write

if TYPE_CHECKING:
    from .highbit import HighBitImage

__all__ = ["ImageReadError", "read_any", "read_image", "write_image", "encode_image", "MAX_PIXELS", "FORMATS"]

MAX_PIXELS = 100_000_000  # decompression-bomb guard: larger images are refused before decoding

log = logging.getLogger(__name__)

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
# The one list of file extensions (training folders, batch inputs, video).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})  # also the training sets'
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"})
INPUT_EXTENSIONS = IMAGE_EXTENSIONS | {".webp", ".gif", ".heic", ".heif"} | VIDEO_EXTENSIONS


def list_images(root: str | Path, recursive: bool = True) -> list[Path]:
    """All image files under ``root`` (by extension, case-insensitive), sorted for reproducibility."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in root.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


FORMATS = {
    "jpeg": ("JPEG", ".jpg"),
    "jpg": ("JPEG", ".jpg"),
    "png": ("PNG", ".png"),
    "tiff": ("TIFF", ".tif"),
    "tif": ("TIFF", ".tif"),
    "webp": ("WEBP", ".webp"),
    "bmp": ("BMP", ".bmp"),
    "heic": ("HEIF", ".heic"),  # written with the heif extra (pillow-heif), as HEIC inputs are
    "heif": ("HEIF", ".heif"),
}


@functools.cache
def heif_available() -> bool:
    """HEIC/HEIF through pillow-heif when it is installed (extra ``zerodce[heif]``): its opener is
    registered with Pillow on the first HEIF file read or written, never on import."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


class ImageReadError(ValueError):
    """A file could not be decoded as an image (message names the file, one line)."""


def _open_header(fp: IO[bytes], name: str) -> ImageFile.ImageFile:
    """Identify ``fp`` and parse its header with the format's plugin; no pixel is decoded.

    What :func:`PIL.Image.open` does, minus its check against the process-wide
    ``Image.MAX_IMAGE_PIXELS`` (a warning at 89.5 MP): the limit applied is the caller's.
    """
    Image.preinit()
    Image.init()
    prefix = fp.read(16)
    if prefix[4:8] == b"ftyp":  # ISO base media (HEIC/HEIF, also MP4): Pillow needs pillow-heif's opener
        heif_available()
    for fmt in Image.ID:
        factory, accept = Image.OPEN[fmt]
        try:
            ok = not accept or accept(prefix)
            if ok and not isinstance(ok, str):
                fp.seek(0)
                return factory(fp, name)
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue
    raise UnidentifiedImageError(name)


def _open_regular(path: Path) -> IO[bytes]:
    """Open a regular file for reading; a FIFO, device or folder is refused without blocking."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except PermissionError:
        raise ImageReadError(f"{path}: permission denied") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ImageReadError(f"{path}: not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_any(
    src: str | Path | bytes, max_pixels: int = MAX_PIXELS, name: str = "upload", high_bit: bool = True
) -> Image.Image | HighBitImage:
    """The one guarded entry every image decoder goes through: the size the header declares is
    checked against ``max_pixels`` (default :data:`MAX_PIXELS`, 100 MP) before any pixel is decoded.

    Returns a PIL image, upright (EXIF orientation applied), metadata in ``.info``, format in
    ``.format``; or, with ``high_bit``, a 16-bit colour PNG/TIFF as a
    :class:`~zerodce.files.highbit.HighBitImage` (decoded by OpenCV / tifffile, which Pillow cannot do).
    Only regular files are read. Animated files: the first frame, with a logged warning.

    Raises:
        ImageReadError: not a regular file; empty, truncated, unknown or oversized files.
    """
    path = Path(name) if isinstance(src, bytes) else Path(src)
    try:
        fp = io.BytesIO(src) if isinstance(src, bytes) else _open_regular(path)
        with fp:
            head = fp.read(32)
            if not head:
                raise ImageReadError(f"{path}: empty file")
            fp.seek(0)
            # Not closed on the way out: closing a PIL image frees its pixels; ``fp`` is closed.
            im = _open_header(fp, str(path))
            w, h = im.size
            if w * h > max_pixels:
                raise ImageReadError(f"{path}: {w}x{h} exceeds the {max_pixels:,}-pixel limit")
            if im.format != "MPO" and getattr(im, "is_animated", False):  # MPO: a photo + previews
                log.warning("%s: animated %s; only the first frame is enhanced", path, im.format)
                im.seek(0)
            if high_bit:
                from .highbit import decode_rgb16, is_rgb16

                if is_rgb16(head, im):
                    return decode_rgb16(fp, im, max_pixels)
            im.load()
            ImageOps.exif_transpose(im, in_place=True)  # upright without a second full-size copy
            return im
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not a recognised image format") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageReadError(f"{path}: cannot decode image ({msg})") from None


def read_image(src: str | Path | bytes, max_pixels: int = MAX_PIXELS, name: str = "upload") -> Image.Image:
    """Decode a file (or ``bytes``, called ``name`` in messages) as a PIL image through
    :func:`read_any` (pixel limit, regular files only), 16-bit colour as Pillow reads it (8-bit).

    Raises:
        ImageReadError: empty, truncated, unknown or oversized files.
    """
    return read_any(src, max_pixels, name, high_bit=False)  # type: ignore[return-value]


def output_format(path: Path, fallback: str | None) -> str:
    """The Pillow format for ``path``'s suffix (or the source format when the suffix is unknown)."""
    fmt = _FORMAT_BY_SUFFIX.get(path.suffix.lower()) or fallback
    if not fmt:
        raise ValueError(f"{path}: cannot tell the output format from the suffix")
    return fmt


QUALITY_FORMATS = ("JPEG", "WEBP", "HEIF")  # the formats a quality setting applies to


def takes_quality(path: str | Path) -> bool:
    """Whether the file ``path`` names is written in a format a quality setting applies to.

    Example:
        >>> takes_quality("a.JPG"), takes_quality("a.webp"), takes_quality("a.png"), takes_quality("a.mp4")
        (True, True, False, False)
    """
    return _FORMAT_BY_SUFFIX.get(Path(path).suffix.lower()) in QUALITY_FORMATS


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
    elif fmt == "WEBP":
        params["quality"] = quality  # Pillow's own default (80) otherwise: --quality would do nothing
        if im.mode not in ("RGB", "RGBA"):
            im = im.convert("RGBA" if "A" in im.mode else "RGB")
    elif fmt == "HEIF":
        if not heif_available():
            from ..errors import missing_extra

            raise missing_extra("pillow_heif", "writing HEIC/HEIF")
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
