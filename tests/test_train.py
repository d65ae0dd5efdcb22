from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from zerodce.training.train import TrainConfig, train
from zerodce.weights import load_model


@pytest.fixture(scope="module")
def dark_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("dark")
    rng = np.random.default_rng(0)
    for i in range(20):
        base = rng.random((1, 1, 3)) * 0.15 + 0.02
        img = np.clip(base + rng.random((48, 48, 3)) * 0.1, 0, 1)
        Image.fromarray((img * 255).astype(np.uint8)).save(root / f"{i:02d}.png")
    return root


def _weights(path):
    return load_file(str(path))


def test_training_lowers_loss_and_writes_run(dark_folder, tmp_path):
    cfg = TrainConfig(data=dark_folder, out=tmp_path / "run", epochs=8, batch_size=4, size=32, lr=1e-3, seed=3)
    path = train(cfg)
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert len(rows) == 8
    first, last = rows[0], rows[-1]
    assert float(last["heldout_loss"]) < 0.8 * float(first["heldout_loss"])
    assert float(last["train_loss"]) < float(first["train_loss"])
    for name in ("split.json", "loss_curve.png", "checkpoint.pt", "config.json"):
        assert (tmp_path / "run" / name).is_file(), name
    net = load_model(path)
    x = torch.full((1, 3, 16, 16), 0.1)
    with torch.no_grad():
        assert float(net(x)[0].mean()) > 0.1  # it learned to brighten


def test_split_is_seeded_and_disjoint(dark_folder, tmp_path):
    import json

    a = TrainConfig(data=dark_folder, out=tmp_path / "a", epochs=1, size=16, seed=5, max_steps=1)
    b = TrainConfig(data=dark_folder, out=tmp_path / "b", epochs=1, size=16, seed=5, max_steps=1)
    train(a)
    train(b)
    sa, sb = (json.loads((tmp_path / n / "split.json").read_text()) for n in "ab")
    assert sa["train"] == sb["train"] and sa["test"] == sb["test"]
    assert not set(sa["train"]) & set(sa["test"]) and len(sa["test"]) == 4


def test_resume_equals_uninterrupted(dark_folder, tmp_path):
    kw = dict(data=dark_folder, epochs=3, batch_size=4, size=24, seed=1)
    full = train(TrainConfig(out=tmp_path / "full", **kw))
    train(TrainConfig(out=tmp_path / "part", **{**kw, "epochs": 1}))
    with pytest.raises(FileExistsError):
        train(TrainConfig(out=tmp_path / "part", **kw))
    resumed = train(TrainConfig(out=tmp_path / "part", resume=True, **kw))
    wf, wr = _weights(full), _weights(resumed)
    assert all(torch.equal(wf[k], wr[k]) for k in wf)
    assert len(list(csv.DictReader(open(tmp_path / "part" / "log.csv")))) == 3


def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(8)
    for i in range(40):
        Image.fromarray((rng.random((96, 96, 3)) * 60).astype(np.uint8)).save(data / f"{i:02d}.png")
    args = ["--data", str(data), "--epochs", "3", "--batch-size", "4", "--size", "96", "--seed", "4", "--quiet"]
    base = [sys.executable, "-m", "zerodce", "train"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*base, *args, "--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not (killed / "epoch001.safetensors").exists():
        time.sleep(0.01)
    time.sleep(0.3)  # well inside epoch 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "model.safetensors").exists(), "the run finished before it could be killed"
    state = torch.load(killed / "checkpoint.pt", weights_only=True)  # never half-written: it loads
    assert state["epoch"] in (1, 2)
    assert subprocess.run([*base, *args, "--out", str(killed), "--resume"], capture_output=True).returncode == 0
    full = tmp_path / "full"
    assert subprocess.run([*base, *args, "--out", str(full)], capture_output=True).returncode == 0
    a, b = _weights(killed / "model.safetensors"), _weights(full / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert len(list(csv.DictReader(open(killed / "log.csv")))) == 3
    assert not list(killed.glob(".*.part"))


# ---------------------------------------------------------------- careless users (issue 16)


def _cli(*args, **kw):
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "zerodce", "train", *map(str, args), "--quiet"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


def _errors(r):
    """stderr without the run's log lines: what the user sees go wrong (a traceback would show here)."""
    return [line for line in r.stderr.splitlines() if not line.startswith(("INFO ", "WARNING "))]


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_train_refuses_a_folder_of_user_files(dark_folder, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_text('{"my": "settings"}')
    (out / "log.csv").write_text("date,weight\n")
    (out / "model.safetensors").write_bytes(b"my own model")
    before = _snapshot(out)
    r = _cli("--data", dark_folder, "--out", out, "--epochs", "1", "--size", "16")
    assert r.returncode == 1
    assert _errors(r) == [
        f"error: {out}: not empty and not a zerodce run (config.json, log.csv, model.safetensors); "
        "choose an empty or new --out, or pass --overwrite"
    ], r.stderr
    assert _snapshot(out) == before
    r = _cli("--data", dark_folder, "--out", out, "--epochs", "1", "--size", "16", "--overwrite")
    assert r.returncode == 0, r.stderr
    assert (out / "checkpoint.pt").is_file() and (out / "log.csv").read_text().startswith("epoch,")


def test_failed_run_leaves_nothing_that_blocks_the_next(dark_folder, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for i in range(3):
        (broken / f"{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = tmp_path / "run"
    r = _cli("--data", broken, "--out", out, "--epochs", "1", "--size", "16")
    assert r.returncode == 1
    assert _errors(r) == [f"error: {broken}: no readable training images (3 files could not be decoded)"], r.stderr
    assert not (out / "split.json").exists()
    r = _cli("--data", dark_folder, "--out", out, "--epochs", "1", "--size", "16")
    assert r.returncode == 0, r.stderr
    split = __import__("json").loads((out / "split.json").read_text())
    assert split["root"] == str(dark_folder) and len(split["train"]) + len(split["test"]) == 20


@pytest.mark.parametrize(
    "args,message",
    [
        (["--batch-size", "0"], "error: batch size must be >= 1, got 0"),
        (["--size", "0"], "error: size must be >= 16 (the exposure loss works on 16x16 patches), got 0"),
        (["--epochs", "0"], "error: epochs must be >= 1, got 0"),
        (["--held-out", "1.5"], "error: held-out fraction must be in [0, 1), got 1.5"),
    ],
)
def test_bad_training_arguments_are_one_line(dark_folder, tmp_path, args, message):
    r = _cli("--data", dark_folder, "--out", tmp_path / "run", *args)
    assert r.returncode == 2 and _errors(r) == [message], r.stderr
    assert not (tmp_path / "run").exists()


def test_empty_data_folder_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    r = _cli("--data", tmp_path / "empty", "--out", tmp_path / "run")
    assert r.returncode == 1
    assert _errors(r) == [f"error: {tmp_path / 'empty'}: no images (jpg, png, bmp, tif) found"], r.stderr


@pytest.fixture(scope="module")
def one_epoch_run(dark_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("r") / "run"
    r = _cli("--data", dark_folder, "--out", out, "--epochs", "1", "--size", "16", "--batch-size", "4")
    assert r.returncode == 0, r.stderr
    return out


def _copy_run(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_resume_with_another_arch_is_one_line(dark_folder, one_epoch_run, tmp_path):
    out = _copy_run(one_epoch_run, tmp_path / "run")
    before = _snapshot(out)
    r = _cli("--data", dark_folder, "--out", out, "--epochs", "2", "--size", "16", "--resume", "--arch", "dcenet++")
    assert r.returncode == 1
    assert _errors(r) == [
        f"error: {out}: this run trains arch dcenet (scale 1); resume it with the same --arch and --scale"
    ], r.stderr
    assert _snapshot(out) == before


def test_resume_from_a_pickle_checkpoint_is_one_line(dark_folder, one_epoch_run, tmp_path):
    import pickle

    out = _copy_run(one_epoch_run, tmp_path / "run")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (out / "checkpoint.pt").write_bytes(pickle.dumps({"model": Evil()}))
    before = _snapshot(out)
    r = _cli("--data", dark_folder, "--out", out, "--epochs", "2", "--size", "16", "--resume")
    assert r.returncode == 1 and "pwned" not in r.stdout
    lines = _errors(r)
    assert len(lines) == 1 and lines[0].startswith(f"error: {out / 'checkpoint.pt'}: not a zerodce checkpoint"), lines
    assert _snapshot(out) == before


def test_disk_full_is_one_line_and_keeps_the_last_checkpoint(dark_folder, one_epoch_run, tmp_path):
    import resource

    out = _copy_run(one_epoch_run, tmp_path / "run")
    ckpt = (out / "checkpoint.pt").read_bytes()
    limit = len(ckpt) // 2  # every file the run writes from now on larger than this fails (EFBIG, as ENOSPC)

    def small_disk():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    r = _cli("--data", dark_folder, "--out", out, "--epochs", "2", "--size", "16", "--batch-size", "4", "--resume",
             preexec_fn=small_disk)  # fmt: skip
    assert r.returncode == 1
    assert _errors(r) == [
        f"error: {out}: cannot write the run (File too large); its last checkpoint is intact: "
        "free some space and rerun with --resume"
    ], r.stderr
    assert (out / "checkpoint.pt").read_bytes() == ckpt and not list(out.glob(".*.part"))
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 1


def test_one_image_trains_without_a_nan_heldout_loss_and_says_why(tmp_path, caplog):
    """A folder of one image held none out, and the log and weights said heldout_loss nan with no
    word. Now no held-out loss is recorded at all, and one warning says why."""
    import json
    import logging
    import math

    from safetensors import safe_open

    root = tmp_path / "one"
    root.mkdir()
    Image.fromarray(np.full((32, 32, 3), 30, np.uint8)).save(root / "only.png")
    with caplog.at_level(logging.WARNING, logger="zerodce.training.train"):
        path = train(TrainConfig(data=root, out=tmp_path / "run", epochs=1, batch_size=1, size=16, max_steps=1))
    said = [r.getMessage() for r in caplog.records if "held" in r.getMessage()]
    assert len(said) == 1 and "too few to hold any out" in said[0] and "1 image," in said[0]
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert rows and all(not r.get("heldout_loss") for r in rows)
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    assert "zerodce.heldout_loss" not in meta
    assert math.isfinite(float(rows[-1]["train_loss"]))
    assert json.loads(meta["zerodce.training.train"])["held_out"] == 0.2
