"""DistributedDataParallel training with 2 CPU processes (gloo) against one process."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from zerodce.training.train import TrainConfig, train

# 9 training images with a global batch of 4: steps of 4, 4 and 1 image, so the last step
# gives one rank nothing (the zero-weighted dummy path) and the shares are unequal.
ARGS = dict(epochs=2, batch_size=4, size=24, seed=2)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp-data")
    rng = np.random.default_rng(5)
    for i in range(11):
        Image.fromarray((rng.random((32, 32, 3)) * 70).astype(np.uint8)).save(root / f"{i:02d}.png")
    return root


def torchrun(data, out, *extra):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "zerodce",
           "train", "--data", str(data), "--out", str(out), "--quiet"]  # fmt: skip
    for key in ("epochs", "batch_size", "size", "seed"):
        cmd += ["--" + key.replace("_", "-"), str(ARGS[key])]
    cmd += list(extra)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0 and _killed_by_signal(r.stderr):
        # A worker killed by a signal (not a Python error) is resumed once, the recovery a user
        # would use: gloo has been seen to abort a worker on a loaded machine (about 1 run in 20,
        # not reproduced in isolation). The resumed weights must still equal the uninterrupted
        # run's bit for bit; training errors and wrong results still fail.
        warnings.warn(f"torchrun worker killed by a signal; resuming once:\n{_digest(r.stderr)}", stacklevel=2)
        resume = [] if "--resume" in cmd else ["--resume"]
        r = subprocess.run(cmd + resume, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, _digest(r.stderr)
    return out / "model.safetensors"


def _killed_by_signal(stderr: str) -> bool:
    codes = re.findall(r"exitcode\s*:\s*(-?\d+)", stderr)
    python_error = "Traceback (most recent call last)" in _workers(stderr)
    return bool(codes) and all(int(c) < 0 for c in codes) and not python_error


def _workers(stderr: str) -> str:
    """The workers' own output: stderr without the elastic agent's report and traceback."""
    keep = []
    for line in stderr.splitlines():
        if "torch/distributed/elastic" in line or "torch/distributed/run.py" in line:
            break
        keep.append(line)
    return "\n".join(keep)


def _digest(stderr: str) -> str:
    """What a failure shows: the workers' own lines (where a root cause is), then the agent's summary."""
    return (_workers(stderr)[-3000:] + "\n...\n" + stderr[-1500:]).strip()


@pytest.fixture(scope="module")
def single(data, tmp_path_factory):
    return load_file(str(train(TrainConfig(data=data, out=tmp_path_factory.mktemp("single") / "run", **ARGS))))


@pytest.fixture(scope="module")
def ddp(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "run"
    return load_file(str(torchrun(data, out))), out


def test_two_processes_match_one(single, ddp):
    weights, out = ddp
    # Same global batches, gradients equal up to float summation order: a few ulps of the weights.
    worst = max(float((weights[k] - single[k]).abs().max()) for k in single)
    assert worst < 1e-6, worst
    assert sum(float((weights[k] - single[k]).abs().sum()) for k in single) > 0 or worst == 0
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("epoch")) == [
        "epoch001.safetensors",
        "epoch002.safetensors",
    ]
    assert not list(out.glob(".*.part"))


def test_distributed_resume_is_exact(data, ddp, tmp_path):
    weights, _ = ddp
    out = tmp_path / "resumed"
    torchrun(data, out, "--epochs", "1")  # argparse keeps the last --epochs
    resumed = load_file(str(torchrun(data, out, "--resume")))
    assert all(torch.equal(resumed[k], weights[k]) for k in weights)
