from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "zerodce", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300
    )


@pytest.fixture
def photos(tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name, fmt in (("a.jpg", "JPEG"), ("b.png", "PNG"), ("sub/c.bmp", "BMP"), ("d.tif", "TIFF")):
        Image.fromarray((rng.random((21, 30, 3)) * 60).astype(np.uint8)).save(src / name, fmt)
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return src


def test_enhance_folder_end_to_end(photos, tmp_path, model_file):
    out = tmp_path / "out"
    # The plain model (no balance, no denoiser): this random model brightens every channel.
    r = run("enhance", photos, "-o", out, "--model", model_file, "--recursive", "--paper")
    assert r.returncode == 1, r.stderr  # one broken file
    assert "broken.jpg" in r.stdout and "enhanced 4, failed 1" in r.stdout
    for name in ("a.jpg", "b.png", "sub/c.bmp", "d.tif"):
        src, dst = Image.open(photos / name), Image.open(out / name)
        assert dst.format == src.format and dst.size == src.size
        assert np.asarray(dst).mean() > np.asarray(src).mean()
    assert not list(out.rglob("*.part")) and not (out / "broken.jpg").exists()


def test_enhance_exposure_option_sets_brightness(photos, tmp_path, model_file):
    from zerodce.evaluation.metrics import luma

    means = []
    for level in ("0.35", "0.6"):
        out = tmp_path / f"out{level}"
        opts = ["--exposure", level, "--metering", "mean", "--balance", "1"]
        r = run("enhance", photos / "b.png", "-o", out, "--model", model_file, *opts)
        assert r.returncode == 0, r.stderr
        rgb = np.asarray(Image.open(out / "b.png")).astype(np.float64)
        means.append(luma(rgb).mean() / 255)
        assert means[-1] == pytest.approx(float(level), abs=0.03)
    r = run("enhance", photos / "b.png", "-o", tmp_path / "bad", "--model", model_file, "--exposure", "1.5")
    assert r.returncode == 2 and "argument --exposure: exposure must be in (0, 1), got 1.5" in r.stderr


def test_preset_strength_and_paper_match_python_api(photos, tmp_path, model_file, small_model):
    from zerodce import enhance
    from zerodce.enhance import Enhancer

    src = np.asarray(Image.open(photos / "b.png"))
    cases = {
        "night": (["--preset", "night"], {"preset": "night"}),
        "half": (["--strength", "0.5"], {"strength": 0.5}),
        "paper": (["--paper"], {"paper": True}),
    }
    for name, (flags, kwargs) in cases.items():
        r = run("enhance", photos / "b.png", "-o", tmp_path / name, "--model", model_file, *flags)
        assert r.returncode == 0, r.stderr
        got = np.asarray(Image.open(tmp_path / name / "b.png"))
        assert np.array_equal(got, enhance(src, Enhancer(small_model, **kwargs))), name
    r = run("enhance", photos / "b.png", "-o", tmp_path / "x", "--model", model_file, "--preset", "vivid")
    assert r.returncode == 2 and "invalid choice: 'vivid'" in r.stderr and "natural" in r.stderr
    r = run("enhance", photos / "b.png", "-o", tmp_path / "x", "--model", model_file, "--strength", "1.5")
    assert r.returncode == 2 and "argument --strength: strength must be in [0, 1], got 1.5" in r.stderr


def test_options_that_would_do_nothing_say_so(photos, tmp_path, model_file):
    for flags, words in (
        (["--paper", "--exposure", "0.5"], "exposure: no effect with paper=True"),
        (["--paper", "--metering", "centre", "--preset", "night"], "preset, metering: no effect with paper=True"),
        (["--denoise", "0", "--denoiser", "learned"], "denoiser 'learned': no effect with denoise 0"),
    ):
        r = run("enhance", photos / "b.png", "-o", tmp_path / "x", "--model", model_file, *flags)
        assert r.returncode == 2 and words in r.stderr, (flags, r.stderr)
        assert not (tmp_path / "x" / "b.png").exists()


def test_enhance_png_matches_python_api(photos, tmp_path, model_file, small_model):
    from zerodce import enhance

    r = run("enhance", photos / "b.png", "-o", tmp_path / "o", "--model", model_file)
    assert r.returncode == 0, r.stderr
    expected = enhance(np.asarray(Image.open(photos / "b.png")), small_model)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o" / "b.png")), expected)


def test_enhance_learned_denoiser_matches_python_api(photos, tmp_path, model_file, small_model):
    from zerodce import enhance
    from zerodce.enhance import Enhancer

    r = run("enhance", photos / "b.png", "-o", tmp_path / "o", "--model", model_file, "--denoiser", "learned")
    assert r.returncode == 0, r.stderr
    expected = enhance(np.asarray(Image.open(photos / "b.png")), Enhancer(small_model, denoiser="learned"))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o" / "b.png")), expected)
    r = run("enhance", photos / "b.png", "-o", tmp_path / "bad", "--model", model_file, "--denoiser", "nlm")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_enhance_metering_matches_python_api(photos, tmp_path, model_file, small_model):
    from zerodce import enhance
    from zerodce.enhance import Enhancer

    opts = ["--exposure", "0.46", "--metering", "centre"]
    r = run("enhance", photos / "b.png", "-o", tmp_path / "o", "--model", model_file, *opts)
    assert r.returncode == 0, r.stderr
    enh = Enhancer(small_model, exposure=0.46, metering="centre")
    expected = enhance(np.asarray(Image.open(photos / "b.png")), enh)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o" / "b.png")), expected)
    r = run("enhance", photos / "b.png", "-o", tmp_path / "bad", "--model", model_file, "--metering", "spot")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_glob_suffix_and_existing_outputs(photos, tmp_path, model_file):
    out = tmp_path / "g"
    r = run("enhance", str(photos / "*.png"), "-o", out, "--model", model_file, "--suffix", "_lit")
    assert r.returncode == 0 and (out / "b_lit.png").is_file()
    r = run("enhance", photos / "b.png", "-o", out, "--model", model_file, "--suffix", "_lit")
    assert r.returncode == 1 and "1 already there (use --skip-existing or --overwrite)" in r.stdout
    r = run("enhance", photos / "b.png", "-o", out, "--model", model_file, "--suffix", "_lit", "--skip-existing")
    assert r.returncode == 0 and "skipped 1" in r.stdout


def test_rerun_beside_the_originals_never_enhances_its_own_outputs(tmp_path, model_file):
    """-o the input folder with --suffix, run again (plain, --overwrite, --skip-existing): x_lit.jpg is
    this run's output of x.jpg, never a new input (no x_lit_lit.jpg), and each rerun says so once."""
    folder = tmp_path / "side"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for name in ("x.jpg", "y.png"):
        Image.fromarray((rng.random((12, 16, 3)) * 60).astype(np.uint8)).save(folder / name)
    names = {"x.jpg", "y.png", "x_lit.jpg", "y_lit.png"}
    r = run("enhance", folder, "-o", folder, "--suffix", "_lit", "--model", model_file, "-q")
    assert r.returncode == 0 and {p.name for p in folder.iterdir()} == names
    first = (folder / "x_lit.jpg").read_bytes()
    r = run("enhance", folder, "-o", folder, "--suffix", "_lit", "--model", model_file, "-q")
    assert r.returncode == 1 and "2 already there" in r.stdout and "failed 0" in r.stdout, r.stdout
    for extra in ("--overwrite", "--skip-existing"):
        r = run("enhance", folder, "-o", folder, "--suffix", "_lit", "--model", model_file, "-q", extra)
        assert r.returncode == 0 and "failed 0" in r.stdout, r.stdout + r.stderr
        assert {p.name for p in folder.iterdir()} == names
    assert (folder / "x_lit.jpg").read_bytes() == first  # rewritten from x.jpg, the same result
    # The same with --format instead of --suffix: x.png is x.jpg's output, not a photo to enhance again.
    conv = tmp_path / "conv"
    conv.mkdir()
    (conv / "x.jpg").write_bytes((folder / "x.jpg").read_bytes())
    for expected_rc in (0, 1):
        r = run("enhance", conv, "-o", conv, "--format", "png", "--model", model_file, "-q")
        assert r.returncode == expected_rc and "failed 0" in r.stdout, r.stdout + r.stderr
    assert "1 already there" in r.stdout and {p.name for p in conv.iterdir()} == {"x.jpg", "x.png"}


def test_refuses_to_overwrite_input(photos, model_file):
    before = (photos / "b.png").read_bytes()
    r = run("enhance", photos / "b.png", "-o", photos, "--model", model_file)
    assert r.returncode == 2 and "add --suffix" in r.stderr and "--overwrite" not in r.stderr
    assert (photos / "b.png").read_bytes() == before


def test_missing_input_and_bad_model(tmp_path, model_file):
    r = run("enhance", tmp_path / "nope.jpg", "-o", tmp_path / "o", "--model", model_file)
    assert r.returncode == 1 and "nope.jpg" in r.stdout
    r = run("enhance", tmp_path / "nope.jpg", "-o", tmp_path / "o", "--model", tmp_path / "missing.safetensors")
    assert r.returncode == 2 and "no such weights file" in r.stderr


def test_convert_cli(tmp_path, small_model):
    sd = {"e_" + k: v for k, v in small_model.state_dict().items()}
    torch.save(sd, tmp_path / "Epoch99.pth")
    r = run("convert", tmp_path / "Epoch99.pth", tmp_path / "c.safetensors")
    assert r.returncode == 0, r.stderr
    from zerodce.weights import load_model

    conv = load_model(tmp_path / "c.safetensors")
    assert torch.equal(conv.state_dict()["conv7.weight"], -small_model.state_dict()["conv7.weight"])


def test_train_cli_tiny(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    for i in range(6):
        Image.fromarray(np.full((20, 20, 3), 10 * i + 5, np.uint8)).save(data / f"{i}.png")
    r = run("train", "--data", data, "--out", tmp_path / "run", "--epochs", "1", "--size", "16", "--quiet")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "run" / "model.safetensors").is_file() and (tmp_path / "run" / "log.csv").is_file()


def test_bundled_model_on_examples(tmp_path):
    from pathlib import Path

    from zerodce.presets import get_preset

    examples = Path(__file__).resolve().parents[1] / "examples"
    r = run("enhance", examples, "-o", tmp_path / "ex")
    assert r.returncode == 0, r.stderr
    assert "enhanced 3, failed 0" in r.stdout
    target = 255 * get_preset("natural").exposure
    for src in examples.glob("*.jpg"):
        before = np.asarray(Image.open(src).convert("L"), dtype=float).mean()
        after = np.asarray(Image.open(tmp_path / "ex" / src.name).convert("L"), dtype=float).mean()
        # The shipped model brightens real low-light photos towards the preset's level; the darker
        # the photo, the more (the do-no-harm factor eases off as a photo nears normal exposure).
        assert before + 5 < after < target + 25, src.name
        if before < 40:
            assert after > before + 40, src.name


def test_bad_input_corpus(tmp_path, model_file):
    from corpus import make_corpus

    expected = make_corpus(tmp_path / "corpus")
    out = tmp_path / "out"
    r = run("enhance", tmp_path / "corpus", "-o", out, "--model", model_file)
    assert r.returncode == 1
    n_bad = sum(not ok for ok in expected.values())
    assert f"enhanced {len(expected) - n_bad}, failed {n_bad}" in r.stdout
    failed_lines = [line for line in r.stdout.splitlines() if line.startswith("  failed: ")]
    assert len(failed_lines) == n_bad
    for name, ok in expected.items():
        if ok:
            assert (out / name).is_file(), name
        else:
            assert not (out / name).exists(), name
            assert sum(name in line for line in failed_lines) == 1, name
    assert "exceeds" in next(line for line in failed_lines if "bomb.png" in line)
    assert "empty file" in next(line for line in failed_lines if "empty.jpg" in line)
    # Properties of the awkward-but-valid ones.
    assert Image.open(out / "rotated.jpg").size == (40, 60)  # EXIF rotation applied, orientation reset
    assert Image.open(out / "rotated.jpg").getexif().get(0x0112, 1) == 1
    assert Image.open(out / "row.png").size == (300, 1) and Image.open(out / "one.png").size == (1, 1)
    src_alpha = np.asarray(Image.open(tmp_path / "corpus" / "rgba.png"))[..., 3]
    assert np.array_equal(np.asarray(Image.open(out / "rgba.png"))[..., 3], src_alpha)
    assert Image.open(out / "grey16.png").mode.startswith("I")  # 16-bit grey stays 16-bit grey
    assert not list(out.glob(".*.part"))


def test_killed_batch_leaves_no_partial_files_and_resumes(tmp_path, model_file):
    import os
    import signal
    import time

    src = tmp_path / "many"
    src.mkdir()
    rng = np.random.default_rng(3)
    for i in range(40):
        Image.fromarray((rng.random((300, 400, 3)) * 60).astype(np.uint8)).save(src / f"{i:02d}.png")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "zerodce", "enhance", str(src), "-o", str(out), "--model", str(model_file), "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*.png"))) < 3:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = sorted(p.name for p in out.glob("*.png"))
    assert 3 <= len(finished) < 40
    for name in finished:  # every file under a final name is complete
        with Image.open(out / name) as im:
            im.load()
    r = run("enhance", src, "-o", out, "--model", model_file, "--skip-existing")
    assert r.returncode == 0, r.stdout
    assert f"skipped {len(finished)}" in r.stdout
    assert len(list(out.glob("*.png"))) == 40 and not list(out.glob(".*.part"))
    fresh = tmp_path / "fresh"
    assert run("enhance", src / finished[0], "-o", fresh, "--model", model_file).returncode == 0
    assert (fresh / finished[0]).read_bytes() == (out / finished[0]).read_bytes()
