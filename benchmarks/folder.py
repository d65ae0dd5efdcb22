"""Folder throughput: a plain sequential loop vs ``zerodce enhance``'s pipelined loop, same model.

    .venv/bin/python benchmarks/folder.py --images ../shared/data/real-lowlight/DICM

The sequential loop decodes, enhances and encodes each photo in turn (``enhance_file``); the
pipelined loop (``enhance_files``) decodes the next photo and encodes the previous one in threads
while the model runs. Both write JPEG quality 95; model loading is excluded. Runs alternate
(sequential, pipelined, sequential, pipelined) and the best of each is reported.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", required=True)
    p.add_argument("--model", default="zerodce")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()

    from zerodce._runtime import tune_allocator
    from zerodce.enhance import Enhancer
    from zerodce.files.batch import enhance_file, enhance_files, plan_jobs

    tune_allocator()
    enhancer = Enhancer(args.model)
    best = {"sequential": 0.0, "pipelined": 0.0}
    for _ in range(args.rounds):
        for mode in best:
            with tempfile.TemporaryDirectory() as tmp:
                jobs = plan_jobs([args.images], Path(tmp))
                t = time.perf_counter()
                if mode == "sequential":
                    for job in jobs:
                        enhance_file(job, enhancer)
                else:
                    enhance_files(jobs, enhancer)
                best[mode] = max(best[mode], len(jobs) / (time.perf_counter() - t))
    print(f"{len(jobs)} photos from {args.images}, model {args.model} ({enhancer.backend})")
    for mode, ips in best.items():
        print(f"  {mode:10s} {ips:.2f} images/s")
    print(f"  pipelined / sequential = {best['pipelined'] / best['sequential']:.2f}x")


if __name__ == "__main__":
    main()
