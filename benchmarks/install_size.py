"""What each install weighs on disk: the whole environment, and its largest packages.

    python benchmarks/install_size.py --python /tmp/vlight/bin/python --python .venv/bin/python

For each interpreter given (the environment it belongs to, e.g. a fresh ``pip install .`` for the
light install, and one with PyTorch), the size of the whole environment (``sys.prefix``: the packages,
pip, the interpreter's links) and of the packages that weigh most, in MiB of file contents.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

PACKAGES = ("onnxruntime", "numpy", "numpy.libs", "PIL", "pillow.libs", "zerodce", "threadpoolctl.py",
            "numba", "llvmlite", "torch")  # fmt: skip


def _du(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--python", action="append", default=None, help="an install's interpreter (repeatable)")
    args = p.parse_args()
    for py in args.python or [sys.executable]:
        where = "import sys, sysconfig; print(sys.prefix); print(sysconfig.get_paths()['purelib'])"
        prefix, site = subprocess.run([py, "-c", where], check=True, capture_output=True, text=True).stdout.split()
        parts = [f"{name} {_du(Path(site) / name):.1f}" for name in PACKAGES if (Path(site) / name).exists()]
        print(f"{py}: environment {_du(Path(prefix)):.0f} MiB ({'; '.join(parts)} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
