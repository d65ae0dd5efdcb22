"""Fuzz targets: decode -> enhance -> encode on arbitrary bytes, and enhance on arbitrary arrays.

Used by ``tests/test_fuzz.py`` (short) and ``scripts/fuzz.py`` (long). A target returns normally
or raises one of the documented error types; anything else is a bug.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np

from zerodce.enhance import Pipeline as Enhancer
from zerodce.enhance import enhance
from zerodce.files.highbit import HighBitImage, encode_as, write_rgb16
from zerodce.files.io import ImageReadError, read_any, read_image, write_image

BYTES_ERRORS = (ImageReadError,)
ARRAY_ERRORS = (TypeError, ValueError)


def bytes_target(data: bytes, enhancer: Enhancer, workdir: Path, suffix: str = ".png") -> str:
    """Decode ``data`` as a file through the guarded entry (16-bit colour PNG/TIFF included),
    enhance it, write it back and decode the result; returns the outcome."""
    src = workdir / f"in{suffix}"
    src.write_bytes(data)
    try:
        im = read_any(src, max_pixels=4_000_000)
    except BYTES_ERRORS as exc:
        return f"rejected with {type(exc).__name__}"
    if isinstance(im, HighBitImage):
        out16 = HighBitImage(enhance(im.pixels, enhancer), im.format, im.icc_profile, im.exif)
        if out16.pixels.shape != im.pixels.shape or out16.pixels.dtype != np.uint16:
            raise AssertionError(f"16-bit {im.pixels.shape} -> {out16.pixels.dtype}{out16.pixels.shape}")
        back = read_any(write_rgb16(out16, workdir / f"out{suffix}"))
        if not isinstance(back, HighBitImage) or not np.array_equal(back.pixels, out16.pixels):
            raise AssertionError("16-bit output did not read back equal")
        (workdir / "out16.jpg").write_bytes(encode_as(out16, "JPEG"))  # the 8-bit path, EXIF carried
        if read_image(workdir / "out16.jpg").size != out16.pixels.shape[1::-1]:
            raise AssertionError("16-bit -> JPEG changed the size")
        return "enhanced and re-encoded (16-bit)"
    out = enhance(im, enhancer)
    if out.size != im.size:
        raise AssertionError(f"size changed {im.size} -> {out.size}")
    for ext in dict.fromkeys((suffix, ".jpg", ".tif")):  # its own format, and the two that carry EXIF
        back = read_image(write_image(out, workdir / f"out{ext}", source=im))
        if back.size != im.size:
            raise AssertionError(f"{ext} output is {back.size}, the image {im.size}")
    return "enhanced and re-encoded"


def array_target(a: np.ndarray, enhancer: Enhancer) -> str:
    """Enhance an arbitrary array: same shape and dtype out, or a TypeError/ValueError; returns the outcome."""
    try:
        y = enhance(a, enhancer)
    except ARRAY_ERRORS as exc:
        return f"rejected with {type(exc).__name__}"
    if y.shape != a.shape or y.dtype != a.dtype:
        raise AssertionError(f"{a.dtype}{a.shape} -> {y.dtype}{y.shape}")
    alpha = a.ndim == 3 and a.shape[2] in (2, 4)
    colour = y[..., :-1] if alpha else y
    if np.issubdtype(y.dtype, np.floating) and not np.isfinite(colour).all():
        raise AssertionError("non-finite output")
    if alpha and not np.array_equal(y[..., -1], a[..., -1], equal_nan=np.issubdtype(a.dtype, np.floating)):
        raise AssertionError("alpha changed")  # alpha passes through untouched, even NaN or inf
    return "enhanced"


def seed_files() -> list[bytes]:
    """Valid small files in several formats, to mutate."""
    from PIL import Image

    rng = np.random.default_rng(0)
    im = Image.fromarray((rng.random((9, 7, 3)) * 255).astype(np.uint8))
    out = []
    for fmt, mode in (("PNG", "RGB"), ("JPEG", "RGB"), ("BMP", "RGB"), ("TIFF", "RGB"), ("PNG", "P"),
                      ("GIF", "P"), ("PNG", "RGBA"), ("WEBP", "RGB")):  # fmt: skip
        buf = io.BytesIO()
        im.convert(mode).save(buf, fmt)
        out.append(buf.getvalue())
    return out + hostile_seed_files() + seed_files_16bit()


def hostile_seed_files() -> list[bytes]:
    """The layouts issue 26 found broken, to mutate: every TIFF layout and colour mode, rotated TIFFs,
    a TIFF with EXIF and resolution tags, a CMYK JPEG with its profile, and formats never decoded
    (EPS, ICO), whose mutations must stay refused."""
    from PIL import Image

    from .hostile import cmyk_jpeg, encode, picture, tiff_variants

    exif = Image.Exif()
    exif[271], exif[0x0112], exif[305] = "FuzzCam", 6, "fuzz"
    tagged = encode(Image.fromarray(picture(1)), "TIFF", dpi=(300, 300), exif=exif)
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n{ } loop\n"
    ico = encode(Image.fromarray(picture(2)), "ICO", sizes=[(16, 16)])
    jpeg_exif = encode(Image.fromarray(picture(3)), "JPEG", exif=exif)
    return [*tiff_variants().values(), tagged, cmyk_jpeg(), jpeg_exif, eps, ico]


def seed_files_16bit() -> list[bytes]:
    """Valid small 16-bit colour files (PNG RGB and RGBA with ICC and EXIF, TIFF RGB and RGBA),
    the inputs of OpenCV and tifffile; empty when those (``zerodce[16bit]``) are not installed."""
    try:
        import cv2  # noqa: F401
        import tifffile
    except ImportError:
        return []
    from PIL import Image

    from zerodce.files.highbit import _png_bytes

    rng = np.random.default_rng(1)
    exif = Image.Exif()
    exif[271] = "FuzzCam"
    out = []
    for channels in (3, 4):
        px = (rng.random((9, 7, channels)) * 65535).astype(np.uint16)
        out.append(_png_bytes(HighBitImage(px, "PNG", b"\x00" * 128, exif.tobytes())))
        buf = io.BytesIO()
        tifffile.imwrite(buf, px, photometric="rgb", extrasamples=(2,) if channels == 4 else None)
        out.append(buf.getvalue())
    rotated = Image.Exif()
    rotated[271], rotated[0x0112] = "FuzzCam", 6
    px = (rng.random((9, 7, 3)) * 65535).astype(np.uint16)
    out.append(_png_bytes(HighBitImage(px, "PNG", None, rotated.tobytes())))  # portrait 16-bit PNG
    buf = io.BytesIO()  # portrait 16-bit TIFF with resolution and text tags (the EXIF the fuzz find broke)
    tifffile.imwrite(buf, px, photometric="rgb", resolution=(300, 300), description="fuzz",
                     extratags=[(274, "H", 1, 8, True), (271, "s", 0, "FuzzCam", True)])  # fmt: skip
    out.append(buf.getvalue())
    return out


def tmpdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="zerodce-fuzz-"))


# ---- video containers ---------------------------------------------------------------------------

VIDEO_ERRORS = (ValueError,)  # enhance_video's documented error: a message naming the file
VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov")


def video_seed_files() -> list[tuple[str, bytes]]:
    """Tiny valid clips (suffix, bytes) to mutate: H.264 in MP4/MOV/Matroska, MPEG-4 Part 2 in AVI, with audio."""
    import av

    rng = np.random.default_rng(0)
    out = []
    kinds = [(".mp4", "mp4", "libx264", (16, 12)), (".mkv", "matroska", "libx264", (15, 9)),
             (".avi", "avi", "mpeg4", (16, 16)), (".mov", "mov", "libx264", (8, 8))]  # fmt: skip
    for suffix, fmt, codec, size in kinds:
        buf = io.BytesIO()
        with av.open(buf, "w", format=fmt) as c:
            v = c.add_stream(codec, rate=12)
            v.width, v.height = size
            v.pix_fmt = "yuv420p" if codec != "libx264" or size[0] % 2 + size[1] % 2 == 0 else "yuv444p"
            a = c.add_stream("aac", rate=8000) if fmt != "avi" else None
            for _ in range(6):
                img = (rng.random((size[1], size[0], 3)) * 80).astype(np.uint8)
                for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    c.mux(p)
            for p in v.encode():
                c.mux(p)
            if a is not None:
                af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt", layout="mono")
                af.sample_rate, af.pts = 8000, 0
                for p in [*a.encode(af), *a.encode()]:
                    c.mux(p)
        out.append((suffix, buf.getvalue()))
    return out


def video_target(data: bytes, enhancer: Enhancer, workdir: Path, suffix: str = ".mp4") -> str:
    """Enhance ``data`` as a video file and decode the result; returns the outcome.

    Either the output decodes with as many frames as were reported and the input's size, or
    :func:`zerodce.apps.video.enhance_video` raises a ValueError and leaves no output; anything else is a bug.
    """
    import av

    from zerodce.apps.video import enhance_video

    src, dst = workdir / f"in{suffix}", workdir / f"out{suffix}"
    src.write_bytes(data)
    dst.unlink(missing_ok=True)
    try:
        stats = enhance_video(src, dst, enhancer, batch=4)
    except VIDEO_ERRORS as exc:
        if dst.exists() or list(workdir.glob(".*.part")):
            raise AssertionError(f"failed ({exc}) but left output behind") from None
        if type(exc) is not ValueError or not str(exc).startswith(f"{src}: ") or "\n" in str(exc):
            raise AssertionError(f"not a one-line ValueError naming the file: {type(exc).__name__}: {exc}") from None
        return "rejected: " + str(exc).removeprefix(f"{src}: ").split(" (")[0].split(":")[0]
    with av.open(str(dst)) as c:
        frames = sum(1 for _ in c.decode(video=0))
    if frames != stats.frames:
        raise AssertionError(f"reported {stats.frames} frames, the output holds {frames}")
    return "enhanced and re-encoded"
