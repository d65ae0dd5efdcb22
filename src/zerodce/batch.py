"""Enhancing files: one file (:func:`enhance_file`) and the plan for a batch (:func:`plan_jobs`).

Shared by the local CLI and the Ray path, so both name outputs, refuse overwrites, skip existing
outputs and report failures in exactly the same way.
"""

from __future__ import annotations

import glob
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from .data import IMAGE_EXTENSIONS
from .enhance import Enhancer, enhance
from .io import FORMATS, read_image, write_image
from .video import VIDEO_EXTENSIONS

__all__ = ["Job", "plan_jobs", "enhance_file", "enhance_files", "error_line"]

INPUT_EXTENSIONS = IMAGE_EXTENSIONS | {".webp", ".gif", ".heic", ".heif"} | VIDEO_EXTENSIONS


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


def plan_jobs(
    items: list[str], out_dir: Path, suffix: str = "", recursive: bool = False, fmt: str | None = None
) -> list[Job]:
    """Expand files, folders (mirrored below ``out_dir`` with ``recursive``) and glob patterns.

    ``fmt`` (a ``--format`` name) sets the output suffix of images; videos keep theirs.
    """
    if fmt is not None and fmt.lower() not in FORMATS:
        raise ValueError(f"unknown --format {fmt!r}; expected one of {sorted(FORMATS)}")
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

    def ext(rel: Path) -> str:
        if fmt is None or rel.suffix.lower() in VIDEO_EXTENSIONS:
            return rel.suffix
        return FORMATS[fmt.lower()][1]

    return [Job(src, out_dir / rel.parent / f"{rel.stem}{suffix}{ext(rel)}") for src, rel in found]


def enhance_file(
    job: Job,
    enhancer: Enhancer,
    *,
    overwrite: bool = False,
    skip_existing: bool = False,
    quality: int = 95,
    smooth: float = 0.8,
    progress: object = None,
) -> str:
    """Enhance one file; returns ``"done"`` or ``"skipped"``, raises with a message naming the file."""
    if _skip(job, overwrite, skip_existing):
        return "skipped"
    if job.src.suffix.lower() in VIDEO_EXTENSIONS:
        from .video import enhance_video

        enhance_video(job.src, job.dst, enhancer, smooth=smooth, progress=progress)  # type: ignore[arg-type]
        return "done"
    if _is_rgb16(job.src):
        return _enhance_rgb16(job, enhancer, quality)
    im = read_image(job.src)
    write_image(enhance(im, enhancer), job.dst, source=im, quality=quality)
    return "done"


def _skip(job: Job, overwrite: bool, skip_existing: bool) -> bool:
    """The output rules: never replace the input or an existing output unless asked; True = skip."""
    if job.dst.resolve() == job.src.resolve() and not overwrite:
        raise ValueError(f"{job.src}: output would overwrite the input (use --suffix or --overwrite)")
    if job.dst.exists() and not overwrite:
        if skip_existing:
            return True
        raise FileExistsError(f"{job.src}: output {job.dst} exists (use --overwrite or --skip-existing)")
    return False


def _is_rgb16(path: Path) -> bool:
    from PIL import Image

    from .highbit import is_rgb16

    try:
        with open(path, "rb") as f:
            head = f.read(32)
        if path.suffix.lower() in (".tif", ".tiff"):
            with Image.open(path) as im:
                return is_rgb16(head, im)
        return is_rgb16(head)
    except Exception:  # noqa: BLE001 - anything odd goes through the ordinary reader, which reports it
        return False


def _enhance_rgb16(job: Job, enhancer: Enhancer, quality: int) -> str:
    """16-bit colour PNG/TIFF: 16 bits in, 16 bits out (8 bits only when --format asks for JPEG etc.)."""
    import numpy as np
    from PIL import Image

    from .highbit import read_rgb16, write_rgb16
    from .io import output_format

    img = read_rgb16(job.src)
    img.pixels = enhance(img.pixels, enhancer)
    fmt = output_format(job.dst, img.format)
    if fmt in ("PNG", "TIFF"):
        img.format = fmt
        write_rgb16(img, job.dst)
        return "done"
    eight = Image.fromarray(np.rint(img.pixels[..., :3] / 257.0).astype(np.uint8), "RGB")
    source = Image.new("RGB", (1, 1))
    if img.icc_profile:
        source.info["icc_profile"] = img.icc_profile
    write_image(eight, job.dst, source=source, quality=quality)
    return "done"


def error_line(job: Job, exc: BaseException) -> str:
    """One line naming the file and what went wrong."""
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return msg if str(job.src) in msg else f"{job.src}: {msg}"


def enhance_files(
    jobs: list[Job],
    enhancer: Enhancer,
    *,
    overwrite: bool = False,
    skip_existing: bool = False,
    quality: int = 95,
    on_done: Callable[[Job, str, str], object] | None = None,
) -> list[tuple[Job, str, str]]:
    """Enhance image files with decoding and encoding overlapped with the model.

    One thread decodes the next image while the model runs on the current one, and another
    encodes and writes the previous result (Pillow releases the GIL in both); per file the
    checks, names and errors are those of :func:`enhance_file`. Returns ``(job, status, error)``.
    """
    from concurrent.futures import ThreadPoolExecutor

    results: list[tuple[Job, str, str]] = []

    def report(job: Job, status: str, msg: str) -> None:
        results.append((job, status, msg))
        if on_done:
            on_done(job, status, msg)

    def load(job: Job) -> tuple[str, object]:
        if _skip(job, overwrite, skip_existing):
            return "skipped", None
        if _is_rgb16(job.src):
            return "rgb16", None
        return "image", read_image(job.src)

    with ThreadPoolExecutor(1) as reader, ThreadPoolExecutor(1) as writer:
        pending_reads = [reader.submit(load, j) for j in jobs[:2]]
        writes: list = []
        for i, job in enumerate(jobs):
            if i + 2 < len(jobs):
                pending_reads.append(reader.submit(load, jobs[i + 2]))
            try:
                kind, im = pending_reads[i].result()
                pending_reads[i] = None  # type: ignore[call-overload]  # release the decoded image
                if kind == "skipped":
                    report(job, "skipped", "")
                    continue
                if kind == "rgb16":
                    report(job, _enhance_rgb16(job, enhancer, quality), "")
                    continue
                out = enhance(im, enhancer)
                writes.append((job, writer.submit(write_image, out, job.dst, im, quality)))
            except (OSError, ValueError, TypeError, RuntimeError) as exc:
                report(job, "failed", error_line(job, exc))
            while writes and (writes[0][1].done() or len(writes) > 2):
                wjob, fut = writes.pop(0)
                try:
                    fut.result()
                    report(wjob, "done", "")
                except (OSError, ValueError, TypeError) as exc:
                    report(wjob, "failed", error_line(wjob, exc))
        for wjob, fut in writes:
            try:
                fut.result()
                report(wjob, "done", "")
            except (OSError, ValueError, TypeError) as exc:
                report(wjob, "failed", error_line(wjob, exc))
    order = {id(j): k for k, j in enumerate(jobs)}
    return sorted(results, key=lambda r: order[id(r[0])])
