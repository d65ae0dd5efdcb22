"""Enhancing files: one file (:func:`enhance_file`) and the plan for a batch (:func:`plan_jobs`).

Shared by the local CLI and the Ray path, so both name outputs, refuse overwrites, skip existing
outputs and report failures in exactly the same way.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..enhance import Pipeline, enhance
from ._atomic import NameTakenError, exclusive_writes
from .highbit import HighBitImage
from .io import FORMATS, INPUT_EXTENSIONS, VIDEO_EXTENSIONS, read_any, write_image

log = logging.getLogger(__name__)

__all__ = ["Job", "plan_jobs", "claim_error", "enhance_file", "enhance_files", "error_line"]


@dataclass(frozen=True)
class Job:
    """One input file and where its output goes."""

    src: Path
    dst: Path
    clash: Path | None = None  # another input planned to the same output (or this output is an input)


def _local(item: str) -> str:
    """``file://`` URIs become paths; other schemes are refused (mount them as a shared filesystem)."""
    parsed = urlparse(item)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    if parsed.scheme and len(parsed.scheme) > 1:
        raise ValueError(f"{item}: only local paths and file:// URIs are supported")
    return item


def _inside(path: Path, folder: Path) -> bool:
    """True when ``path`` is ``folder`` or below it (both resolved)."""
    return path == folder or folder in path.parents


def _link_out_of(out_dir: Path, sub: Path) -> str | None:
    """Why the folder ``out_dir / sub`` is not inside ``out_dir`` once symbolic links are followed
    (None when it is): the first link on the way and where it leads."""
    root, here = out_dir.resolve(), out_dir
    for part in sub.parts:
        here = here / part
        try:
            target = here.resolve()
        except (OSError, RuntimeError):  # a loop of links (RuntimeError before Python 3.13)
            return f"{here} is a loop of symbolic links"
        if not _inside(target, root):
            return f"{here} is a symbolic link to {target}" if here.is_symlink() else f"{here} leads to {target}"
    return None


def _glob_root(pattern: str) -> Path:
    """The folder a glob pattern starts from: its parts before the first wildcard."""
    parts = Path(pattern).parts
    stem = [p for p in parts[: next(i for i, p in enumerate(parts) if glob.has_magic(p))]]
    return Path(*stem) if stem else Path(".")


def plan_jobs(
    items: list[str], out_dir: Path, suffix: str = "", recursive: bool = False, fmt: str | None = None
) -> list[Job]:
    """Expand files, folders (mirrored below ``out_dir`` with ``recursive``) and glob patterns.

    ``fmt`` (a ``--format`` name) sets the output suffix of images; videos keep theirs.
    Every output is claimed here, before anything is written: a second input planned to the same
    output, or an output that is another input, becomes a job with ``clash`` set, which fails
    naming both files (:func:`enhance_file`). Folders and patterns that contain ``out_dir`` do not
    pick up files below it (the outputs of an earlier run), unless ``out_dir`` is the folder itself.
    Only regular files are taken from folders and patterns.

    Raises:
        ValueError: unknown ``fmt``; ``suffix`` with a path separator, or a sub-folder of ``out_dir``
            that is a symbolic link to somewhere outside it (outputs stay in ``out_dir``).
    """
    if fmt is not None and fmt.lower() not in FORMATS:
        raise ValueError(f"unknown --format {fmt!r}; expected one of {sorted(FORMATS)}")
    if any(sep and sep in suffix for sep in ("/", "\\", os.sep, os.altsep, "\0")):
        raise ValueError(f"--suffix {suffix!r} must not contain a path separator")
    out_abs = out_dir.resolve()

    def outputs_excluded(root: Path, f: Path) -> bool:
        return out_abs != root.resolve() and _inside(out_abs, root.resolve()) and _inside(f.resolve(), out_abs)

    found: list[tuple[Path, Path]] = []
    named: set[Path] = set()  # files given by name, not found in a folder or by a pattern
    for item in items:
        p = Path(_local(item))
        if p.is_dir():
            pattern = "**/*" if recursive else "*"
            subfolders = 0
            for f in sorted(p.glob(pattern)):
                if f.is_file() and f.suffix.lower() in INPUT_EXTENSIONS and not outputs_excluded(p, f):
                    found.append((f, f.relative_to(p)))
                elif not recursive and f.is_dir() and not f.name.startswith(".") and not outputs_excluded(p, f):
                    subfolders += 1
            if subfolders:  # said, not silently left out
                log.info("%s: %d sub-folder%s not read (--recursive reads them)", p, subfolders, "s"[: subfolders > 1])
        elif not p.exists() and glob.has_magic(str(p)):
            root = _glob_root(str(p))
            for f in sorted(glob.glob(str(p), recursive=recursive)):
                if Path(f).is_file() and not outputs_excluded(root, Path(f)):
                    found.append((Path(f), Path(Path(f).name)))
        else:
            found.append((p, Path(p.name)))  # a missing file is reported as a failure; the batch goes on
            named.add(p)

    def ext(rel: Path) -> str:
        if fmt is None or rel.suffix.lower() in VIDEO_EXTENSIONS:
            return rel.suffix
        return FORMATS[fmt.lower()][1]

    def key(path: Path) -> str:
        return os.path.normcase(str(path.resolve()))

    def output(rel: Path) -> Path:
        return out_dir / rel.parent / f"{rel.stem}{suffix}{ext(rel)}"

    # --recursive mirrors sub-folders below out_dir: one that is a link to elsewhere (out/sub -> /etc)
    # would take the writes out of -o. Refused before anything is written, not followed.
    for sub in sorted({rel.parent for _, rel in found}):
        why = _link_out_of(out_dir, sub)
        if why is not None:
            raise ValueError(f"-o {out_dir}: outputs would go outside it ({why}); not followed")

    # A file this run writes is not also read from a folder or pattern: with -o the input folder and
    # --suffix _lit, a rerun finds x_lit.jpg beside x.jpg; it is x.jpg's output, not a new photo.
    writers: dict[str, set[str]] = {}  # output -> the inputs planned to write it
    for src, rel in found:
        writers.setdefault(key(output(rel)), set()).add(key(src))
    ours = [src for src, _ in found if src not in named and writers.get(key(src), set()) - {key(src)}]
    if ours:
        log.info("%d files that this run writes (outputs of an earlier run) are not read as inputs", len(ours))
        drop = set(ours)
        found = [(src, rel) for src, rel in found if src not in drop]

    inputs = {key(src): src for src, _ in found}
    claimed: dict[str, Path] = {}
    jobs = []
    for src, rel in found:
        dst = output(rel)
        if not _inside(Path(os.path.normpath(dst.absolute())), Path(os.path.normpath(out_dir.absolute()))):
            raise ValueError(f"{src}: output {dst} would be outside {out_dir}")
        k = key(dst)
        if k in inputs and k != key(src):
            clash = inputs[k]  # writing here would replace another input: it fails, claiming nothing
        else:
            clash = claimed.setdefault(k, src)
            clash = None if clash is src else clash
        jobs.append(Job(src, dst, clash))
    return jobs


def enhance_file(
    job: Job,
    enhancer: Pipeline,
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
        from ..apps.video import enhance_video

        def video() -> None:
            enhance_video(job.src, job.dst, enhancer, smooth=smooth, progress=progress)  # type: ignore[arg-type]

        return _written(job, video, overwrite, skip_existing)
    img = read_any(job.src)
    if isinstance(img, HighBitImage):
        return _enhance_rgb16(job, img, enhancer, quality, overwrite, skip_existing)
    out = enhance(img, enhancer)
    return _written(job, lambda: write_image(out, job.dst, source=img, quality=quality), overwrite, skip_existing)


def _written(job: Job, write: Callable[[], object], overwrite: bool, skip_existing: bool) -> str:
    """Call ``write()``, which writes ``job.dst``; ``"done"``, or ``"skipped"`` with ``skip_existing``
    when another process wrote ``job.dst`` meanwhile.

    Without ``overwrite`` the output's name is created exclusively (:func:`~._atomic.exclusive_writes`):
    the check of :func:`_skip` is made before the work, and a second run into the same ``-o`` may
    write the same name in between; the later of the two then fails (or skips) instead of replacing
    the earlier one's output.
    """
    with exclusive_writes(not overwrite):
        try:
            write()
        except NameTakenError:
            if skip_existing:
                return "skipped"
            raise FileExistsError(
                f"{job.src}: output {job.dst} was written by another process meanwhile; kept (use --overwrite)"
            ) from None
    return "done"


def claim_error(job: Job) -> FileExistsError:
    """The error of a job whose output :func:`plan_jobs` found claimed (``job.clash``)."""
    if job.clash is not None and job.dst.resolve() == job.clash.resolve():
        return FileExistsError(f"{job.src}: output {job.dst} would replace the input {job.clash}")
    return FileExistsError(f"{job.src}: output {job.dst} is also planned for {job.clash} (rename one)")


def _skip(job: Job, overwrite: bool, skip_existing: bool) -> bool:
    """The output rules: never replace the input or an existing output unless asked, never write
    one output for two inputs; True = skip."""
    if job.clash is not None:
        raise claim_error(job)
    if job.dst.resolve() == job.src.resolve() and not overwrite:
        raise ValueError(f"{job.src}: output would overwrite the input (use --suffix, or another output folder)")
    if (job.dst.exists() or job.dst.is_symlink()) and not overwrite:
        if skip_existing:
            return True
        raise FileExistsError(f"{job.src}: output {job.dst} exists (use --overwrite or --skip-existing)")
    return False


def _enhance_rgb16(
    job: Job, img: HighBitImage, enhancer: Pipeline, quality: int, overwrite: bool, skip_existing: bool
) -> str:
    """16-bit colour PNG/TIFF: 16 bits in, 16 bits out (8 bits only when --format asks for JPEG etc.)."""
    from ._atomic import atomic_write_bytes
    from .highbit import encode_as
    from .io import output_format

    img.pixels = enhance(img.pixels, enhancer)
    payload = encode_as(img, output_format(job.dst, img.format), quality)
    return _written(job, lambda: atomic_write_bytes(job.dst, payload), overwrite, skip_existing)


def error_line(job: Job, exc: BaseException) -> str:
    """One line naming the file and what went wrong."""
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return msg if str(job.src) in msg else f"{job.src}: {msg}"


def enhance_files(
    jobs: list[Job],
    enhancer: Pipeline,
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
    results: list[tuple[Job, str, str]] = []

    def report(job: Job, status: str, msg: str) -> None:
        results.append((job, status, msg))
        if on_done:
            on_done(job, status, msg)

    def load(job: Job) -> tuple[str, object]:
        if _skip(job, overwrite, skip_existing):
            return "skipped", None
        img = read_any(job.src)
        return ("rgb16" if isinstance(img, HighBitImage) else "image"), img

    def write(wjob: Job, out: object, im: object) -> str:  # in the writer thread
        return _written(wjob, lambda: write_image(out, wjob.dst, im, quality), overwrite, skip_existing)

    def finish_write(wjob: Job, fut: Future) -> None:
        try:
            report(wjob, fut.result(), "")
        except Exception as exc:  # noqa: BLE001 - one file's failure, whatever it is, is that file's
            report(wjob, "failed", error_line(wjob, exc))

    with ThreadPoolExecutor(1) as reader, ThreadPoolExecutor(1) as writer:
        pending_reads: list[Future | None] = [reader.submit(load, j) for j in jobs[:2]]
        writes: list[tuple[Job, Future]] = []
        try:
            for i, job in enumerate(jobs):
                if i + 2 < len(jobs):
                    pending_reads.append(reader.submit(load, jobs[i + 2]))
                try:
                    kind, im = pending_reads[i].result()  # type: ignore[union-attr]
                    pending_reads[i] = None  # release the decoded image
                    if kind == "skipped":
                        report(job, "skipped", "")
                        continue
                    if kind == "rgb16":
                        report(job, _enhance_rgb16(job, im, enhancer, quality, overwrite, skip_existing), "")
                        continue
                    out = enhance(im, enhancer)
                    writes.append((job, writer.submit(write, job, out, im)))
                except Exception as exc:  # noqa: BLE001 - reported for this file; the batch goes on
                    report(job, "failed", error_line(job, exc))
                while writes and (writes[0][1].done() or len(writes) > 2):
                    finish_write(*writes.pop(0))
        finally:  # also on Ctrl-C: reads not started are dropped, writes under way complete and count
            for fut in pending_reads:
                if fut is not None:
                    fut.cancel()
            for wjob, fut in writes:
                finish_write(wjob, fut)
    order = {id(j): k for k, j in enumerate(jobs)}
    return sorted(results, key=lambda r: order[id(r[0])])
