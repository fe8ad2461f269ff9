"""``inplace-magic check PATH``: the headless face, for scripts, notebooks and CI.

Exit codes: 0 every cell ran; 1 an in-place error was diagnosed; 2 another exception (printed as
Python prints it); 3 unusable input, with a one-line reason.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import traceback
from typing import Any

from . import ranks
from ._version import __version__
from .fix import apply_to_file, unified_diff
from .pipeline.core import check_cells
from .present.text import fix_label, render_text
from .replay.cells import Cell, UnusableInput, read_cells


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inplace-magic",
        description="Diagnose PyTorch in-place autograd errors: which in-place op overwrote which saved "
        "tensor, and which operation had saved it.",
    )
    parser.add_argument("--version", action="version", version=f"inplace-magic {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "check",
        help="run a percent-format .py script or an .ipynb notebook and diagnose an in-place error",
        description=(
            "Runs the cells in order in one fresh namespace. When one fails with an in-place autograd "
            "error, the cells are re-executed once under diagnostic hooks (side effects such as prints "
            "and file writes happen again) and the diagnosis is printed."
        ),
    )
    check.add_argument("path", help="a .py file in percent format (# %%) or an .ipynb notebook")
    check.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    check.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="launch N ranks on this machine, as torchrun does, and diagnose them together (DDP on gloo)",
    )
    fixing = check.add_mutually_exclusive_group()
    fixing.add_argument("--no-fix", action="store_true", help="diagnose only; do not search and verify fixes")
    fixing.add_argument("--fix", action="store_true", help="also print the best fix as a unified diff")
    fixing.add_argument(
        "--write",
        action="store_true",
        help="apply the best verified fix to PATH, atomically, keeping PATH.bak (never written otherwise)",
    )
    return parser


def _print_fix(cells: list[Cell], fixes: list[dict[str, Any]]) -> None:
    if not fixes:
        print("\nNo fix could be proposed for this error.")
        return
    best = fixes[0]
    print(f"\nThe suggested fix as a diff ({fix_label(best)}):")
    print(unified_diff(cells, best), end="")
    for other in fixes[1:4]:
        print(f"  alternative ({fix_label(other)}): {other.get('title', '')}")


def _write(path: str, cells: list[Cell], fixes: list[dict[str, Any]]) -> None:
    best = fixes[0] if fixes else None
    if best is None or not best.get("verified"):
        print(f"inplace-magic: no verified fix to write; {path} is unchanged", file=sys.stderr)
        return
    try:
        apply_to_file(path, cells, best)
    except (OSError, ValueError) as exc:
        print(f"inplace-magic: could not write the fix ({exc}); {path} is unchanged", file=sys.stderr)
        return
    print(f"\nWrote the fix to {path} ({fix_label(best)}); the original is in {path}.bak")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cells = read_cells(args.path)
    except UnusableInput as exc:
        print(f"inplace-magic: {exc}", file=sys.stderr)
        return 3
    # a distributed check: --nproc launches the ranks, or this process is one of them (torchrun)
    if args.nproc is not None or ranks.in_launch():
        return ranks.main(args, cells, sys.argv[1:] if argv is None else argv)
    # with --json, stdout carries exactly one JSON object: the user's prints go to stderr
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        result = check_cells(cells, script_path=args.path, with_fixes=not args.no_fix)
    if args.json:
        print(json.dumps(result.to_json(), indent=2, default=str))
    elif result.status == "ok":
        print("ok: every cell ran without error")
    elif result.status == "other_error":
        assert result.exception is not None
        traceback.print_exception(result.exception)
    else:
        assert result.diagnosis is not None
        print(render_text(result.diagnosis))
        if args.fix or args.write:
            _print_fix(cells, result.diagnosis.fixes)
    if args.write and result.diagnosis is not None:
        with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
            _write(args.path, cells, result.diagnosis.fixes)
    if result.status == "other_error" and args.json:
        assert result.exception is not None
        traceback.print_exception(result.exception)
    return {"ok": 0, "inplace_error": 1, "other_error": 2}[result.status]


if __name__ == "__main__":
    sys.exit(main())
