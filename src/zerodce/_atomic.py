"""Atomic file writes: a temporary file in the destination folder, fsync, then rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path`` and rename it over ``path`` when done.

    Readers never see a partial file, and an interrupted write leaves only a hidden ``.*.part``
    file that is removed on any Python-level error. The result gets the usual ``0o666 & ~umask``
    permissions (``mkstemp`` alone would make it private).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(payload))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_parts(folder: str | Path) -> list[Path]:
    """Delete ``.*.part`` temporaries under ``folder`` left by writers that no longer run (killed).

    A temporary's name carries its writer's process id; files of live processes are left alone.
    """
    removed = []
    root = Path(folder)
    if not root.is_dir():
        return removed
    for f in root.rglob(".*.part"):
        fields = f.name[: -len(".part")].rsplit(".", 2)
        if len(fields) == 3 and fields[1].isdigit() and not _pid_alive(int(fields[1])):
            f.unlink(missing_ok=True)
            removed.append(f)
    return removed
