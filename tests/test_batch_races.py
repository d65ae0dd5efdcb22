"""Two runs into one output folder, and output folders with symbolic links in them (issue 26).

The other run is simulated in-process: the enhancement step writes the output's name itself, as a
second ``zerodce enhance`` into the same ``-o`` would between this run's check and its write.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

import zerodce.files.batch as batch
from zerodce.files.batch import Job, enhance_file, enhance_files, plan_jobs

THEIRS = b"the other run's output"


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "in" / "a.png"
    path.parent.mkdir()
    Image.fromarray(np.full((12, 16, 3), 40, np.uint8)).save(path)
    return path


@pytest.fixture
def other_run_writes_meanwhile(monkeypatch):
    """enhance() that, before returning, lets 'another process' write every job's output."""
    targets: list = []

    def enhance(img, _enhancer):
        for dst in targets:
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(THEIRS)
        return img

    monkeypatch.setattr(batch, "enhance", enhance)
    return targets


@pytest.mark.parametrize("many", [False, True], ids=["enhance_file", "enhance_files"])
def test_a_name_written_meanwhile_is_never_replaced(tmp_path, photo, other_run_writes_meanwhile, many):
    """Without --overwrite both runs wrote, the later replacing the earlier's output. The later one
    now fails, naming the file, and the earlier output stays as it was; no part file is left."""
    job = Job(photo, tmp_path / "out" / "a.png")
    other_run_writes_meanwhile.append(job.dst)
    if many:
        ((_, status, error),) = enhance_files([job], None)
        assert status == "failed"
    else:
        with pytest.raises(FileExistsError) as err:
            enhance_file(job, None)
        error = str(err.value)
    assert "written by another process meanwhile; kept" in error and str(photo) in error
    assert job.dst.read_bytes() == THEIRS
    assert sorted(p.name for p in job.dst.parent.iterdir()) == ["a.png"]


def test_skip_existing_skips_a_name_written_meanwhile(tmp_path, photo, other_run_writes_meanwhile):
    job = Job(photo, tmp_path / "out" / "a.png")
    other_run_writes_meanwhile.append(job.dst)
    assert enhance_file(job, None, skip_existing=True) == "skipped"
    assert job.dst.read_bytes() == THEIRS


def test_overwrite_replaces_a_name_written_meanwhile(tmp_path, photo, other_run_writes_meanwhile):
    job = Job(photo, tmp_path / "out" / "a.png")
    other_run_writes_meanwhile.append(job.dst)
    assert enhance_file(job, None, overwrite=True) == "done"
    with Image.open(job.dst) as im:
        assert im.size == (16, 12)  # ours, whole


def test_a_symlinked_subfolder_of_the_output_is_refused_before_any_write(tmp_path, photo):
    """--recursive mirrors sub-folders under -o; one that was a link to elsewhere sent the writes
    outside -o. Refused at planning, nothing written anywhere."""
    (photo.parent / "sub").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(photo.parent / "sub" / "b.png")
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    os.symlink(elsewhere, out / "sub")
    with pytest.raises(ValueError, match=r"outputs would go outside it \(.*sub is a symbolic link to .*elsewhere\)"):
        plan_jobs([str(photo.parent)], out, recursive=True)
    assert list(elsewhere.iterdir()) == []


def test_a_symlinked_subfolder_inside_the_output_is_fine(tmp_path, photo):
    (photo.parent / "sub").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(photo.parent / "sub" / "b.png")
    out = tmp_path / "out"
    (out / "real").mkdir(parents=True)
    os.symlink(out / "real", out / "sub")
    jobs = plan_jobs([str(photo.parent)], out, recursive=True)
    assert sorted(str(j.dst.relative_to(out)) for j in jobs) == ["a.png", "sub/b.png"]


def test_a_dangling_link_at_the_output_name_is_not_written_through(tmp_path, photo):
    """An output name that is a symbolic link (dangling or not) counts as existing."""
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(tmp_path / "nowhere.png", out / "a.png")
    with pytest.raises(FileExistsError, match="exists"):
        enhance_file(Job(photo, out / "a.png"), None)
    assert not (tmp_path / "nowhere.png").exists()
