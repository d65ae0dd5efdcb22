"""Throughput of batch enhancement (local loop vs Ray with 1 and 2 workers) and of training
(1 vs 2 DistributedDataParallel processes), measured one after the other in one invocation.

    .venv/bin/python benchmarks/throughput.py --images ../shared/data/real-lowlight/DICM \
        --train-data ../shared/data/sice-part1 [--train-steps 15]

Enhancement figures include decoding and encoding (JPEG, quality 95) but not model loading or
Ray start-up; training figures are the images/s that `zerodce train` logs for its timed steps.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _local(images: str, out: Path) -> float:
    from zerodce._runtime import tune_allocator
    from zerodce.enhance import Enhancer
    from zerodce.files.batch import enhance_file, plan_jobs

    tune_allocator()
    jobs = plan_jobs([images], out)
    enhancer = Enhancer("zerodce")
    t = time.perf_counter()
    for job in jobs:
        enhance_file(job, enhancer)
    return len(jobs) / (time.perf_counter() - t)


def _ray(images: str, out: Path, workers: int) -> float:
    import ray

    from zerodce.apps.cluster import enhance_on_ray
    from zerodce.files.batch import plan_jobs
    from zerodce.options import Options

    cpus = os.cpu_count() or 2
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    try:
        jobs = plan_jobs([images], out)
        enhance_on_ray(jobs[:workers], Options(), workers=workers, threads_per_worker=cpus // workers)  # warm-up
        for j in jobs[:workers]:
            j.dst.unlink()
        t = time.perf_counter()
        results = enhance_on_ray(jobs, Options(), workers=workers, threads_per_worker=cpus // workers, batch_size=2)
        rate = len(jobs) / (time.perf_counter() - t)
        assert all(s == "done" for _, s, _ in results)
        return rate
    finally:
        ray.shutdown()


def _train(data: str, out: Path, nproc: int, steps: int) -> float:
    cmd = [sys.executable, "-m", "zerodce", "train", "--data", data, "--out", str(out), "--epochs", "1",
           "--max-steps", str(steps), "--quiet"]  # fmt: skip
    if nproc > 1:
        cmd += ["--nproc", str(nproc)]
    subprocess.run(cmd, check=True, capture_output=True)
    rows = list(csv.DictReader(open(out / "log.csv")))
    return float(rows[-1]["images_per_s"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", required=True)
    p.add_argument("--train-data", default=None)
    p.add_argument("--train-steps", type=int, default=15)
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows.append(("enhance, local loop (2 threads)", _local(args.images, tmp / "local")))
        rows.append(("enhance, Ray 1 worker (2 threads)", _ray(args.images, tmp / "ray1", 1)))
        rows.append(("enhance, Ray 2 workers (1 thread each)", _ray(args.images, tmp / "ray2", 2)))
        if args.train_data:
            rows.append(("train, 1 process (2 threads)", _train(args.train_data, tmp / "t1", 1, args.train_steps)))
            rows.append(("train, 2 DDP processes (1 thread each)", _train(args.train_data, tmp / "t2", 2,
                                                                           args.train_steps)))  # fmt: skip
    print(f"{'configuration':<42} {'images/s':>9} {'ratio':>7}")
    for name, rate in rows:
        base = rows[0][1] if name.startswith("enhance") else rows[3][1]
        print(f"{name:<42} {rate:>9.2f} {rate / base:>6.2f}x")


if __name__ == "__main__":
    main()
