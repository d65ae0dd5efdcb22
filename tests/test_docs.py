"""The documentation is true to the code: every relative link and anchor in README.md and docs/*.md
resolves, every ``--flag`` they write exists in the ``--help`` of the command it is written for, and
every ```python block of the README runs as written."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "examples" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PAGES += sorted((ROOT / "docs").glob("*/README.md"))
PAGES = [p for p in PAGES if p.exists()]
FENCE = re.compile(r"^```(\w*)\s*$")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
# Tools that are not ours: their flags are theirs (pip, curl, torchrun, ray, pytest, git, ...).
EXTERNAL = re.compile(
    r"\b(pip|curl|torchrun|torch\.distributed\.run|ray start|pytest|git|apt-get|ffmpeg|ffplay|ruff|"
    r"python3? -m (venv|pip|pytest|torch))\b"
)
SCRIPT = re.compile(r"\b((?:scripts|benchmarks)/[\w-]+\.py)\b")
SUBCOMMAND = re.compile(r"\bzerodce (train|enhance|convert|evaluate|serve|export|models)\b")


def _blocks(text: str) -> list[tuple[str, str, list[str]]]:
    """The page as (kind, language, lines): 'code' for fenced blocks, 'prose' for the rest."""
    out, cur, lang, kind = [], [], "", "prose"
    for line in text.splitlines():
        m = FENCE.match(line.strip())
        if m:
            out.append((kind, lang, cur))
            kind, lang, cur = ("code", m.group(1), []) if kind == "prose" else ("prose", "", [])
            continue
        cur.append(line)
    out.append((kind, lang, cur))
    return out


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to hyphens."""
    h = re.sub(r"[`*_]|!?\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", h).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    heads = [ln for kind, _, lines in _blocks(page.read_text()) if kind == "prose" for ln in lines]
    return {_slug(ln.lstrip("#")) for ln in heads if re.match(r"^#{1,6} ", ln)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page):
    bad = []
    for kind, _, lines in _blocks(page.read_text()):
        if kind != "prose":
            continue
        for target in LINK.findall("\n".join(lines)):
            if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                bad.append(f"{target}: no such file")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                bad.append(f"{target}: no heading with anchor #{anchor}")
    assert not bad, f"{page.name}: " + "; ".join(bad)


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings}  # noqa: SLF001 - argparse has no public API


@pytest.fixture(scope="module")
def cli_flags() -> dict[str, set[str]]:
    from zerodce.apps.cli import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    flags = {name: _options(p) for name, p in subs.choices.items()}
    flags[""] = set().union(*flags.values()) | _options(parser)
    return flags


def _script_flags(script: str, cache: dict[str, set[str]]) -> set[str]:
    if script not in cache:
        cmd = [sys.executable, str(ROOT / script), "--help"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, f"{script} --help failed: {out.stderr[-300:]}"
        cache[script] = set(FLAG.findall(out.stdout))
    return cache[script]


def _commands(page: Path) -> list[tuple[str, str, int]]:
    """(context, text, line number) for every code line or inline-code span that writes a flag.
    Context: 'zerodce SUB', 'zerodce' (any subcommand), 'script PATH' or 'external'; a code line
    ending in a backslash passes its command to the next."""
    found, in_code, ctx = [], False, None
    for n, line in enumerate(page.read_text().splitlines(), 1):
        if FENCE.match(line.strip()):
            in_code, ctx = not in_code, None
            continue
        if in_code:
            ctx = ctx or _context(line)
            code = line.split(" #")[0]
            if FLAG.search(code):
                found.append((ctx or "zerodce", code, n))
            if not line.rstrip().endswith("\\"):
                ctx = None
        else:
            for span in re.findall(r"`([^`]+)`", line):
                if FLAG.search(span):
                    found.append((_context(span) or "zerodce", span, n))
    return found


def _context(text: str) -> str | None:
    if EXTERNAL.search(text):
        return "external"
    m = SCRIPT.search(text)
    if m:
        return f"script {m.group(1)}"
    m = SUBCOMMAND.search(text)
    return f"zerodce {m.group(1)}" if m else None


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_flag_exists_in_its_commands_help(page, cli_flags):
    cache: dict[str, set[str]] = {}
    bad = []
    for ctx, text, n in _commands(page):
        if ctx == "external":
            continue
        if ctx.startswith("script "):
            known = _script_flags(ctx.split(" ", 1)[1], cache) | {"--help"}
        elif ctx.startswith("zerodce "):
            known = cli_flags[ctx.split(" ", 1)[1]] | {"--help", "--version"}
        else:
            known = cli_flags[""] | {"--help", "--version"}
        bad += [f"line {n}: {f} ({ctx})" for f in FLAG.findall(text) if f not in known]
    assert not bad, f"{page.name}: flags not in --help: " + "; ".join(bad)


def test_readme_python_blocks_run_as_written(tmp_path, monkeypatch):
    """Every ```python block of the README, in order, in one namespace, in a folder holding the files
    they name (copies of the bundled example photos)."""
    blocks = ["\n".join(lines) for kind, lang, lines in _blocks((ROOT / "README.md").read_text()) if lang == "python"]
    assert blocks, "the README has no python block"
    names = set(re.findall(r"[\"']([\w-]+\.(?:jpg|png))[\"']", "\n".join(blocks)))
    photos = sorted((ROOT / "examples").glob("*.jpg"))
    for i, name in enumerate(sorted(names)):
        shutil.copy(photos[i % len(photos)], tmp_path / name)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__readme__"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"README.md python block {i + 1}", "exec"), namespace)  # noqa: S102 - our own README
    written = [p.name for p in tmp_path.iterdir() if p.name not in names]
    assert written, "the README's python blocks wrote no file"
