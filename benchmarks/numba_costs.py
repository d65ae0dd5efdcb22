"""What the `fast` extra (numba) costs: its first compile, its load in every process, its disk size.

    python benchmarks/numba_costs.py --python .venv-light/bin/python

With the given interpreter (an install with numba), on a copy of ``src/`` whose numba cache is empty:

- ``first use``: a fresh process enhancing ``examples/lime1.jpg`` with both bundled models (defaults),
  which compiles every kernel it needs and writes numba's cache; then the same process again, loading
  them from the cache;
- ``load per process``: in a fresh process, the time from importing numba to every kernel loaded from
  the cache (``zerodce.core.kernels.warm()``: one call of each, on tiny arrays);
- ``disk``: ``du`` of numba and llvmlite in that interpreter's site-packages, and of the whole
  site-packages (the install with numba).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ENHANCE = f"""
import numpy as np, zerodce
from PIL import Image
img = np.asarray(Image.open({str(ROOT / "examples" / "lime1.jpg")!r}).convert("RGB"))
zerodce.enhance(img); zerodce.enhance(img, model="fast")
"""

LOAD = """
import time
t = time.perf_counter()
from zerodce.core import kernels
kernels.warm()  # every kernel once, on tiny arrays
print(time.perf_counter() - t)
"""


def _du(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--python", default=sys.executable, help="an install's interpreter, with numba")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("*.nbi", "*.nbc"))
        env = dict(os.environ, PYTHONPATH=str(src))
        for what in ("first use (compiles)", "again (numba's cache)"):
            t = time.perf_counter()
            subprocess.run([args.python, "-c", ENHANCE], check=True, env=env, capture_output=True)
            print(f"enhance lime1.jpg with both models, {what}: {time.perf_counter() - t:.1f} s")
        loads = [float(subprocess.run([args.python, "-c", LOAD], check=True, env=env, capture_output=True,
                                      text=True).stdout) for _ in range(3)]  # fmt: skip
        print(f"load per process (import numba .. kernels loaded from the cache): {min(loads):.2f} s (best of 3)")
    where = "import numba, pathlib; print(pathlib.Path(numba.__file__).parents[1])"
    site = Path(subprocess.run([args.python, "-c", where], check=True, capture_output=True, text=True).stdout.strip())
    numba_mb = _du(site / "numba") + _du(site / "llvmlite")
    print(f"disk: numba + llvmlite {numba_mb:.0f} MiB; this install's site-packages {_du(site):.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
