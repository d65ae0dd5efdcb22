"""Enhancing files: one file (:func:`enhance_file`) and the plan for a batch (:func:`plan_jobs`).

Shared by the local CLI and the Ray path, so both name outputs, refuse overwrites, skip existing
outputs and report failures in exactly the same way.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from .data import IMAGE_EXTENSIONS
from .enhance import Enhancer, enhance
from .io import read_image, write_image

__all__ = ["Job", "plan_jobs", "enhance_file", "error_line"]

INPUT_EXTENSIONS = IMAGE_EXTENSIONS | {".webp", ".gif"}


@dataclass(frozen=True)
class Job:
    """One input file and where its output goes."""

    src: Path
    dst: Path


def _local(item: str) -> str:
    """``file://`` URIs become paths; other schemes are refused (mount them as a shared filesystem)."""
    parsed = urlparse(item)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    if parsed.scheme and len(parsed.scheme) > 1:
        raise ValueError(f"{item}: only local paths and file:// URIs are supported")
    return item


def plan_jobs(items: list[str], out_dir: Path, suffix: str = "", recursive: bool = False) -> list[Job]:
    """Expand files, folders (mirrored below ``out_dir`` with ``recursive``) and glob patterns."""
    found: list[tuple[Path, Path]] = []
    for item in items:
        p = Path(_local(item))
        if p.is_dir():
            pattern = "**/*" if recursive else "*"
            for f in sorted(p.glob(pattern)):
                if f.is_file() and f.suffix.lower() in INPUT_EXTENSIONS:
                    found.append((f, f.relative_to(p)))
        elif not p.exists() and glob.has_magic(str(p)):
            for f in sorted(glob.glob(str(p), recursive=recursive)):
                if Path(f).is_file():
                    found.append((Path(f), Path(Path(f).name)))
        else:
            found.append((p, Path(p.name)))  # a missing file is reported as a failure; the batch goes on
    return [Job(src, out_dir / rel.parent / f"{rel.stem}{suffix}{rel.suffix}") for src, rel in found]


def enhance_file(
    job: Job, enhancer: Enhancer, *, overwrite: bool = False, skip_existing: bool = False, quality: int = 95
) -> str:
    """Enhance one file; returns ``"done"`` or ``"skipped"``, raises with a message naming the file."""
    if job.dst.resolve() == job.src.resolve() and not overwrite:
        raise ValueError(f"{job.src}: output would overwrite the input (use --suffix or --overwrite)")
    if job.dst.exists() and not overwrite:
        if skip_existing:
            return "skipped"
        raise FileExistsError(f"{job.src}: output {job.dst} exists (use --overwrite or --skip-existing)")
    im = read_image(job.src)
    write_image(enhance(im, enhancer), job.dst, source=im, quality=quality)
    return "done"


def error_line(job: Job, exc: BaseException) -> str:
    """One line naming the file and what went wrong."""
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return msg if str(job.src) in msg else f"{job.src}: {msg}"
