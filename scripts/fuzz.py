"""Long fuzzing run: mutated and random files through decode -> enhance -> encode, random arrays
through enhance, and mutated video containers (MP4, Matroska, AVI, MOV) through enhance_video.
Prints counts per outcome and exits 1 on any unexpected exception or hang (an input that takes
longer than --hang-s).

    .venv/bin/python scripts/fuzz.py [--files 10000] [--arrays 10000] [--videos 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import collections
import random
import signal
import time
import traceback

import numpy as np
from tqdm import tqdm

from zerodce._fuzz import array_target, bytes_target, seed_files, tmpdir, video_seed_files, video_target
from zerodce.enhance import Enhancer
from zerodce.model import DCENet, init_weights


def mutate(rng: random.Random, seeds: list[bytes]) -> bytes:
    kind = rng.random()
    if kind < 0.1:
        return rng.randbytes(rng.randint(0, 400))
    data = bytearray(rng.choice(seeds))
    for _ in range(rng.randint(0, 8)):
        op = rng.random()
        i = rng.randrange(len(data)) if data else 0
        if op < 0.6 and data:
            data[i] = rng.randrange(256)
        elif op < 0.8:
            data[i:i] = rng.randbytes(rng.randint(1, 16))
        elif data:
            del data[i : i + rng.randint(1, 16)]
    if rng.random() < 0.3:
        data = data[: rng.randint(0, len(data))]
    return bytes(data)


def random_array(rng: np.random.Generator) -> np.ndarray:
    dtype = rng.choice([np.uint8, np.uint16, np.float32, np.float64, np.float16, np.int32, np.bool_])
    shape = tuple(int(s) for s in rng.integers(0, 10, size=rng.integers(1, 5)))
    with np.errstate(over="ignore", invalid="ignore"):  # huge values overflowing small dtypes are intended
        a = (rng.random(shape) * rng.choice([1.0, 255.0, 70000.0, 1e30]) - rng.choice([0.0, 0.5])).astype(dtype)
    if np.issubdtype(a.dtype, np.floating) and a.size and rng.random() < 0.2:
        a.flat[0] = rng.choice([np.nan, np.inf, -np.inf])
    return a


class _Hang(Exception):
    pass


def _alarm(signum, frame) -> None:  # noqa: ANN001
    raise _Hang


def fuzz_videos(n: int, rng: random.Random, enh: Enhancer, hang_s: int, counts: collections.Counter) -> tuple[int, int]:
    """Mutated video containers through enhance_video; returns (unexpected exceptions, hangs)."""
    seeds = video_seed_files()
    work = tmpdir()
    bad = hangs = 0
    slowest = 0.0
    signal.signal(signal.SIGALRM, _alarm)
    for _ in tqdm(range(n), desc="videos", unit="input"):
        suffix, _ = rng.choice(seeds)
        data = mutate(rng, [d for _, d in seeds])
        t = time.perf_counter()
        signal.alarm(hang_s)
        try:
            counts["videos: " + video_target(data, enh, work, rng.choice([suffix, suffix, ".mp4", ".mkv"]))] += 1
        except _Hang:
            hangs += 1
            print(f"hang: an input took over {hang_s} s")
        except Exception:  # noqa: BLE001 - counting unexpected failures is the point
            bad += 1
            traceback.print_exc(limit=3)
        finally:
            signal.alarm(0)
        slowest = max(slowest, time.perf_counter() - t)
    counts["videos: slowest input (ms)"] = int(slowest * 1000)
    return bad, hangs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=10_000)
    p.add_argument("--arrays", type=int, default=10_000)
    p.add_argument("--videos", type=int, default=1000)
    p.add_argument("--hang-s", type=int, default=60, help="an input taking longer than this is a hang")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    net = DCENet()
    init_weights(net)
    enh = Enhancer(net, tile=None)
    rng, nrng = random.Random(args.seed), np.random.default_rng(args.seed)
    seeds, work = seed_files(), tmpdir()
    counts: collections.Counter[str] = collections.Counter()
    bad = 0
    t0 = time.perf_counter()
    for _ in tqdm(range(args.files), desc="files", unit="input"):
        data = mutate(rng, seeds)
        suffix = rng.choice([".png", ".jpg", ".tif", ".bmp", ".gif", ".webp"])
        try:
            counts["files: " + bytes_target(data, enh, work, suffix)] += 1
        except Exception:  # noqa: BLE001 - counting unexpected failures is the point
            bad += 1
            traceback.print_exc(limit=3)
    for _ in tqdm(range(args.arrays), desc="arrays", unit="input"):
        try:
            counts["arrays: " + array_target(random_array(nrng), enh)] += 1
        except Exception:  # noqa: BLE001
            bad += 1
            traceback.print_exc(limit=3)
    video_bad, hangs = fuzz_videos(args.videos, rng, enh, args.hang_s, counts) if args.videos else (0, 0)
    bad += video_bad
    seconds = time.perf_counter() - t0
    for k, v in sorted(counts.items()):
        print(f"{k:<42} {v:>7}")
    print(f"{'unexpected exceptions':<42} {bad:>7}")
    print(f"{'hangs (over ' + str(args.hang_s) + ' s)':<42} {hangs:>7}")
    print(f"{args.files + args.arrays + args.videos} inputs in {seconds:.0f} s")
    raise SystemExit(1 if bad or hangs else 0)


if __name__ == "__main__":
    main()
