"""The command line of ``inplace-magic`` (argparse only: the watching process reads it too)."""

from __future__ import annotations

import argparse
from typing import NoReturn

from .._version import __version__

CHILD_FLAG = "--watched-child"  # first argument of the child process the command starts; not for users

EXIT_CODES = """exit codes:
  0  every cell ran (sys.exit(0) counts as finishing)
  1  an in-place autograd error (diagnosed, or the report says why it could not be); with
     --audit also a silent in-place write the audit found
  2  another exception, printed as Python prints it (sys.exit(n) with n != 0 is one; so is
     os._exit or a crash, reported as the process's end)
  3  unusable input: a missing or unreadable file, a notebook nbformat rejects, a bad option
"""

RUNS = (
    "Runs the cells once, in order, in one fresh namespace, as `python PATH` would (sys.argv is "
    "[PATH]); a notebook, or a script that uses IPython syntax, runs as IPython runs it. When a "
    "cell fails with an in-place autograd error, the cells up to it run again under diagnostic "
    "hooks (the replay: once; twice for a short run whose failed graph cannot say which saved "
    "tensor went stale, first with saved-tensor hooks only) and, "
    "unless --no-fix, again in a separate sandbox process to "
    "verify fixes (the original, a gradient reference, each candidate: usually 3 to 15 runs). "
    "Side effects such as prints, file writes and shell commands happen each time. The report and "
    "the JSON (`executions`) say how many runs there were. Each re-execution has a time limit."
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # a bad command line is unusable input (3); argparse's own 2 means "another exception" here
        self.print_usage()
        self.exit(3, f"{self.prog}: error: {message}\n")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    top = _Parser(
        prog="inplace-magic",
        description="Diagnose PyTorch in-place autograd errors: which in-place op overwrote which saved "
        "tensor, and which operation had saved it.",
    )
    top.add_argument("--version", action="version", version=f"inplace-magic {__version__}")
    commands = top.add_subparsers(dest="command", required=True, parser_class=_Parser)
    check = commands.add_parser(
        "check",
        help="run a percent-format .py script or an .ipynb notebook and diagnose an in-place error",
        description=RUNS,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("path", help="a .py file in percent format (# %%) or an .ipynb notebook")
    check.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout instead of the report"
    )
    fixing = check.add_mutually_exclusive_group()
    fixing.add_argument("--no-fix", action="store_true", help="diagnose only: no fix search, no sandbox runs")
    fixing.add_argument("--fix", action="store_true", help="also print the best fix as a unified diff")
    fixing.add_argument(
        "--write",
        action="store_true",
        help="apply the best verified fix to PATH (a symlink's target), atomically, keeping the original "
        "in a new PATH.bak (PATH.bak.1, ... when taken); a file changed since the check is not written",
    )
    check.add_argument(
        "--time-limit",
        type=_seconds,
        metavar="SECONDS",
        help="the limit of each re-execution (the replay, each sandbox run); default: ten times your "
        "own run, at least 30 s. The replay stopped at it reports your error as raised.",
    )
    check.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="launch N ranks on this machine, as torchrun does, and diagnose them together (DDP on "
        "gloo); under torchrun (`torchrun ... -m inplace_magic check PATH`) each rank runs the check",
    )
    check.add_argument(
        "--audit",
        action="store_true",
        help="when the code runs without error, run it once more under the recorder and report every "
        "write into a tensor autograd saved that PyTorch did not detect (fused optimizers, .data, "
        ".numpy()), and with torch.compile compare compiled and eager gradients (one more run, two "
        "when eager raises an in-place error the compiled graph hid); with --write the best verified "
        "fix of the first hazard is written; not under --nproc or torchrun",
    )
    check.add_argument(
        "--skip-shell",
        action="store_true",
        help="do not run shell commands of IPython cells (!cmd, %%%%bash, %%%%sh, %%%%script...); each is "
        "noted in the report",
    )
    return top
