"""Files that decoders and encoders once got wrong (issue 26): every TIFF layout, colour modes that
are not RGB, rotated 16-bit files, malformed metadata, formats the tool never decodes, and a disk
that fills up mid-write.

Each output is compared with what the picture is, computed without the code under test: the
array the file was made from, rotated by numpy for its EXIF orientation, or Pillow's and LittleCMS's
own conversions of the input. Reading and writing go through the entries the batch and the service
use (:func:`read_any`, :func:`write_image`, :func:`encode_as`), with no model in between, so a
colour or a rotation that comes back wrong is the files' code's fault.
"""

from __future__ import annotations

import io
import os
import resource
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import EpsImagePlugin, IcoImagePlugin, Image, ImageCms, IptcImagePlugin

from support.hostile import cmyk_jpeg, cmyk_profile, encode, picture, tiff_variants
from zerodce.files.highbit import HighBitImage, encode_as
from zerodce.files.io import ImageReadError, read_any, write_image

PICTURE = picture()  # (16, 24, 3): landscape, bright top-left corner
ROTATED = {1: PICTURE, 6: np.rot90(PICTURE, -1), 8: np.rot90(PICTURE, 1)}  # EXIF 6: 90 deg clockwise


def _grey(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).convert("L"), np.float64)


def _levels(out: Image.Image) -> np.ndarray:
    """An opened output's samples on 0..255: grey as (H, W), colour as (H, W, 3); 16 bits scaled."""
    if out.mode in ("I;16", "I;16B", "I"):
        return np.asarray(out, np.float64) / 257.0
    return np.asarray(out.convert("L" if out.mode in ("L", "1") else "RGB"), np.float64)


def _lab_to_srgb(im: Image.Image) -> np.ndarray:
    to_rgb = ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB")
    return np.asarray(ImageCms.applyTransform(im, to_rgb), np.float64)


def _expected(name: str, data: bytes) -> tuple[np.ndarray, float]:
    """What the TIFF ``name`` shows, in sRGB (or grey), and the tolerance in levels."""
    if name in ("rgb.tif", "lzw.tif", "rgbx.tif", "cmyk.tif"):
        return PICTURE.astype(np.float64), 0.0  # lossless layouts; Pillow's CMYK is 255 - RGB, K = 0
    if name == "ycbcr.tif":
        return PICTURE.astype(np.float64), 3.0  # JPEG's YCbCr matrix, rounded twice
    if name.startswith("portrait"):
        return ROTATED[int(name[8])].astype(np.float64), 0.0
    if name == "float.tif":
        return _grey(PICTURE), 1.0
    if name == "lab.tif":
        return _lab_to_srgb(Image.open(io.BytesIO(data))), 1.0  # LittleCMS both ways, independent of us
    if name in ("palette.tif", "g4.tif"):  # quantised / thresholded when made: what the file holds
        held = Image.open(io.BytesIO(data)).convert("RGB" if name == "palette.tif" else "L")
        return np.asarray(held, np.float64), 0.0
    raise AssertionError(name)


@pytest.mark.parametrize("name", sorted(tiff_variants()))
@pytest.mark.parametrize("fmt", ["TIFF", "PNG", "JPEG"])
def test_every_tiff_layout_is_written_as_its_picture(tmp_path, name, fmt):
    """CMYK, palette, Group-4, float, RGBX TIFFs were written unreadable (the first IFD's photometric,
    sample format and extra samples copied as EXIF); LAB and YCbCr came out in wrong colours;
    portraits failed ("codec configuration error"). Each must come out openable, upright and in
    its colours, whatever the output format."""
    data = tiff_variants()[name]
    src = tmp_path / name
    src.write_bytes(data)
    im = read_any(src)
    dst = write_image(im, tmp_path / f"out.{fmt.lower()}", source=im)
    with Image.open(dst) as out:
        out.load()
        assert out.format == fmt
        assert out.getexif().get(0x0112, 1) == 1  # applied, so never applied twice
        got = _levels(out)
    want, tol = _expected(name, data)
    if got.ndim == 2 and want.ndim == 3:
        want = _grey(want.astype(np.uint8))
    if got.ndim == 3 and want.ndim == 2:  # grey written as RGB
        want = np.repeat(want[..., None], 3, axis=2)
    assert got.shape == want.shape
    if fmt == "JPEG":
        tol += 40.0  # quality 95 on a 24x16 picture of noise: the mean says more than the worst pixel
        assert np.abs(got - want).mean() <= 4.0
    assert np.abs(got - want).max() <= tol


def test_portable_tags_of_a_tiff_are_kept_and_layout_tags_are_not(tmp_path):
    src = tmp_path / "lzw.tif"
    src.write_bytes(tiff_variants()["lzw.tif"])
    im = read_any(src)
    dst = write_image(im, tmp_path / "out.jpg", source=im)
    exif = Image.open(dst).getexif()
    assert exif.get(271) == "TestCam"  # Make: the photo's
    for layout in (256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 317, 338, 339):
        assert layout not in exif  # width, bits, compression, photometric, strips, planar, extra samples...


def _patch_tag(data: bytes, tag: int, *, new_tag: int | None = None, new_type: int | None = None) -> bytes:
    """The little-endian TIFF ``data`` with one entry of its first IFD retagged or retyped."""
    b = bytearray(data)
    assert b[:4] == b"II*\x00"
    (ifd,) = struct.unpack_from("<I", b, 4)
    (count,) = struct.unpack_from("<H", b, ifd)
    for i in range(count):
        at = ifd + 2 + 12 * i
        if struct.unpack_from("<H", b, at)[0] == tag:
            if new_tag is not None:
                struct.pack_into("<H", b, at, new_tag)
            if new_type is not None:
                struct.pack_into("<H", b, at + 2, new_type)
            return bytes(b)
    raise AssertionError(f"no tag {tag}")


def _tiff16(**kw: object) -> bytes:
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, PICTURE.astype(np.uint16) * 257, photometric="rgb", resolution=(300, 300), **kw)
    return buf.getvalue()


def _tiff8() -> bytes:
    return encode(Image.fromarray(PICTURE), "TIFF", dpi=(300, 300))


MALFORMED = {  # tags whose type is not the one TIFF defines: Pillow reads them, but cannot write them
    "xres-ascii-8bit.tif": lambda: _patch_tag(_tiff8(), 282, new_type=2),
    "unit-ascii-8bit.tif": lambda: _patch_tag(_tiff8(), 296, new_type=2),
    "xres-ascii-16bit.tif": lambda: _patch_tag(_tiff16(), 282, new_type=2),
    "unit-ascii-16bit.tif": lambda: _patch_tag(_tiff16(), 296, new_type=2),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
@pytest.mark.parametrize("fmt", ["tif", "jpg"])
def test_a_malformed_exif_field_is_dropped_not_fatal(tmp_path, name, fmt):
    """The fuzz find of issue 26: a TIFF whose resolution tag has the wrong type. The writer copied
    it and died on it ("required argument is not an integer", "bad operand type for abs()"), in the
    CLI and as a 500 in the service. The field is dropped; the picture comes through."""
    src = tmp_path / name
    src.write_bytes(MALFORMED[name]())
    img = read_any(src)
    if isinstance(img, HighBitImage):
        payload = encode_as(img, "TIFF" if fmt == "tif" else "JPEG")
    else:
        payload = write_image(img, tmp_path / f"o.{fmt}", source=img).read_bytes()
    with Image.open(io.BytesIO(payload)) as out:
        got = np.asarray(out.convert("RGB"), np.float64) if out.mode != "RGB;16" else None
    assert got is not None and got.shape == PICTURE.shape
    assert np.abs(got - PICTURE).mean() <= (0.5 if fmt == "tif" else 2.5)


def test_cmyk_jpeg_comes_out_srgb_through_its_profile_and_without_it():
    """A CMYK JPEG came out as RGB pixels still carrying its CMYK ICC profile (every viewer then
    shows it in wrong colours). Converted through the profile; no profile on the RGB result."""
    data = cmyk_jpeg()
    im = read_any(data, name="print.jpg")
    assert im.mode == "RGB"
    assert "icc_profile" not in im.info
    cmyk = Image.open(io.BytesIO(data))
    ref = ImageCms.profileToProfile(cmyk, ImageCms.ImageCmsProfile(io.BytesIO(cmyk_profile())),
                                    ImageCms.createProfile("sRGB"), outputMode="RGB")  # fmt: skip
    assert np.abs(np.asarray(im, np.float64) - np.asarray(ref, np.float64)).max() <= 1.0
    out = Image.open(io.BytesIO(_jpeg_of(im)))
    assert out.mode == "RGB" and "icc_profile" not in out.info


def _jpeg_of(im: Image.Image) -> bytes:
    from zerodce.files.io import encode_image

    return encode_image(im, "JPEG", source=im)


def _png16(rgb16: np.ndarray, exif: bytes) -> bytes:
    """A 16-bit RGB PNG written by hand (zlib, filter 0) with an ``eXIf`` chunk: no encoder of ours."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    h, w, _ = rgb16.shape
    rows = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(h))
    head = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"eXIf", exif)
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))  # fmt: skip


@pytest.mark.parametrize("orientation", [6, 8])
def test_16bit_png_with_orientation_is_upright_in_every_output(orientation):
    """A 16-bit PNG with orientation 6 written as JPEG came out unrotated and without its EXIF
    (the 8-bit path was right). Upright, and its Make kept, in 16-bit PNG and TIFF and in JPEG."""
    e = Image.Exif()
    e[0x0112], e[271] = orientation, "PhoneCam"
    data = _png16(PICTURE.astype(np.uint16) * 257, e.tobytes()[6:] if e.tobytes().startswith(b"Exif") else e.tobytes())
    img = read_any(data, name="portrait.png")
    assert isinstance(img, HighBitImage)
    np.testing.assert_array_equal(img.pixels, ROTATED[orientation].astype(np.uint16) * 257)
    for fmt in ("PNG", "TIFF", "JPEG"):
        with Image.open(io.BytesIO(encode_as(img, fmt))) as out:
            exif = out.getexif()
            assert exif.get(0x0112, 1) == 1, fmt
            assert exif.get(271) == "PhoneCam", fmt
            assert out.size == (PICTURE.shape[0], PICTURE.shape[1]), fmt  # (width, height) of the portrait
            if fmt == "JPEG":
                assert np.abs(np.asarray(out, np.float64) - ROTATED[orientation]).mean() <= 2.5


@pytest.mark.parametrize("orientation", [6, 8])
def test_16bit_portrait_tiff_is_upright(orientation):
    """16-bit TIFF with orientation 6/8: "TIFF page (480, 320, 3) disagrees with its header 480x320"."""
    data = _tiff16(extratags=[(274, "H", 1, orientation, True)])
    img = read_any(data, name="portrait.tif")
    assert isinstance(img, HighBitImage)
    np.testing.assert_array_equal(img.pixels, ROTATED[orientation].astype(np.uint16) * 257)
    import tifffile

    back = tifffile.imread(io.BytesIO(encode_as(img, "TIFF")))
    np.testing.assert_array_equal(back, ROTATED[orientation].astype(np.uint16) * 257)


# ---- decoders that never run ------------------------------------------------------------------------
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n{ } loop\n"


@pytest.fixture
def no_foreign_decoder(monkeypatch):
    """Every plugin outside the allow-list fails the test the moment it is asked to open a file."""
    called: list[str] = []

    def spy(name: str):
        def factory(*args: object, **kw: object) -> None:
            called.append(name)
            raise AssertionError(f"{name} decoder ran")

        return factory

    for plugin, cls in ((EpsImagePlugin, "EpsImageFile"), (IcoImagePlugin, "IcoImageFile"),
                        (IptcImagePlugin, "IptcImageFile")):  # fmt: skip
        monkeypatch.setattr(getattr(plugin, cls), "_open", spy(cls))
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", spy("Ghostscript"))
    return called


def _ico() -> bytes:
    return encode(Image.fromarray(PICTURE).resize((64, 64)), "ICO", sizes=[(64, 64)])


@pytest.mark.parametrize(
    ("data", "name", "fmt"),
    [
        (EPS, "spin.eps", "EPS"),
        (EPS, "photo.jpg", "EPS"),  # the extension never chooses the decoder
        (b"\xc5\xd0\xd3\xc6" + b"\x00" * 28 + EPS, "binary.eps", "EPS"),  # DOS EPS header
        (None, "icon.ico", "ICO"),
        (None, "icon.jpg", "ICO"),
    ],
)
def test_formats_outside_the_list_are_named_and_never_decoded(no_foreign_decoder, data, name, fmt):
    """An EPS (`{ } loop`) made Ghostscript spin forever in the service and the CLI; an ICO decoded
    to 144 MP from 420 KB. Refused from the prefix, with the format named; no decoder runs."""
    with pytest.raises(ImageReadError) as err:
        read_any(_ico() if data is None else data, name=name)
    assert str(err.value) == f"{name}: {fmt} files are not read (supported: JPEG, PNG, TIFF, BMP, WebP, GIF, HEIC/HEIF)"
    assert no_foreign_decoder == []


def test_iptc_wrapped_eps_named_jpg_is_not_recognised_and_not_decoded(no_foreign_decoder):
    """IPTC (no prefix test in Pillow: its plugin is tried on anything) wrapping an EPS, named .jpg:
    the CLI reached Ghostscript through it and stayed at 0% forever."""
    iptc = b"\x1c\x03\x3c\x00\x02" + b"\x01\x00" + b"\x1c\x08\x0a" + struct.pack(">H", len(EPS)) + EPS
    with pytest.raises(ImageReadError, match=r"^photo\.jpg: not a recognised image format"):
        read_any(iptc, name="photo.jpg")
    assert no_foreign_decoder == []


@pytest.mark.parametrize(("tag", "why"), [(262, "unknown pixel mode"), (273, "unknown data organization")])
def test_a_tiff_missing_a_required_field_is_a_damaged_tiff(tag, why):
    """Not 'not a recognised image format' (it is a TIFF) and never a bare '262' (a KeyError's text)."""
    data = _patch_tag(encode(Image.fromarray(PICTURE), "TIFF"), tag, new_tag=65000)
    with pytest.raises(ImageReadError) as err:
        read_any(data, name="scan.tif")
    assert str(err.value) == f"scan.tif: damaged TIFF header ({why})"


# ---- a full disk -----------------------------------------------------------------------------------
def _noisy_jpeg(path: Path) -> Path:
    rng = np.random.default_rng(7)
    Image.fromarray(rng.integers(0, 90, (480, 640, 3), dtype=np.uint8)).save(path, quality=95)
    return path


def _limited(limit: int):
    def set_limit() -> None:  # in the child: writes past ``limit`` bytes fail with EFBIG, as a full disk fails
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    return set_limit


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="needs RLIMIT_FSIZE")
@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif"])
def test_a_full_disk_is_an_error_and_leaves_no_file(tmp_path, suffix):
    """On a nearly full disk the JPEG encoder wrote a cut-off file and the run said "enhanced 1,
    failed 0"; --skip-existing then kept it. The disk here fills 100 bytes before the output's end
    (a file-size limit: the last write is short, as on a full disk, and nothing writes after it,
    so only a check of what reached the file sees it). Now: a failure, nothing left (no output,
    no part file), and a rerun with room writes the whole output."""
    src = _noisy_jpeg(tmp_path / "photo.jpg")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "zerodce", "enhance", str(src), "-o", str(out), "--format", suffix[1:],
           "--skip-existing", "-q"]  # fmt: skip
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    room = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert room.returncode == 0, room.stderr
    (whole,) = out.iterdir()
    size = whole.stat().st_size
    whole.unlink()
    full = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=_limited(size - 100), env=env, timeout=300)
    assert full.returncode != 0, full.stdout + full.stderr
    failed = [line for line in full.stderr.splitlines() if "photo.jpg" in line]
    assert len(failed) == 1 and ("File too large" in failed[0] or "No space" in failed[0]), full.stderr
    assert sorted(p.name for p in out.iterdir()) == []  # no output, no hidden .part
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "enhanced 1" in again.stdout  # not "skipped": nothing partial was left to keep
    (written,) = out.iterdir()
    assert written.stat().st_size == size
    with Image.open(written) as im:
        im.load()  # complete: a cut-off file raises here
        assert im.size == (640, 480)


# ---- finds of scripts/fuzz.py (issue 26's 10,000-file run), fixed cases -----------------------------
def test_a_cmyk_profile_littlecms_cannot_use_falls_back_to_the_formula(caplog):
    """A mutated CMYK JPEG whose profile parses but cannot build a transform raised PyCMSError."""
    data = bytearray(cmyk_jpeg())
    at = data.find(b"mft2")
    data[at : at + 4] = b"xxxx"  # the A2B0 table's type: unknown to LittleCMS
    im = read_any(bytes(data), name="print.jpg")
    assert im.mode == "RGB" and "icc_profile" not in im.info
    naive = np.asarray(Image.open(io.BytesIO(bytes(data))).convert("RGB"), np.float64)
    np.testing.assert_array_equal(np.asarray(im, np.float64), naive)
    assert any("ICC profile cannot be applied" in r.getMessage() for r in caplog.records)


def test_32bit_grey_is_written_as_16bit_png(tmp_path):
    """Mode I (32-bit grey) raised "cannot write mode I as PNG"; PNG holds 16 bits, values clipped."""
    a = (np.arange(12 * 16, dtype=np.int32).reshape(12, 16) - 20) * 400
    dst = write_image(Image.fromarray(a, "I"), tmp_path / "g.png")
    with Image.open(dst) as out:
        assert out.mode == "I;16"
        np.testing.assert_array_equal(np.asarray(out).astype(np.int64), np.clip(a, 0, 65535))
