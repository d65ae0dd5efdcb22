"""Batch enhancement on a local Ray instance with 2 workers equals the local CLI, file for file."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from zerodce.files.batch import plan_jobs
from zerodce.options import Options
from zerodce.weights import save_weights

pytest.importorskip("ray")


def test_ray_matches_local_cli(tmp_path, small_model):
    from zerodce.apps.cluster import enhance_on_ray

    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(9)
    for i in range(6):
        fmt = ("PNG", "JPEG", "BMP")[i % 3]
        ext = {"PNG": "png", "JPEG": "jpg", "BMP": "bmp"}[fmt]
        Image.fromarray((rng.random((18 + i, 25, 3)) * 70).astype(np.uint8)).save(src / f"{i}.{ext}", fmt)
    (src / "truncated.png").write_bytes((src / "0.png").read_bytes()[:60])
    model = save_weights(small_model, tmp_path / "m.safetensors")

    local = tmp_path / "local"
    r = subprocess.run([sys.executable, "-m", "zerodce", "enhance", str(src), "-o", str(local), "--model", str(model)],
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 1 and "truncated.png" in r.stdout

    jobs = plan_jobs([str(src)], tmp_path / "ray")
    results = enhance_on_ray(jobs, Options(model=str(model)), workers=2, batch_size=2)
    status = {job.src.name: (s, e) for job, s, e in results}
    assert status["truncated.png"][0] == "failed" and "truncated.png" in status["truncated.png"][1]
    assert sum(s == "done" for s, _ in status.values()) == 6
    for job, s, _ in results:
        if s == "done":
            assert job.dst.read_bytes() == (local / job.dst.name).read_bytes(), job.dst.name
    assert not list((tmp_path / "ray").glob(".*.part"))


def test_ray_path_carries_every_option(tmp_path, monkeypatch):
    """The CLI's --ray path hands the one Options (device, backend, precision, controls) and --smooth to
    the actors, and an actor gets its enhancer from pipeline(options) and passes smooth to each file."""
    import importlib
    import pickle

    import zerodce.apps.cluster
    from zerodce.apps.cli import main

    enhance_module = importlib.import_module("zerodce.enhance")  # the module, not the function of that name
    seen: dict = {}

    def fake_on_ray(jobs, options, **kwargs):  # noqa: ANN001, ANN202
        seen.update(kwargs, jobs=jobs, options=options)
        return [(j, "done", "") for j in jobs]

    monkeypatch.setattr(zerodce.apps.cluster, "enhance_on_ray", fake_on_ray)
    Image.new("RGB", (8, 8), (20, 20, 20)).save(tmp_path / "a.png")
    argv = [str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--ray", "--smooth", "0.3", "--preset", "night"]
    assert main(["enhance", *argv, "--backend", "torch", "--precision", "bf16", "--tile", "64", "--quiet"]) == 0
    expected = Options(preset="night", backend="torch", precision="bf16", tile=64)
    assert seen["smooth"] == 0.3 and seen["options"] == expected and seen["options"].device == "cpu"

    made, calls = [], []
    monkeypatch.setattr(enhance_module, "pipeline", lambda options: made.append(options) or "enhancer")
    monkeypatch.setattr(zerodce.apps.cluster, "enhance_file", lambda job, enh, **kw: calls.append((enh, kw)) or "done")
    options = pickle.loads(pickle.dumps(Options(preset="night", device="cuda:1")))  # as Ray ships it
    actor = zerodce.apps.cluster._EnhanceActor(options, 1, {"smooth": 0.3})
    actor({"src": np.array([str(tmp_path / "a.png")]), "dst": np.array([str(tmp_path / "b.png")])})
    assert made == [Options(preset="night", device="cuda:1")] and calls == [("enhancer", {"smooth": 0.3})]
