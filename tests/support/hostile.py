"""Photo files that decoders and encoders get wrong: every TIFF layout and colour mode a camera,
scanner or editor writes, rotated files, CMYK with its profile, and formats the tool never decodes.

Each maker returns the file's bytes; :func:`expected_rgb` says what the picture looks like in
sRGB, computed independently of the code under test (Pillow's own conversions, or the array the
file was made from), so a test can compare the tool's output with it.
"""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image, ImageCms

SIZE = (24, 16)  # (width, height): landscape, so a missed rotation changes the shape


def picture(seed: int = 0) -> np.ndarray:
    """A (16, 24, 3) uint8 picture, bright top-left corner: orientation and colours are visible."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : SIZE[1], 0 : SIZE[0]]
    base = np.stack([200 - 6 * x, 60 + 5 * y, 40 + 3 * x], axis=2)
    base[:4, :4] = 250  # the marker corner
    return np.clip(base + rng.integers(0, 8, base.shape), 0, 255).astype(np.uint8)


def encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _tag(sig: bytes, body: bytes) -> tuple[bytes, bytes]:
    return sig, body + b"\x00" * (-len(body) % 4)


def cmyk_profile() -> bytes:
    """A valid CMYK -> Lab ICC v2 output profile (class ``prtr``) made from nothing: its A2B0
    table maps each CMYK corner to the Lab of the naive ``(1 - c)(1 - k)`` RGB colour. No file on
    disk is needed, and a CMYK JPEG that embeds it must come out as sRGB without it."""
    corners = np.array([[(i >> 3) & 1, (i >> 2) & 1, (i >> 1) & 1, i & 1] for i in range(16)], np.float64)
    rgb = (1 - corners[:, :3]) * (1 - corners[:, 3:]) * 255
    lab = ImageCms.applyTransform(Image.fromarray(rgb.round().astype(np.uint8)[None]), _srgb_to_lab())
    lab8 = np.asarray(lab)[0]  # Pillow's LAB: L* * 255 / 100, then a* and b* as signed bytes
    ab = lab8[:, 1:].view(np.int8).astype(np.float64) + 128
    lab16 = np.stack([lab8[:, 0] / 255 * 65280, ab[:, 0] * 256, ab[:, 1] * 256], axis=1)
    one = struct.pack(">i", 65536)
    zero = struct.pack(">i", 0)
    lut = b"mft2" + b"\x00" * 4 + bytes([4, 3, 2, 0]) + (one + zero * 3) * 2 + one
    lut += struct.pack(">HH", 2, 2) + struct.pack(">HH", 0, 65535) * 4
    lut += np.clip(lab16.round(), 0, 65535).astype(">u2").tobytes() + struct.pack(">HH", 0, 65535) * 3
    text = b"zerodce test CMYK"
    desc = b"desc" + b"\x00" * 4 + struct.pack(">I", len(text) + 1) + text + b"\x00" + b"\x00" * 8 + b"\x00" * 70
    d50 = b"".join(struct.pack(">i", round(v * 65536)) for v in (0.9642, 1.0, 0.8249))
    tags = [_tag(b"desc", desc), _tag(b"wtpt", b"XYZ " + b"\x00" * 4 + d50),
            _tag(b"cprt", b"text" + b"\x00" * 4 + b"public domain\x00"), _tag(b"A2B0", lut)]  # fmt: skip
    offset = 128 + 4 + 12 * len(tags)
    table, data = struct.pack(">I", len(tags)), b""
    for sig, body in tags:
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = struct.pack(">I", size) + b"lcms" + bytes([2, 0x10, 0, 0]) + b"prtrCMYKLab "
    header += b"\x00" * 12 + b"acsp" + b"\x00" * 24 + struct.pack(">I", 0) + d50 + b"\x00" * 48
    return header + table + data


def cmyk_jpeg() -> bytes:
    """A CMYK JPEG (as print workflows write) that embeds :func:`cmyk_profile`."""
    return encode(Image.fromarray(picture()).convert("CMYK"), "JPEG", quality=95, icc_profile=cmyk_profile())


def tiff_variants() -> dict[str, bytes]:
    """TIFFs of every layout that once broke the output: name -> file bytes."""
    rgb = Image.fromarray(picture())
    exif = Image.Exif()
    exif[271] = "TestCam"
    exif[0x0112] = 1
    out = {
        "rgb.tif": encode(rgb, "TIFF"),
        "cmyk.tif": encode(rgb.convert("CMYK"), "TIFF"),
        "palette.tif": encode(rgb.convert("P"), "TIFF"),
        "g4.tif": encode(rgb.convert("1"), "TIFF", compression="group4"),
        "float.tif": encode(Image.fromarray(np.asarray(rgb.convert("L"), np.float32) / 255.0, "F"), "TIFF"),
        "rgbx.tif": encode(rgb.convert("RGBX"), "TIFF"),
        "lab.tif": encode(ImageCms.applyTransform(rgb, _srgb_to_lab()), "TIFF"),
        "ycbcr.tif": encode(rgb.convert("YCbCr"), "TIFF"),
        "lzw.tif": encode(rgb, "TIFF", compression="tiff_lzw", exif=exif),
    }
    for orientation in (6, 8):
        e = Image.Exif()
        e[0x0112] = orientation
        out[f"portrait{orientation}.tif"] = encode(rgb, "TIFF", exif=e)
    return out


def _srgb_to_lab() -> ImageCms.ImageCmsTransform:
    return ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")
