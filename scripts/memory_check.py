"""Peak memory of `zerodce enhance` on one large image (issue 16: 81 MP under the 100 MP limit).

Writes an 81 MP (9000x9000) dark gradient as an 8-bit JPEG and a 16-bit RGB PNG, enhances each
with the CLI in a child process and prints its peak RSS (wait4), with the bundled model and defaults.
The inputs are made in a process of their own: a child's ru_maxrss counts the memory of the process
it was forked from, so the measuring process must stay small.

    .venv/bin/python scripts/memory_check.py [--side 9000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_inputs(folder: Path, side: int) -> list[Path]:
    y = np.linspace(0, 1, side, dtype=np.float32)[:, None]
    g = y * 0.5 + np.linspace(0, 1, side, dtype=np.float32)[None, :] * 0.5
    Image.fromarray(np.stack([g * 40 + 5, g * 50 + 5, g * 30 + 5], axis=2).astype(np.uint8)).save(
        folder / "big8.jpg", quality=90
    )
    paths = [folder / "big8.jpg"]
    try:
        import cv2
    except ImportError:
        return paths
    rgb16 = np.stack([g * 10000 + 300, g * 12000 + 300, g * 8000 + 300], axis=2).astype(np.uint16)
    cv2.imwrite(str(folder / "big16.png"), rgb16[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])
    return paths + [folder / "big16.png"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--side", type=int, default=9000)
    p.add_argument("--keep", type=Path, default=None, help="write the inputs and outputs here")
    p.add_argument("--make-inputs", type=Path, default=None, help=argparse.SUPPRESS)  # the helper process
    args = p.parse_args()
    if args.make_inputs is not None:
        print("\n".join(map(str, make_inputs(args.make_inputs, args.side))))
        return
    folder = args.keep or Path(tempfile.mkdtemp(prefix="zerodce-mem-"))
    folder.mkdir(parents=True, exist_ok=True)
    made = subprocess.run([sys.executable, __file__, "--side", str(args.side), "--make-inputs", str(folder)],
                          capture_output=True, text=True, check=True)  # fmt: skip
    for src in map(Path, made.stdout.split()):
        t = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "zerodce", "enhance", str(src), "-o", str(folder / "out"),
                                 "--overwrite", "-q"])  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        print(f"{src.name}: {args.side}x{args.side} exit {proc.returncode}, peak RSS "
              f"{usage.ru_maxrss / 2**20:.2f} GiB, {time.perf_counter() - t:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
