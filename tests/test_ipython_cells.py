"""Notebooks are IPython, not Python: magics and shell escapes run as IPython runs them, on the user's lines.

Real notebooks on disk, run by the pipeline in this process (a real IPython shell bound to the cells'
namespace) and, for the JSON and the fix verification, by the real command in a subprocess: there a
shell escape's own child process writes to fd 1, which only a process of its own can show kept out of
the JSON.
"""

from __future__ import annotations

import builtins
import json
import subprocess
import sys
from pathlib import Path

import nbformat

from inplace_magic.pipeline.core import check_cells
from inplace_magic.replay.cells import read_cells
from inplace_magic.replay.run import dialect_of

SAVED_THEN_WRITTEN = "y = x.sigmoid()\ny += 1\ny.sum().backward()"


def _notebook(path: Path, *sources: str) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# A notebook")]
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(notebook, str(path))
    return path


def _check(path: Path, **options: object) -> dict[str, object]:
    result = check_cells(read_cells(str(path)), str(path), with_fixes=False, **options)  # type: ignore[arg-type]
    return result.to_json()


def test_magics_run_as_ipython_runs_them(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    path = _notebook(
        tmp_path / "magics.ipynb",
        "%%writefile written.txt\nthis is not Python (\n",
        "%time x = 1\nassert x == 1",
        "%%time\nz = x + 1\n",
        "assert z == 2\nassert open('written.txt').read() == 'this is not Python (\\n'",
    )
    got = _check(path)
    assert got["status"] == "ok", got["traceback"]


def test_shell_escapes_run_as_shell_or_are_skipped_with_a_note(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    path = _notebook(
        tmp_path / "shell.ipynb",
        "!touch by-bang\nfound = !ls\n",
        "%%bash\ntouch by-bash\n",
    )
    assert _check(path)["status"] == "ok"
    assert (tmp_path / "by-bang").exists() and (tmp_path / "by-bash").exists()
    (tmp_path / "by-bang").unlink()
    (tmp_path / "by-bash").unlink()
    got = _check(path, skip_shell=True)
    assert (
        got["status"] == "ok" and not (tmp_path / "by-bang").exists() and not (tmp_path / "by-bash").exists()
    )
    assert got["notes"] == [
        "cell 1, line 1: the shell command `!touch by-bang` was not run (--skip-shell).",
        "cell 1, line 2: the shell command `!ls` was not run (--skip-shell).",
        "cell 2, line 1: the `%%bash` cell was not run (--skip-shell).",
    ]


def test_reports_keep_the_users_lines_through_magics(tmp_path: Path) -> None:
    path = _notebook(
        tmp_path / "lines.ipynb",
        "import torch\nx = torch.randn(3, requires_grad=True)",
        # leading blank lines (IPython's transformers drop them) and a line magic around the saver
        "\n\n%time y = x.sigmoid()\ny += 1\ny.sum().backward()",
        # a cell magic (its body is compiled by IPython as <timed exec>), wrapped in our own magic
        "%%gradcheck\n%%time\n" + SAVED_THEN_WRITTEN,
    )
    got = _check(path)
    assert got["status"] == "inplace_error"
    assert (got["inplace"]["cell"], got["inplace"]["line"], got["inplace"]["code"]) == (2, 4, "y += 1")
    assert (got["saved_by"]["cell"], got["saved_by"]["line"]) == (2, 3)
    notebook = nbformat.read(str(path), as_version=4)
    notebook.cells[2].source = "\n\n%time y = x.sigmoid()\ny = y + 1\ny.sum().backward()"
    nbformat.write(notebook, str(path))
    fixed = read_cells(str(path))
    got = check_cells(fixed, str(path), with_fixes=False).to_json()
    assert got["status"] == "inplace_error"
    assert (got["inplace"]["cell"], got["inplace"]["line"], got["inplace"]["code"]) == (3, 4, "y += 1")
    assert (got["saved_by"]["cell"], got["saved_by"]["line"]) == (3, 3)


def test_a_script_is_python_unless_it_uses_ipython_syntax(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # IPython's test shell (another test's, in this process) leaves get_ipython among the builtins;
    # a script run by the CLI's own process never has it
    monkeypatch.delattr(builtins, "get_ipython", raising=False)
    plain = tmp_path / "plain.py"
    plain.write_text(
        "# %%\ntry:\n    get_ipython()\nexcept NameError:\n    in_ipython = False\nassert not in_ipython\n"
    )
    assert dialect_of(read_cells(str(plain)), str(plain)) == "python"
    assert _check(plain)["status"] == "ok"
    magic = tmp_path / "magic.py"
    magic.write_text("# %%\nx = 3\n# %%\n%time y = x * 2\nassert y == 6\n")
    assert dialect_of(read_cells(str(magic)), str(magic)) == "ipython"
    assert _check(magic)["status"] == "ok"


def test_the_command_runs_ipython_cells_and_verifies_their_fixes(tmp_path: Path) -> None:
    path = _notebook(
        tmp_path / "fix.ipynb",
        "import torch\n!echo from-the-shell\nx = torch.randn(3, requires_grad=True)",
        "%%time\n" + SAVED_THEN_WRITTEN,
    )
    done = subprocess.run(
        [sys.executable, "-m", "inplace_magic", "check", str(path), "--json"], capture_output=True, text=True
    )
    got = json.loads(done.stdout)  # the shell's output went to stderr, not into the JSON
    assert done.returncode == 1 and "from-the-shell" in done.stderr
    assert (got["inplace"]["cell"], got["inplace"]["line"]) == (2, 3)
    best = got["fixes"][0]
    assert best["verified"] and best["cells"]["2"] == "%%time\ny = x.sigmoid()\ny = y + 1\ny.sum().backward()"


def test_kernel_cells_with_magics_are_verified_in_their_dialect() -> None:
    # cells from a live kernel come without a path: their IPython syntax decides the dialect
    from inplace_magic.fix import find_fixes
    from inplace_magic.replay.cells import Cell

    cells = [
        Cell(0, "import torch\nx = torch.randn(3, requires_grad=True)"),
        Cell(1, "%%gradcheck\n%time y = x.sigmoid()\ny += 1\ny.sum().backward()"),
    ]
    diagnosis = check_cells(cells, with_fixes=False).to_json()
    assert (diagnosis["inplace"]["line"], diagnosis["saved_by"]["line"]) == (3, 2)
    best = find_fixes(cells, diagnosis)[0]
    assert best["verified"] and best["cells"]["1"].split("\n")[2] == "y = y + 1"


def test_a_top_level_await_runs_on_ipythons_loop(tmp_path: Path) -> None:
    path = _notebook(
        tmp_path / "await.ipynb", "import asyncio\nawait asyncio.sleep(0)\nx = 1", "assert x == 1"
    )
    got = _check(path)
    assert got["status"] == "ok", got["traceback"]
