"""What a command says when an optional dependency is missing, and the errors a user meets first
(the output folder, an unknown model, --tile 0): one line naming the fix, never a traceback.

An extra is made missing by putting None in ``sys.modules`` (its import then raises
ModuleNotFoundError), so these run in any install, with or without the extras.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

import zerodce
from zerodce.apps.cli import main


def _cli(argv: list, capsys) -> tuple[int, str]:  # noqa: ANN001
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    return code, capsys.readouterr().err


@pytest.fixture
def photo(tmp_path):
    p = tmp_path / "in" / "dark.png"
    p.parent.mkdir()
    Image.fromarray(np.full((12, 16, 3), 20, np.uint8)).save(p)
    return p


@pytest.mark.parametrize(("module", "argv", "extra"), [
    ("uvicorn", ["serve", "--port", "1"], "serve"),
    ("fastapi", ["serve", "--port", "1"], "serve"),
    ("ray", ["enhance", "{photo}", "-o", "{out}", "--ray"], "ray"),
])  # fmt: skip
def test_a_command_without_its_extra_names_it(module, argv, extra, photo, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # the service imports both inside its functions
    argv = [a.format(photo=photo, out=tmp_path / "out") for a in argv]
    code, err = _cli(argv, capsys)
    assert code == 2, err
    assert f"the '{extra}' extra" in err and f"zerodce[{extra}]" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_16_bit_colour_png_without_opencv_fails_that_file_in_one_line(tmp_path, capsys, monkeypatch):
    # A 16-bit colour PNG (Pillow reads its header; its pixels need OpenCV, the 16bit extra).
    cv2 = pytest.importorskip("cv2", reason="writing the 16-bit test file needs OpenCV")
    src = tmp_path / "in"
    src.mkdir()
    raw = np.random.default_rng(0).integers(0, 65535, (6, 7, 3), dtype=np.uint16)
    Image.fromarray(np.full((6, 7, 3), 30, np.uint8)).save(src / "a.png")  # an 8-bit one beside it
    cv2.imwrite(str(src / "b16.png"), raw)
    monkeypatch.setitem(sys.modules, "cv2", None)
    code, err = _cli(["enhance", src, "-o", tmp_path / "out"], capsys)
    assert code == 1 and (tmp_path / "out" / "a.png").is_file(), err  # the batch went on
    line = next(x for x in err.splitlines() if "b16.png" in x)
    assert "the '16bit' extra" in line and "zerodce[16bit]" in line, err


def test_heif_output_without_pillow_heif_names_the_extra(tmp_path, capsys, monkeypatch):
    from zerodce.files import io

    src = tmp_path / "x.heic"  # JPEG data under a HEIC name: read by Pillow, written back as HEIF
    Image.fromarray(np.full((8, 8, 3), 20, np.uint8)).save(src, format="JPEG")
    monkeypatch.setattr(io, "heif_available", lambda: False)
    code, err = _cli(["enhance", src, "-o", tmp_path / "out"], capsys)
    assert code == 1 and "the 'heif' extra" in err and "Traceback" not in err, err


def test_evaluate_report_without_matplotlib_writes_the_tables(photo, tmp_path, capsys, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, err = _cli(["evaluate", "--low", photo.parent, "--method", "model:zerodce", "--report", tmp_path / "r"],
                     capsys)  # fmt: skip
    assert code == 0, err
    assert {p.name for p in (tmp_path / "r").iterdir()} == {"per_image.csv", "summary.json", "summary.md"}
    assert "'eval' extra" in caplog.text + err


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_an_unusable_output_folder_is_one_error_before_any_work(where, photo, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    out = blocker if where == "a file" else blocker / "sub"
    code, err = _cli(["enhance", photo, "-o", out], capsys)
    assert code == 2 and err.startswith(f"error: -o {out}: "), err
    assert len(err.strip().splitlines()) == 1 and blocker.read_text() == "not a folder"


def test_only_missing_inputs_fail_without_making_the_output_folder(photo, tmp_path, capsys):
    out = tmp_path / "out"
    code, err = _cli(["enhance", tmp_path / "nope.jpg", "-o", out], capsys)
    assert code == 1 and f"{tmp_path / 'nope.jpg'}: no such file" in err, err
    assert not out.exists()
    code, err = _cli(["enhance", tmp_path / "nope.jpg", photo, "-o", out, "-q"], capsys)  # one real: the batch runs
    assert code == 1 and (out / photo.name).is_file() and "nope.jpg: no such file" in err, err


def test_unknown_model_and_missing_weights_file_are_named_not_blamed_on_torch():
    img = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="unknown model 'nope'; choose zerodce, fast"):
        zerodce.enhance(img, model="nope")
    with pytest.raises(ValueError, match="no such weights file '/nonexistent/w.safetensors'"):
        zerodce.enhance(img, model="/nonexistent/w.safetensors")


def test_tile_zero_means_no_tiles_everywhere(photo, tmp_path, capsys):
    assert zerodce.Options(tile=0).tile is None and zerodce.Options.parse({"tile": "0"}).tile is None
    code, err = _cli(["enhance", photo, "-o", tmp_path / "o", "--tile", "0"], capsys)
    assert code == 0, err
    whole = zerodce.enhance(np.asarray(Image.open(photo)), tile=None)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o" / "dark.png")), whole)
