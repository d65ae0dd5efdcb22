"""Exceptions every layer shares (torch-free)."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["WeightsError", "MissingExtra", "TORCH_HINT", "needs_torch", "missing_extra", "require"]

# How to add PyTorch to a light install (pinned: an unpinned torch may pull a multi-GB CUDA build).
TORCH_HINT = "scripts/setup.sh torch, or: pip install torch==2.13.0 && pip install -e '.[torch]'"


def needs_torch(what: str) -> str:
    """The one-line message for ``what`` (e.g. ``"--device cuda"``) in an install without PyTorch."""
    return f"{what} runs on PyTorch, which is not installed; add it with {TORCH_HINT}"


class WeightsError(ValueError):
    """A weights file is unreadable, unsafe, or does not match the architecture it declares."""


# Optional modules -> the extra that installs them (pyproject.toml's optional-dependencies).
EXTRAS = {
    "uvicorn": "serve",
    "fastapi": "serve",
    "multipart": "serve",
    "python_multipart": "serve",
    "ray": "ray",
    "av": "video",
    "cv2": "16bit",
    "tifffile": "16bit",
    "pillow_heif": "heif",
    "matplotlib": "eval",
    "skimage": "eval",
    "numba": "fast",
}


class MissingExtra(RuntimeError):
    """An optional dependency is not installed; the message names the extra that adds it."""


def missing_extra(module: str | None, what: str) -> MissingExtra:
    """The one-line error for ``what`` (e.g. ``"zerodce serve"``) when ``module`` cannot be imported."""
    root = (module or "").split(".")[0]
    if root == "torch":
        return MissingExtra(needs_torch(what))
    extra = EXTRAS.get(root)
    if extra is None:
        return MissingExtra(f"{what} needs the Python module {root or module!r}, which is not installed")
    return MissingExtra(f"{what} needs the {extra!r} extra ({root} is not installed): scripts/setup.sh {extra}, "
                        f"or pip install 'zerodce[{extra}]'")  # fmt: skip


def require(module: str, what: str) -> ModuleType:
    """``module`` imported, or the one-line :class:`MissingExtra` for ``what`` naming the extra that adds it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise missing_extra(module, what) from None
