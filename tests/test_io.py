from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from PIL import Image

from zerodce.files._atomic import atomic_write, remove_stale_parts
from zerodce.files.io import ImageReadError, read_image, write_image


def test_atomic_write_failure_leaves_nothing(tmp_path):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")

    def boom(f):
        f.write(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_write_uses_umask_permissions(tmp_path):
    path = atomic_write(tmp_path / "y.bin", lambda f: f.write(b"1"))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_remove_stale_parts_only_removes_dead_writers(tmp_path):
    dead = tmp_path / ".a.png.999999999.x1y2z3w4.part"  # atomic_write's pattern, writer gone
    live = tmp_path / f".b.png.{os.getpid()}.z3abcdef.part"
    other = tmp_path / ".notes.part"
    for f in (dead, live, other):
        f.write_bytes(b"partial")
    assert remove_stale_parts(tmp_path) == [dead]
    assert not dead.exists() and live.exists() and other.exists()


def test_remove_stale_parts_only_ours_only_there(tmp_path):
    """Only temporaries of the named targets, only in the folder itself: a user's look-alike
    file for another name, and one in a sub-folder, are left alone."""
    ours = tmp_path / ".a.png.999999999.abcd1234.part"
    theirs = tmp_path / ".notes.txt.999999999.abcd1234.part"
    below = tmp_path / "sub" / ".a.png.999999999.abcd1234.part"
    below.parent.mkdir()
    for f in (ours, theirs, below):
        f.write_bytes(b"partial")
    assert remove_stale_parts(tmp_path, {"a.png"}) == [ours]
    assert theirs.exists() and below.exists()


def test_metadata_round_trip(tmp_path):
    im = Image.fromarray((np.random.default_rng(0).random((20, 30, 3)) * 80).astype(np.uint8))
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make
    icc = b"\x00" * 128  # opaque bytes are carried as-is
    im.save(tmp_path / "in.jpg", exif=exif.tobytes(), icc_profile=icc)
    src = read_image(tmp_path / "in.jpg")
    write_image(src, tmp_path / "out.jpg", source=src)
    out = Image.open(tmp_path / "out.jpg")
    assert out.getexif()[0x010F] == "TestCam" and out.info.get("icc_profile") == icc


def test_read_errors_are_one_line_and_name_the_file(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ImageReadError) as e:
        read_image(bad)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)


def test_quality_applies_to_webp(tmp_path):
    """--quality reaches WebP (Pillow's own default, 80, would otherwise be used whatever was asked)."""
    from zerodce.files.io import encode_image, takes_quality

    rng = np.random.default_rng(0)
    im = Image.fromarray((rng.random((48, 64, 3)) * 255).astype(np.uint8))
    low, high = encode_image(im, "WEBP", quality=10), encode_image(im, "WEBP", quality=95)
    assert len(low) < len(high) and encode_image(im, "WEBP", quality=80) not in (low, high)
    assert [takes_quality(f"a{s}") for s in (".jpg", ".jpeg", ".webp", ".heic", ".png", ".tif", ".bmp", ".mp4")] == [
        True, True, True, True, False, False, False, False
    ]  # fmt: skip
