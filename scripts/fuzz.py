"""Long fuzzing run: mutated and random files through decode -> enhance -> encode, random arrays
through enhance, and mutated video containers (MP4, Matroska, AVI, MOV) through enhance_video.
Prints counts per outcome and exits 1 on any unexpected exception or hang (an input that takes
longer than --hang seconds).

Files are mutations of 8-bit seeds (PNG, JPEG, BMP, TIFF, GIF, WebP) and, for --share16 of them,
of 16-bit colour PNG and TIFF seeds (OpenCV and tifffile decoders; counted as "files16").

    .venv/bin/python scripts/fuzz.py [--files 10000] [--arrays 10000] [--videos 1000] [--seed 0] [--share16 0.4]
        [--hang 20]
"""

from __future__ import annotations

import argparse
import collections
import random
import signal
import sys
import time
import traceback
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test helpers
from support.fuzz import (  # noqa: E402
    array_target,
    bytes_target,
    seed_files,
    seed_files_16bit,
    tmpdir,
    video_seed_files,
    video_target,
)
from zerodce.enhance import Enhancer
from zerodce.model import DCENet, init_weights


class Hang(BaseException):
    """An input ran past --hang seconds (BaseException: no target's error handling catches it)."""


def _alarm(signum, frame):  # noqa: ANN001, ARG001
    raise Hang


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
        except Hang:
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
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--share16", type=float, default=0.4, help="share of files mutated from 16-bit seeds")
    p.add_argument("--hang", type=int, default=20, help="seconds after which one input counts as a hang")
    args = p.parse_args()
    net = DCENet()
    init_weights(net)
    enh = Enhancer(net, tile=None)
    rng, nrng = random.Random(args.seed), np.random.default_rng(args.seed)
    seeds16 = seed_files_16bit()
    seeds8, work = seed_files()[: -len(seeds16) or None], tmpdir()
    counts: collections.Counter[str] = collections.Counter()
    bad = hangs = 0
    slowest = 0.0
    signal.signal(signal.SIGALRM, _alarm)

    def guarded(label: str, target) -> None:  # noqa: ANN001
        nonlocal bad, hangs, slowest
        t = time.perf_counter()
        signal.alarm(args.hang)
        try:
            counts[label + target()] += 1
        except Hang:
            hangs += 1
            print(f"hang: {label} input ran past {args.hang} s")
        except Exception:  # noqa: BLE001 - counting unexpected failures is the point
            bad += 1
            traceback.print_exc(limit=3)
        finally:
            signal.alarm(0)
            slowest = max(slowest, time.perf_counter() - t)

    t0 = time.perf_counter()
    for _ in tqdm(range(args.files), desc="files", unit="input"):
        high = bool(seeds16) and rng.random() < args.share16
        data = mutate(rng, seeds16 if high else seeds8)
        suffix = rng.choice([".png", ".tif"] if high else [".png", ".jpg", ".tif", ".bmp", ".gif", ".webp"])
        guarded("files16: " if high else "files: ", lambda: bytes_target(data, enh, work, suffix))  # noqa: B023
    for _ in tqdm(range(args.arrays), desc="arrays", unit="input"):
        a = random_array(nrng)
        guarded("arrays: ", lambda: array_target(a, enh))  # noqa: B023
    video_bad, video_hangs = fuzz_videos(args.videos, rng, enh, args.hang, counts) if args.videos else (0, 0)
    bad, hangs = bad + video_bad, hangs + video_hangs
    seconds = time.perf_counter() - t0
    for k, v in sorted(counts.items()):
        print(f"{k:<50} {v:>7}")
    print(f"{'unexpected exceptions':<50} {bad:>7}")
    print(f"{'hangs (> ' + str(args.hang) + ' s)':<50} {hangs:>7}")
    print(f"{args.files + args.arrays + args.videos} inputs in {seconds:.0f} s; slowest input {slowest:.2f} s")
    raise SystemExit(1 if bad or hangs else 0)


if __name__ == "__main__":
    main()
