from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from zerodce.train import TrainConfig, train
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
