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

from ._atomic import atomic_write_bytes
from .metadata import portable_exif, working_mode

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


# The decoders that may ever run, whatever a file's name: the formats the README names. Pillow
# registers some forty more, and some hand the file to other programs (EPS and PS to Ghostscript,
# IPTC to whichever plugin its payload names) or decode far more pixels than their header declares
# (ICO); none of them is opened.
DECODERS = ("JPEG", "MPO", "PNG", "TIFF", "BMP", "WEBP", "GIF", "HEIF")
SUPPORTED = "JPEG, PNG, TIFF, BMP, WebP, GIF, HEIC/HEIF"  # as the README names them, for messages

# What decoders raise on hostile bytes, besides the OSError family: Pillow's parsers raise
# struct.error, KeyError (a missing tag: "262"), IndexError, TypeError or arithmetic errors on
# malformed headers; each is the file's fault, so each becomes an ImageReadError naming the file.
DECODE_ERRORS = (
    OSError, SyntaxError, ValueError, EOFError, struct.error, KeyError, IndexError, TypeError,
    ArithmeticError, MemoryError, RecursionError, Image.DecompressionBombError,
)  # fmt: skip


def _open_header(fp: IO[bytes], name: str) -> ImageFile.ImageFile:
    """Identify ``fp`` among :data:`DECODERS` and parse its header with that plugin; no pixel is
    decoded, and no other plugin's code runs on the file.

    What :func:`PIL.Image.open` does, minus its check against the process-wide
    ``Image.MAX_IMAGE_PIXELS`` (a warning at 89.5 MP): the limit applied is the caller's.

    Raises:
        ImageReadError: a format Pillow knows but the tool does not read (named in the message).
        UnidentifiedImageError: no decoder takes the file.
    """
    Image.preinit()
    Image.init()
    prefix = fp.read(16)
    if prefix[4:8] == b"ftyp":  # ISO base media (HEIC/HEIF, also MP4): Pillow needs pillow-heif's opener
        heif_available()
    damaged: tuple[str, BaseException] | None = None  # the first plugin that took the prefix, and what it raised
    for fmt in DECODERS:
        if fmt not in Image.OPEN:
            continue  # HEIF without the heif extra
        factory, accept = Image.OPEN[fmt]
        ok = False
        try:
            ok = not accept or accept(prefix)
            if ok and not isinstance(ok, str):
                fp.seek(0)
                return factory(fp, name)
        except DECODE_ERRORS as exc:
            if ok and damaged is None:
                damaged = fmt, exc
    if damaged is not None:  # a TIFF without its photometric tag is a damaged TIFF, not an unknown format
        fmt, exc = damaged
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageReadError(f"{name}: damaged {fmt} header ({why})")
    for fmt in Image.ID:  # only the plugins' prefix tests run here, to name the format in the message
        accept = Image.OPEN[fmt][1]
        if fmt not in DECODERS and accept is not None and accept(prefix):
            raise ImageReadError(f"{name}: {fmt} files are not read (supported: {SUPPORTED})")
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
            if im.size != (w, h):  # a decoder that disagrees with the header it was checked by
                raise ImageReadError(f"{path}: decoded {im.size[0]}x{im.size[1]}, its header said {w}x{h}")
            ImageOps.exif_transpose(im, in_place=True)  # upright without a second full-size copy
            exif = portable_exif(im)  # before the mode changes: a TIFF's tags live on its ImageFile
            im = working_mode(im)
            if exif:
                im.info["exif"] = exif
            else:
                im.info.pop("exif", None)
            return im
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not a recognised image format (supported: {SUPPORTED})") from None
    except DECODE_ERRORS as exc:
        msg = (str(exc) or type(exc).__name__).splitlines()[0]
        if isinstance(exc, KeyError):
            msg = f"missing or broken field {msg}"
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
    if fmt in ("JPEG", "PNG", "TIFF", "WEBP", "HEIF") and (exif := portable_exif(source)):
        params["exif"] = exif  # the descriptive tags only: never a TIFF's structure tags
    if fmt in ("JPEG", "WEBP", "BMP", "HEIF") and im.mode in ("I;16", "I"):  # 8-bit-only formats
        im = Image.fromarray((np.asarray(im, dtype=np.float64) / 257).round().clip(0, 255).astype(np.uint8))
    if fmt == "PNG" and im.mode == "I":  # 32-bit grey: PNG holds 16 bits at most
        im = Image.fromarray(np.asarray(im).clip(0, 65535).astype(np.uint16))
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
    elif fmt == "TIFF":
        # Pillow takes the compression from the image's own info otherwise: a Group-4 scan's
        # "group4" (1-bit only) then fails on the enhanced picture, and "jpeg" would make it lossy.
        kept = info.get("compression")
        params["compression"] = kept if kept in _LOSSLESS_TIFF else "tiff_lzw"
    elif fmt == "BMP" and im.mode not in ("RGB", "L", "P", "1"):
        im = im.convert("RGB")
    return im, params


_LOSSLESS_TIFF = frozenset({"raw", "tiff_lzw", "tiff_deflate", "tiff_adobe_deflate", "packbits"})


def write_image(
    im: Image.Image, path: str | Path, source: Image.Image | None = None, quality: int = 95, fmt: str | None = None
) -> Path:
    """Write ``im`` to ``path`` atomically, carrying the source's ICC profile and EXIF.

    The image is encoded in memory, then written to a temporary file in the destination folder
    and renamed over ``path`` only when all its bytes are on disk (a full disk is an OSError and
    leaves no file): encoders that write to a descriptor themselves ignore short writes.
    EXIF orientation is reset to 1 because :func:`read_image` already applied it to the pixels.
    ``fmt`` (a Pillow format name) overrides the format the suffix implies.
    """
    path = Path(path)
    fmt = fmt or output_format(path, getattr(source, "format", None))
    return atomic_write_bytes(path, encode_image(im, fmt, source, quality))


def encode_image(im: Image.Image, fmt: str, source: Image.Image | None = None, quality: int = 95) -> bytes:
    """Encode to bytes like :func:`write_image` does to a file (ICC and EXIF carried)."""
    im, params = _prepare(im, fmt, source, quality)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **params)
    return buf.getvalue()
