"""Start-up: ``import zerodce`` and the CLI's parser stay torch-free; the lazy public names resolve
to what eager imports gave (each check in a fresh interpreter, whose import state is its own)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _run(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_import_help_and_options_do_not_import_torch():
    res = _run(
        "import sys, zerodce, zerodce.apps.cli\n"
        "zerodce.apps.cli.build_parser().format_help()\n"
        "args = zerodce.apps.cli.build_parser().parse_args(['enhance', 'x.jpg', '-o', 'o', '--preset', 'night',\n"
        "    '--strength', '0.5', '--tile', '64', '--precision', 'bf16', '--model', 'fast'])\n"
        "assert zerodce.apps.cli.options_from_args(args).tile == 64\n"
        "print(sorted(m for m in ('torch', 'onnxruntime', 'onnx') if m in sys.modules))"
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


@pytest.mark.parametrize("first", ["import zerodce", "from zerodce.enhance import Enhancer", "import zerodce.enhance"])
def test_public_names_after_any_first_import(first):
    # The submodule zerodce.enhance shares its name with the function zerodce.enhance: whichever is
    # imported first, the package attribute is the function, as it was with eager imports.
    res = _run(
        f"{first}\n"
        "import inspect, zerodce\n"
        "from zerodce import Enhancer, enhance\n"
        "import zerodce.enhance as mod\n"
        "assert inspect.isfunction(enhance) and inspect.isfunction(zerodce.enhance) and mod is enhance, enhance\n"
        "assert inspect.isclass(Enhancer) and Enhancer.__module__ == 'zerodce.torch_enhance'\n"
        "assert all(getattr(zerodce, n) is not None for n in zerodce.__all__)\n"
        "assert set(zerodce.__all__) <= set(dir(zerodce))\n"
        "try:\n    zerodce.no_such_name\nexcept AttributeError:\n    pass\nelse:\n    raise SystemExit('no error')\n"
    )
    assert res.returncode == 0, res.stderr
