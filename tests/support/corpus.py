"""A generated corpus of awkward and broken image files (for CLI and robustness tests)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int = 50_000, height: int = 50_000, depth: int = 8) -> bytes:
    """A 100-byte PNG whose header declares width x height RGB at ``depth`` bits (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def zeros_png(width: int, height: int, depth: int = 8, colour: int = 2) -> bytes:
    """A valid PNG of zeros (colour type 2 = RGB, 0 = grey), compressed row by row: a 10500x10000
    16-bit RGB one is 2.7 MB for 630 MB of pixels, made without holding those pixels."""
    channels = {0: 1, 2: 3, 6: 4}[colour]
    row = b"\x00" * (1 + width * channels * depth // 8)  # filter byte + samples
    z = zlib.compressobj(1)  # fast; 2.7 MB for that 630 MB one
    chunks = [z.compress(row * min(100, height - y)) for y in range(0, height, 100)]
    idat = b"".join(chunks) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


# name -> True if a correct output is expected, False if a clear error is expected
EXPECTED_OK = {
    "empty.jpg": False,
    "truncated.jpg": False,
    "truncated.png": False,
    "text.jpg": False,
    "bomb.png": False,
    "jpeg_named.png": True,
    "one.png": True,
    "row.png": True,
    "column.png": True,
    "palette.png": True,
    "cmyk.jpg": True,
    "grey16.png": True,
    "animated.gif": True,
    "rotated.jpg": True,
    "rgba.png": True,
}


def make_corpus(root: Path) -> dict[str, bool]:
    """Write the corpus into ``root``; returns :data:`EXPECTED_OK`."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rgb = Image.fromarray((rng.random((40, 60, 3)) * 60).astype(np.uint8))
    jpeg, png = _encode(rgb, "JPEG"), _encode(rgb, "PNG")
    (root / "empty.jpg").write_bytes(b"")
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / "truncated.png").write_bytes(png[: len(png) // 2])
    (root / "text.jpg").write_text("this is not an image\n")
    (root / "bomb.png").write_bytes(bomb_png())
    (root / "jpeg_named.png").write_bytes(jpeg)
    rgb.resize((1, 1)).save(root / "one.png")
    rgb.resize((300, 1)).save(root / "row.png")
    rgb.resize((1, 300)).save(root / "column.png")
    rgb.convert("P").save(root / "palette.png")
    rgb.convert("CMYK").save(root / "cmyk.jpg")
    Image.fromarray((rng.random((30, 20)) * 9000).astype(np.uint16)).save(root / "grey16.png")
    frames = [rgb, rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    frames[0].save(root / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    rgb.save(root / "rotated.jpg", exif=exif.tobytes())
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.tile(np.arange(60, dtype=np.uint8) * 4, (40, 1))))
    rgba.save(root / "rgba.png")
    return dict(EXPECTED_OK)
