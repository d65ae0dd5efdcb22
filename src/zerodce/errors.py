"""Exceptions every layer shares (torch-free)."""

from __future__ import annotations

__all__ = ["WeightsError", "TORCH_HINT", "needs_torch"]

# How to add PyTorch to a light install (pinned: an unpinned torch may pull a multi-GB CUDA build).
TORCH_HINT = "scripts/setup.sh torch, or: pip install torch==2.13.0 && pip install -e '.[torch]'"


def needs_torch(what: str) -> str:
    """The one-line message for ``what`` (e.g. ``"--device cuda"``) in an install without PyTorch."""
    return f"{what} runs on PyTorch, which is not installed; add it with {TORCH_HINT}"


class WeightsError(ValueError):
    """A weights file is unreadable, unsafe, or does not match the architecture it declares."""
