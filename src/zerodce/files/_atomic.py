"""Atomic file writes: a temporary file in the destination folder, fsync, then rename."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO


def _umask() -> int:
    """The process's umask, read without changing it (Linux: /proc/self/status); elsewhere set and
    restored at once. Read per write, not at import: importing zerodce changes no process state."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
        os.chmod(tmp, 0o666 & ~_umask())
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


# atomic_write's temporaries: ".{name}.{pid}.{8 characters from mkstemp}.part"
_PART = re.compile(r"\.(?P<name>.+)\.(?P<pid>[0-9]+)\.[a-z0-9_]{8}\.part")


def remove_stale_parts(folder: str | Path, names: Iterable[str] | None = None) -> list[Path]:
    """Delete temporaries that :func:`atomic_write` left in ``folder`` (not below it) when its
    process was killed: only names of its exact pattern, whose writer no longer runs, and, given
    ``names``, only those for these target file names (the outputs a run is about to write).
    """
    removed: list[Path] = []
    root = Path(folder)
    if not root.is_dir():
        return removed
    wanted = None if names is None else set(names)
    for f in root.glob(".*.part"):
        m = _PART.fullmatch(f.name)
        if not m or (wanted is not None and m["name"] not in wanted) or not f.is_file() or f.is_symlink():
            continue
        if not _pid_alive(int(m["pid"])):
            f.unlink(missing_ok=True)
            removed.append(f)
    return removed
