"""Running the command line in-process from the tests."""

from __future__ import annotations

from zerodce.apps.cli import main


def run_cli(argv: list, capsys) -> tuple[int, str, str]:  # noqa: ANN001
    """``main(argv)`` run in-process: exit code, stdout, stderr (argparse exits through SystemExit)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err
