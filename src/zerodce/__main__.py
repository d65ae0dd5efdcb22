"""``python -m zerodce`` (and ``torchrun -m zerodce``) runs the command-line interface."""

from __future__ import annotations

from .apps.cli import run

run()
