"""Exceptions every layer shares (torch-free)."""

from __future__ import annotations

__all__ = ["WeightsError"]


class WeightsError(ValueError):
    """A weights file is unreadable, unsafe, or does not match the architecture it declares."""
