"""The CLI explains itself: --version, ``zerodce models``, help on every option, usage errors,
--backend / --precision, video progress totals, outputs already there, -o onto the inputs."""

from __future__ import annotations

import argparse
import logging
import re

import numpy as np
import pytest
from PIL import Image

from support.cli import run_cli as _exit
from zerodce import __version__
from zerodce.apps.cli import _subparsers, build_parser
from zerodce.weights import BUNDLED_MODELS, bundled_path, load_model


@pytest.fixture
def photo(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray((rng.random((12, 16, 3)) * 60).astype(np.uint8)).save(src / name)
    return src


def test_version(capsys):
    code, out, _ = _exit(["--version"], capsys)
    assert code == 0 and out.strip() == f"zerodce {__version__}"


def _options(parser: argparse.ArgumentParser):  # noqa: ANN202
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction) and a.help != argparse.SUPPRESS]


def test_every_option_of_every_command_has_help_and_one_true_default():
    parser = build_parser()
    commands = _subparsers(parser)
    assert {"enhance", "serve", "models", "export", "train", "convert", "evaluate"} <= set(commands)
    for name, sub in commands.items():
        formatter = sub._get_formatter()
        for action in _options(sub):
            label = f"{name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help and action.help.strip(), f"{label}: no help"
            text = formatter._expand_help(action)  # %(default)s filled in, as --help prints it
            assert text.count("default") <= 1, f"{label}: default stated more than once: {text}"
            if action.default not in (None, False, [], "", argparse.SUPPRESS) and action.option_strings:
                # an option with a value of its own says what it is, and says it right
                assert f"default: {action.default}" in text, f"{label}: default {action.default!r} not stated: {text}"


def test_help_runs_for_every_command(capsys):
    for name in _subparsers(build_parser()):
        code, out, _ = _exit([name, "--help"], capsys)
        assert code == 0 and out.startswith(f"usage: zerodce {name}"), name
    code, out, _ = _exit(["enhance", "--help"], capsys)
    assert "{natural,bright,night}" in out and "--port" not in out
    code, out, _ = _exit(["serve", "--help"], capsys)
    assert re.search(r"--port PORT\s+TCP port \(default: 8000\)", out), out


def test_denoise_help_agrees_with_the_enhancer(small_model):
    """The --denoise help's numbers are those the Enhancer resolves, for every preset and denoiser."""
    from zerodce.enhance import Enhancer
    from zerodce.presets import PRESETS

    enhance = _subparsers(build_parser())["enhance"]
    text = next(a.help for a in enhance._actions if a.dest == "denoise")
    said = dict(re.findall(r"(\w+) (\d+(?:\.\d+)?)", text.split("default:")[1].split("), or")[0]))
    other = float(re.search(r"or (\d+(?:\.\d+)?) when --denoiser is not the preset's", text).group(1))
    for name, preset in PRESETS.items():
        assert float(said[name]) == Enhancer(small_model, preset=name).denoise, name
        for d in ("guided", "learned"):
            enh = Enhancer(small_model, preset=name, denoiser=d)
            assert enh.denoise == (float(said[name]) if d == preset.denoiser else other), (name, d)


def test_models_lists_each_bundled_model(capsys):
    code, out, _ = _exit(["models"], capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == len(BUNDLED_MODELS)
    for line, name in zip(lines, BUNDLED_MODELS, strict=True):
        net = load_model(name)
        params = sum(p.numel() for p in net.parameters() if p.requires_grad)
        assert line.split()[0] == name and net.config.arch in line, line
        assert f"{params:,} parameters" in line, line
        assert f"{bundled_path(name).stat().st_size / 1000:.1f} kB" in line, line


MODEL_COMMANDS = [
    ["enhance", "x.jpg", "-o", "o"],
    ["serve"],
    ["export", "-o", "m.onnx"],
    ["evaluate", "--low", "d"],
    ["train", "--data", "d", "--out", "r", "--teacher"],
]


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_unknown_model_lists_the_names(command, capsys, monkeypatch):
    import zerodce.apps.cli

    for name in ("_cmd_enhance", "_cmd_serve", "_cmd_export", "_cmd_evaluate", "_cmd_train"):
        # a regression must fail here, not serve forever
        monkeypatch.setattr(zerodce.apps.cli, name, lambda args: pytest.fail("ran with an unknown model"))
    flag = [] if command[-1] == "--teacher" else ["--model"]
    code, _, err = _exit([*command, *flag, "fastt"], capsys)
    assert code == 2
    error = [line for line in err.splitlines() if "error:" in line]
    assert len(error) == 1, err
    assert "unknown model 'fastt'" in error[0] and "did you mean 'fast'" in error[0]
    assert all(name in error[0] for name in BUNDLED_MODELS) and "a path to a .safetensors file" in error[0]
    assert err.startswith(f"usage: zerodce {command[0]} "), err


def test_model_paths_still_reach_the_loader(tmp_path, capsys):
    code, _, err = _exit(["enhance", tmp_path / "x.jpg", "-o", tmp_path / "o", "--model", tmp_path / "no.safetensors"],
                         capsys)  # fmt: skip
    assert code == 2 and "no such weights file" in err and "usage:" not in err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["enhance", "x.jpg", "-o", "o", "--bogus"], "unrecognized arguments: --bogus"),
        (["enhance", "x.jpg", "-o", "o", "--prest", "night"], "--prest night (did you mean --preset?)"),
        (["serve", "--max-uplaod-mb=5"], "(did you mean --max-upload-mb?)"),
        (["enhance", "x.jpg"], "required: -o/--output"),
        (["serve", "--port", "eighty"], "invalid int value: 'eighty'"),
        (["train", "--data", "d", "--out", "r", "--epochs", "1", "extra"], "unrecognized arguments: extra"),
        (["convert", "a.pth"], "required: dst"),
    ],
)
def test_usage_errors_show_the_commands_usage(argv, words, capsys):
    code, _, err = _exit(argv, capsys)
    assert code == 2 and words in err
    # two lines: the command's short usage (argparse's whole usage was 11 lines above the error)
    usage, error = err.rstrip("\n").split("\n")
    assert usage.startswith(f"usage: zerodce {argv[0]} [options]") and usage.endswith(f"zerodce {argv[0]} --help)")
    assert error.startswith(f"zerodce {argv[0]}: error: ") and words in error


def test_verbose_after_the_command(model_file, photo, tmp_path, capsys):
    code, out, _ = _exit(["enhance", photo / "a.png", "-o", tmp_path / "o", "--model", model_file, "-v", "-q"], capsys)
    assert code == 0 and "enhanced 1" in out


@pytest.mark.parametrize(
    ("flags", "used"),
    [
        (["--backend", "torch"], ("torch", "fp32")),
        (["--backend", "onnxruntime"], ("onnxruntime", "fp32")),
        (["--precision", "bf16"], ("torch", "bf16")),
    ],
)
def test_backend_and_precision_reach_the_enhancer(flags, used, model_file, small_model, photo, tmp_path, capsys,
                                                  monkeypatch):  # fmt: skip
    from importlib import import_module

    from zerodce import enhance
    from zerodce.enhance import Enhancer

    if "onnxruntime" in flags:
        pytest.importorskip("onnxruntime")
    seen = []

    class Spy(Enhancer):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            seen.append((self.backend, self.precision))

    monkeypatch.setattr(import_module("zerodce.torch_enhance"), "Enhancer", Spy)  # what pipeline() builds
    code, _, err = _exit(["enhance", photo / "a.png", "-o", tmp_path / "o", "--model", model_file, *flags], capsys)
    assert code == 0, err
    assert seen == [used]
    monkeypatch.undo()  # enhance() checks isinstance against the module's Enhancer
    kwargs = {flags[0].lstrip("-"): flags[1]}
    expected = enhance(np.asarray(Image.open(photo / "a.png")), Enhancer(small_model, **kwargs))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o" / "a.png")), expected)


def test_int8_with_other_weights_is_one_error(model_file, photo, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    code, _, err = _exit(["enhance", photo, "-o", tmp_path / "o", "--model", model_file, "--precision", "int8"], capsys)
    assert code == 2 and "int8 precision needs a quantised graph" in err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_outputs_already_there_are_reported_once(model_file, photo, tmp_path, capsys):
    out = tmp_path / "o"
    code, _, _ = _exit(["enhance", photo / "a.png", photo / "b.png", "-o", out, "--model", model_file, "-q"], capsys)
    assert code == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    code, stdout, stderr = _exit(["enhance", photo, "-o", out, "--model", model_file, "-q"], capsys)
    assert code == 1
    assert "enhanced 1, failed 0" in stdout  # c.png is new
    assert stdout.count("already there") == 1 and "2 already there (use --skip-existing or --overwrite)" in stdout
    assert "exists" not in stdout + stderr and "failed:" not in stdout
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name in before} == before
    code, stdout, _ = _exit(["enhance", photo, "-o", out, "--model", model_file, "-q"], capsys)
    assert code == 1 and "enhanced 0, failed 0" in stdout and "3 already there" in stdout
    code, stdout, _ = _exit(["enhance", photo, "-o", out, "--model", model_file, "-q", "--skip-existing"], capsys)
    assert code == 0 and "skipped 3" in stdout and "already there" not in stdout


def test_output_folder_equal_to_input_suggests_suffix(model_file, photo, capsys):
    before = {p.name: p.read_bytes() for p in photo.iterdir()}
    code, stdout, err = _exit(["enhance", photo, "-o", photo, "--model", model_file, "-q"], capsys)
    assert code == 2 and "--suffix" in err and "--overwrite" not in err
    assert err.count("error:") == 1 and "3 output(s)" in err
    assert {p.name: p.read_bytes() for p in photo.iterdir()} == before
    code, _, err = _exit(["enhance", photo, "-o", photo, "--model", model_file, "-q", "--suffix", "_lit"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in photo.glob("*_lit.png")) == ["a_lit.png", "b_lit.png", "c_lit.png"]


def test_video_progress_shows_the_frame_total(model_file, tmp_path, capsys):
    pytest.importorskip("av")
    from support.clips import synthetic_clip
    from zerodce.apps.video import video_frames

    clip = synthetic_clip(tmp_path / "clip.mp4", frames=12, size=(32, 24))
    assert video_frames(clip) == 12
    assert video_frames(tmp_path / "missing.mp4") is None
    code, out, err = _exit(["enhance", clip, "-o", tmp_path / "o", "--model", model_file], capsys)
    assert code == 0, err
    assert "12/12 frames" in err and "enhanced 1, failed 0" in out


def _warnings(caplog) -> list[str]:  # noqa: ANN001
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize(
    ("flags", "warning"),
    [
        (["--smooth", "0.5"], "--smooth: no effect, no video among the inputs"),
        (["--quality", "80"], "--quality: no effect, no output is JPEG, WebP or HEIC"),
        (["--quality", "80", "--format", "tiff"], "--quality: no effect, no output is JPEG, WebP or HEIC"),
        (["--workers", "3"], "--workers: no effect without --ray"),
    ],
)
def test_an_option_without_effect_is_one_warning(flags, warning, model_file, photo, tmp_path, capsys, caplog):
    with caplog.at_level(logging.WARNING):
        code, out, err = _exit(["enhance", photo / "a.png", "-o", tmp_path / "o", "--model", model_file, "-q", *flags],
                               capsys)  # fmt: skip
    assert code == 0 and "enhanced 1" in out, err
    said = _warnings(caplog)
    assert len(said) == 1 and said[0].startswith(warning), said


def test_options_with_effect_warn_nothing(model_file, photo, tmp_path, capsys, caplog):
    with caplog.at_level(logging.WARNING):
        flags = ["--quality", "80", "--format", "jpeg"]  # a JPEG output: the quality applies
        code, _, err = _exit(["enhance", photo / "a.png", "-o", tmp_path / "o", "--model", model_file, "-q", *flags],
                             capsys)  # fmt: skip
    assert code == 0, err
    assert _warnings(caplog) == []


def test_overwrite_with_skip_existing_is_one_error(model_file, photo, tmp_path, capsys):
    argv = ["enhance", photo, "-o", tmp_path / "o", "--model", model_file, "--overwrite", "--skip-existing"]
    code, out, err = _exit(argv, capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("error: --overwrite and --skip-existing contradict each other")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--tile", "8"], "argument --tile: tile must be auto, none or an integer >= 16, got 8"),
        (["--tile", "big"], "argument --tile: tile must be auto, none or an integer >= 16, got 'big'"),
        (["--denoise", "11"], "argument --denoise: denoise strength must be in [0, 10], got 11.0"),
        (["--smooth", "1"], "argument --smooth: must be in [0, 1), got 1"),
    ],
)
def test_bad_option_values_are_usage_errors(flags, words, capsys):
    code, _, err = _exit(["enhance", "x.jpg", "-o", "o", *flags], capsys)
    assert code == 2 and words in err and err.startswith("usage: zerodce enhance"), err
    usage = "usage: zerodce enhance [options] -o OUTPUT inputs ... (all options: zerodce enhance --help)"
    assert err.splitlines() == [usage, f"zerodce enhance: error: {words}"]
