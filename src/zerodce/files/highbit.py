"""16-bit colour PNG and TIFF, which Pillow can only read as 8-bit: read and written losslessly.

Pixels go through OpenCV (PNG) and tifffile (TIFF); the ICC profile and EXIF are read with Pillow
(which parses the metadata without decoding the pixels) and written back: PNG ``iCCP`` and ``eXIf``
chunks, TIFF tag 34675 (ICC) and the EXIF IFD0 text tags (make, model, date, artist, copyright,
software, description). The EXIF orientation is applied to the pixels and reset to 1, as for
8-bit files. Extras: ``zerodce[16bit]`` (opencv-python-headless, tifffile).
"""

from __future__ import annotations

import dataclasses
import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from ..errors import require
from ._atomic import atomic_write_bytes
from .metadata import ORIENTATION, orient, portable_exif

__all__ = ["HighBitImage", "is_rgb16", "read_rgb16", "decode_rgb16", "write_rgb16", "encode_rgb16", "encode_as"]

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_EXIF_TEXT_TAGS = (270, 271, 272, 305, 306, 315, 33432)  # description, make, model, software, date, artist, (c)
_TIFFFILE_OWN = {270: "description", 305: "software"}  # tags tifffile.imwrite takes as arguments


@dataclass
class HighBitImage:
    """A 16-bit RGB(A) image (H, W, 3 or 4) uint16 with its metadata."""

    pixels: np.ndarray
    format: str  # "PNG" or "TIFF"
    icc_profile: bytes | None = None
    exif: bytes | None = None


def is_rgb16(head: bytes, im: Image.Image | None = None) -> bool:
    """True for a 16-bit RGB/RGBA PNG (from its header bytes) or TIFF (from Pillow's tags)."""
    if head.startswith(_PNG_SIG) and len(head) >= 26:
        return head[24] == 16 and head[25] in (2, 6)
    if im is not None and im.format == "TIFF":
        bits = im.tag_v2.get(258)  # BitsPerSample
        return isinstance(bits, tuple) and len(bits) >= 3 and all(b == 16 for b in bits)
    return False


def read_rgb16(path: str | Path, max_pixels: int | None = None) -> HighBitImage:
    """Read a 16-bit colour PNG/TIFF through :func:`zerodce.files.io.read_any` (the pixel limit applies).

    Raises:
        ImageReadError: oversized, broken, or not a 16-bit colour PNG/TIFF.
    """
    from .io import MAX_PIXELS, ImageReadError, read_any

    img = read_any(path, MAX_PIXELS if max_pixels is None else max_pixels)
    if not isinstance(img, HighBitImage):
        raise ImageReadError(f"{path}: not a 16-bit colour PNG or TIFF")
    return img


def decode_rgb16(fp: BinaryIO, header: Image.Image, max_pixels: int) -> HighBitImage:
    """Decode the pixels of a 16-bit colour file whose ``header`` Pillow has parsed and whose
    declared size :func:`zerodce.files.io.read_any` has checked; only that entry calls this.

    The decoders' own idea of the size is checked too (the same header, read by another parser),
    before tifffile allocates anything; OpenCV reads PNG's IHDR, which Pillow has checked.
    """
    w, h = header.size
    icc = header.info.get("icc_profile")
    try:
        orientation = header.getexif().get(ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - a hostile EXIF block: portable_exif drops it with a warning
        orientation = 1
    exif_bytes = portable_exif(header)
    if header.format == "TIFF":  # Pillow reports a TIFF's displayed size; tifffile its stored one
        w, h = header.tag_v2.get(256, w), header.tag_v2.get(257, h)
    fp.seek(0)
    if header.format == "PNG":
        cv2 = require("cv2", "a 16-bit colour PNG")
        arr = cv2.imdecode(np.frombuffer(fp.read(), np.uint8), cv2.IMREAD_UNCHANGED)
        if arr is None or arr.dtype != np.uint16 or arr.ndim != 3 or arr.shape[:2] != (h, w):
            raise ValueError("cannot decode 16-bit PNG")
        # BGR(A) -> RGB(A) in place: no second full-size copy.
        cv2.cvtColor(arr, cv2.COLOR_BGR2RGB if arr.shape[2] == 3 else cv2.COLOR_BGRA2RGBA, dst=arr)
    else:
        tifffile = require("tifffile", "a 16-bit colour TIFF")
        with tifffile.TiffFile(fp, name=header.filename or "image.tif") as tif:
            page = tif.pages[0]
            if page.dtype != np.uint16 or page.ndim != 3 or page.shape[2] not in (3, 4):
                raise ValueError(f"unsupported 16-bit TIFF layout {page.shape} {page.dtype}")
            if page.shape[:2] != (h, w) or h * w > max_pixels:
                raise ValueError(f"TIFF page {page.shape} disagrees with its header {w}x{h}")
            arr = page.asarray()
    return HighBitImage(orient(arr, orientation), header.format, icc, exif_bytes)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def _png_bytes(img: HighBitImage) -> bytes:
    cv2 = require("cv2", "writing a 16-bit colour PNG")

    bgr = img.pixels[..., [2, 1, 0, 3][: img.pixels.shape[2]]]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(bgr))
    if not ok:
        raise ValueError("cannot encode 16-bit PNG")
    data = buf.tobytes()
    extra = b""
    if img.icc_profile:
        extra += _chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(img.icc_profile))
    if img.exif:
        extra += _chunk(b"eXIf", img.exif[6:] if img.exif.startswith(b"Exif\x00\x00") else img.exif)
    ihdr_end = 8 + 8 + 13 + 4  # signature, IHDR length+type, IHDR payload, CRC
    return data[:ihdr_end] + extra + data[ihdr_end:]


def write_rgb16(img: HighBitImage, path: str | Path) -> Path:
    """Write atomically, 16 bits per channel, metadata carried."""
    return atomic_write_bytes(path, encode_rgb16(img))


def encode_as(img: HighBitImage, fmt: str, quality: int = 95) -> bytes:
    """``img`` as a file of format ``fmt``: 16 bits per channel in PNG and TIFF, its RGB rounded to
    8 bits in the others (JPEG, WebP...); metadata carried either way. The CLI's batch and the web
    service write 16-bit inputs through this one rule."""
    if fmt in ("PNG", "TIFF"):
        return encode_rgb16(dataclasses.replace(img, format=fmt))
    from .io import encode_image

    eight = Image.fromarray(np.rint(img.pixels[..., :3] / 257.0).astype(np.uint8), "RGB")
    if img.icc_profile:
        eight.info["icc_profile"] = img.icc_profile
    if img.exif:
        eight.info["exif"] = img.exif
    return encode_image(eight, fmt, source=eight, quality=quality)


def encode_rgb16(img: HighBitImage) -> bytes:
    """``img`` as a file of its ``format`` (PNG or TIFF), 16 bits per channel, metadata carried."""
    if img.format == "PNG":
        return _png_bytes(img)
    tifffile = require("tifffile", "writing a 16-bit colour TIFF")

    tags = []
    # tifffile writes the description (270) and software (305) tags itself (its own JSON and name
    # unless told otherwise) and drops extra tags of those numbers with a warning: passed as its own
    # arguments, the photo's are kept.
    kwargs: dict = {"iccprofile": img.icc_profile} if img.icc_profile else {}
    kwargs |= {"metadata": None, "software": False}
    if img.exif:
        exif = Image.Exif()
        exif.load(img.exif)
        for tag in _EXIF_TEXT_TAGS:
            value = exif.get(tag)
            if isinstance(value, str) and value:
                if tag in _TIFFFILE_OWN:
                    kwargs[_TIFFFILE_OWN[tag]] = value
                else:
                    tags.append((tag, "s", 0, value, True))
    photometric = "rgb"
    extras = (2,) if img.pixels.shape[2] == 4 else None  # unassociated alpha (its name differs by version)

    buf = io.BytesIO()  # tifffile wants a named file or a BytesIO, not a bare descriptor
    tifffile.imwrite(buf, img.pixels, photometric=photometric, extrasamples=extras, extratags=tags, **kwargs)
    return buf.getvalue()
