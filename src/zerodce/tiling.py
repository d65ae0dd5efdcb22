"""Tiling and cancellation shared by every pipeline (torch-free): how large a tile may be, and the
check the service's timeouts run between tiles and bands."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

__all__ = ["BYTES_PER_PIXEL", "auto_tile", "available_memory", "interruptible", "between_tiles", "RECEPTIVE_RADIUS"]

RECEPTIVE_RADIUS = 7  # DCE-Net: 7 chained 3x3 convolutions; pixels on each side that influence one output pixel

# Working memory of DCE-Net per pixel (activations of the 32-channel layers and their
# concatenations; onnxruntime's arena included), from peak RSS of untiled 1200x900 runs
# (benchmarks/speed.py): about 1.7 KB with onnxruntime, 1.9 KB with PyTorch. "auto" runs an image
# whole when that fits WHOLE_BUDGET, else in tiles that fit TILE_BUDGET (each also capped by a
# share of the memory available now).
BYTES_PER_PIXEL = {"onnxruntime": 1700, "torch": 1900}
WHOLE_BUDGET = (0.25, 2 * 2**30)
TILE_BUDGET = (0.10, 512 * 2**20)


def available_memory() -> int:
    """Bytes of memory available to this process (MemAvailable; 4 GiB when unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 * 2**30


def auto_tile(h: int, w: int, bytes_per_pixel: int = 1700, available: int | None = None) -> int | None:
    """Tile side for an h x w image given the memory available, or None when it runs whole.

    Example:
        >>> auto_tile(900, 1200, available=16 * 2**30), auto_tile(3000, 4000, available=16 * 2**30)
        (None, 512)
    """
    avail = available_memory() if available is None else available
    whole = min(int(avail * WHOLE_BUDGET[0]), WHOLE_BUDGET[1])
    if h * w * bytes_per_pixel <= whole:
        return None
    pixels = max(min(int(avail * TILE_BUDGET[0]), TILE_BUDGET[1]) // bytes_per_pixel, 64 * 64)
    return max(64, int(pixels**0.5) // 64 * 64)


# A check that this thread's enhancements call between tiles and bands; it raises to stop the work.
_BETWEEN_TILES: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar("tiles", default=None)


@contextlib.contextmanager
def interruptible(check: Callable[[], None]) -> Iterator[None]:
    """Call ``check()`` between the tiles and bands of every enhancement run inside this block.

    ``check`` raises (any exception) to abandon the enhancement; the exception propagates to the
    caller. Used by :mod:`zerodce.apps.service` to stop work whose request timed out.
    """
    token = _BETWEEN_TILES.set(check)
    try:
        yield
    finally:
        _BETWEEN_TILES.reset(token)


def between_tiles() -> None:
    check = _BETWEEN_TILES.get()
    if check is not None:
        check()
