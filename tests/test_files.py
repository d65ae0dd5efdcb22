"""Faithful photo files through the CLI: 16-bit stays 16-bit, metadata kept, --format/--suffix/--overwrite."""

from __future__ import annotations

import functools
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from zerodce.weights import save_weights


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "zerodce", *map(str, args)], capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def model(tmp_path, small_model):
    return save_weights(small_model, tmp_path / "m.safetensors")


@functools.lru_cache(maxsize=1)
def _srgb_icc() -> bytes:
    """One profile for the whole test run (the profile embeds its creation time)."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _exif(make="ZeroCam", orientation=None) -> Image.Exif:
    exif = Image.Exif()
    exif[271] = make
    exif[272] = "Night 1"
    if orientation:
        exif[0x0112] = orientation
    return exif


def _dark16(h=24, w=32, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((h, w, channels)) * 9000 + 300).astype(np.uint16)


def test_tiff16_roundtrip_keeps_depth_icc_and_exif(tmp_path, model):
    tifffile = pytest.importorskip("tifffile")
    arr = _dark16()
    src = tmp_path / "in" / "dark.tif"
    src.parent.mkdir()
    icc = _srgb_icc()
    tifffile.imwrite(src, arr, photometric="rgb", iccprofile=icc, extratags=[(271, "s", 0, "ZeroCam", True)],
                     description="a dark street", software="ZeroCam firmware 2")  # fmt: skip
    r = run("enhance", src, "-o", tmp_path / "out", "--model", model, "--paper")
    assert r.returncode == 0, r.stderr
    assert "not writing" not in r.stderr  # tifffile dropped the description and software tags, warning
    out = tifffile.imread(tmp_path / "out" / "dark.tif")
    assert out.dtype == np.uint16 and out.shape == arr.shape
    from zerodce import enhance
    from zerodce.enhance import Enhancer

    want = enhance(arr, Enhancer(model, paper=True))
    assert np.array_equal(out, want)  # the full 16-bit result, not 8 bits scaled up
    assert len(np.unique(out)) > 1000
    with Image.open(tmp_path / "out" / "dark.tif") as im:
        assert im.info.get("icc_profile") == icc
        tags = im.getexif()
        assert tags.get(271) == "ZeroCam" and tags.get(270) == "a dark street" and tags.get(305) == "ZeroCam firmware 2"


def test_png16_rgb_keeps_depth_and_metadata(tmp_path, model):
    pytest.importorskip("cv2")
    from zerodce.files.highbit import HighBitImage, read_rgb16, write_rgb16

    arr = _dark16(channels=4)
    src = tmp_path / "dark.png"
    exif = _exif()
    write_rgb16(HighBitImage(arr, "PNG", _srgb_icc(), exif.tobytes()), src)
    back = read_rgb16(src)
    assert np.array_equal(back.pixels, arr) and back.icc_profile == _srgb_icc()
    r = run("enhance", src, "-o", tmp_path / "out", "--model", model)
    assert r.returncode == 0, r.stderr
    out = read_rgb16(tmp_path / "out" / "dark.png")
    assert out.pixels.dtype == np.uint16 and out.pixels.shape == arr.shape
    assert np.array_equal(out.pixels[..., 3], arr[..., 3])  # alpha untouched
    from zerodce import enhance
    from zerodce.enhance import Enhancer

    assert np.array_equal(out.pixels, enhance(arr, Enhancer(model)))
    with Image.open(tmp_path / "out" / "dark.png") as im:
        assert im.getexif().get(271) == "ZeroCam" and im.info.get("icc_profile") == _srgb_icc()


def test_grey16_png_stays_grey16(tmp_path, model):
    arr = _dark16(channels=1)[..., 0]
    Image.fromarray(arr).save(tmp_path / "g.png")
    r = run("enhance", tmp_path / "g.png", "-o", tmp_path / "out", "--model", model)
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "out" / "g.png") as im:
        assert im.mode.startswith("I") and np.asarray(im).max() > 255


def test_jpeg_exif_orientation_applied_and_reset(tmp_path, model):
    rng = np.random.default_rng(1)
    Image.fromarray((rng.random((20, 40, 3)) * 60).astype(np.uint8)).save(
        tmp_path / "r.jpg", exif=_exif(orientation=6), icc_profile=_srgb_icc()
    )
    r = run("enhance", tmp_path / "r.jpg", "-o", tmp_path / "out", "--model", model)
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "out" / "r.jpg") as im:
        assert im.size == (20, 40)  # rotated upright
        exif = im.getexif()
        assert exif.get(0x0112) == 1 and exif.get(271) == "ZeroCam"
        assert im.info.get("icc_profile") == _srgb_icc()


def test_format_suffix_and_overwrite_conventions(tmp_path, model):
    rng = np.random.default_rng(2)
    src = tmp_path / "p.png"
    Image.fromarray((rng.random((16, 16, 3)) * 60).astype(np.uint8)).save(src)
    r = run("enhance", src, "-o", tmp_path, "--model", model)
    assert r.returncode == 2 and "would replace their input" in r.stderr  # same folder, no suffix: refused
    r = run("enhance", src, "-o", tmp_path, "--model", model, "--format", "webp", "--suffix", "_dce", "--quality", "80")
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "p_dce.webp").format == "WEBP"
    r = run("enhance", src, "-o", tmp_path, "--model", model, "--format", "webp", "--suffix", "_dce")
    assert r.returncode == 1 and "1 already there" in r.stdout
    r = run("enhance", src, "-o", tmp_path, "--model", model, "--format", "gif")
    assert r.returncode == 2 and "unknown --format" in r.stderr


def test_heic_input(tmp_path, model):
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    rng = np.random.default_rng(3)
    Image.fromarray((rng.random((32, 48, 3)) * 60).astype(np.uint8)).save(tmp_path / "n.heic", quality=90)
    r = run("enhance", tmp_path / "n.heic", "-o", tmp_path / "out", "--model", model, "--format", "jpeg")
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "out" / "n.jpg") as im:
        assert im.size == (48, 32)
    # and HEIC out, by name (it was only by keeping a HEIC input's format: --format heic was unknown)
    r = run("enhance", tmp_path / "out" / "n.jpg", "-o", tmp_path / "back", "--model", model, "--format", "heic")
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "back" / "n.heic") as im:
        assert im.format == "HEIF" and im.size == (48, 32)


def test_a_folder_without_recursive_says_which_sub_folders_it_did_not_read(tmp_path, caplog):
    """Sub-folders were left out silently without --recursive; the output folder inside the input
    folder (a rerun's) is not one of them, and --recursive reads them all and says nothing."""
    import logging

    from zerodce.files.batch import plan_jobs

    root = tmp_path / "trip"
    for name in ("a.jpg", "day2/b.jpg", "day3/c.jpg", ".thumbs/t.jpg"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4)).save(root / name)
    (root / "lit").mkdir()  # the output folder, inside the input folder
    with caplog.at_level(logging.INFO, logger="zerodce"):
        jobs = plan_jobs([str(root)], root / "lit")
    assert [j.src.name for j in jobs] == ["a.jpg"]
    notes = [r.getMessage() for r in caplog.records if "sub-folder" in r.getMessage()]
    assert notes == [f"{root}: 2 sub-folders not read (--recursive reads them)"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="zerodce"):
        jobs = plan_jobs([str(root)], root / "lit", recursive=True)
    assert sorted(j.src.name for j in jobs) == ["a.jpg", "b.jpg", "c.jpg", "t.jpg"]
    assert not [r for r in caplog.records if "sub-folder" in r.getMessage()]
