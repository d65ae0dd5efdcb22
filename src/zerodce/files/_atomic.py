"""Atomic file writes: a temporary file in the destination folder, fsync, then rename."""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
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


class NameTakenError(FileExistsError):
    """An exclusive :func:`atomic_write` found its name taken when its temporary was complete."""


_EXCLUSIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("zerodce_exclusive_writes", default=False)


@contextlib.contextmanager
def exclusive_writes(on: bool = True) -> Iterator[None]:
    """Within it (this thread or task), :func:`atomic_write` calls that do not say ``exclusive``
    create their file only where none exists: the batch sets it around the writers below it
    (images, 16-bit images, videos) when it must not replace outputs."""
    token = _EXCLUSIVE.set(on)
    try:
        yield
    finally:
        _EXCLUSIVE.reset(token)


# Where os.link cannot make a hard link (FAT, exFAT, some network shares): the name is claimed with O_EXCL instead.
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK}


def _create_new(tmp: str, path: Path) -> None:
    """Give the finished temporary ``tmp`` the name ``path`` only if no file has that name.

    ``os.replace`` would silently replace a file another process wrote meanwhile (two runs into one
    folder); ``os.link`` fails instead (EEXIST), atomically, and the temporary's name is dropped after.
    """
    taken = f"{path}: written meanwhile by another process (not replaced)"
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise NameTakenError(taken) from None
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        try:  # an empty placeholder, then the rename over it: readers may see it empty, never partial
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            raise NameTakenError(taken) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object], *, exclusive: bool | None = None) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path`` and rename it over ``path`` when done.

    Readers never see a partial file, and an interrupted write leaves only a hidden ``.*.part``
    file that is removed on any Python-level error. The result gets the usual ``0o666 & ~umask``
    permissions (``mkstemp`` alone would make it private).

    ``exclusive`` (default: as :func:`exclusive_writes` says, else False): never replace a file
    that exists when the temporary is complete; :class:`NameTakenError` then, and no file of ours
    is left.
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
        if _EXCLUSIVE.get() if exclusive is None else exclusive:
            _create_new(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, payload: bytes, *, exclusive: bool | None = None) -> Path:
    """Write ``payload`` to ``path`` atomically, and check that all of it reached the file.

    Raises:
        OSError: the disk is full (or a file-size limit was hit): no file is left, not even a part.
    """

    def write(f: BinaryIO) -> None:
        f.write(payload)  # buffered: short writes are retried, ENOSPC raises
        f.flush()
        size = os.fstat(f.fileno()).st_size
        if size != len(payload):
            raise OSError(errno.ENOSPC, f"only {size} of {len(payload)} bytes reached the disk")

    return atomic_write(path, write, exclusive=exclusive)


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
