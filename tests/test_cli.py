"""The CLI's contract: inputs (percent scripts, notebooks), JSON shape, exit codes, clear messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
from conftest import ROOT, SHARED_CASES

from inplace_magic.replay.cells import split_percent

EXAMPLE = ROOT / "examples" / "resnet_skip_connection.py"


def test_percent_format_cells_count_from_the_first_marker() -> None:
    cells = split_percent("import torch\n\n# %%\nx = 1\n# %% [markdown]\n# text\n# %%\ny = 2")
    assert [(c.index, c.kind) for c in cells] == [(0, "code"), (1, "code"), (2, "markdown"), (3, "code")]
    assert cells[0].source == "import torch\n"
    assert split_percent("# %%\na = 1\n")[0].source == "a = 1\n"


def test_missing_file_is_unusable_input(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli("check", str(tmp_path / "nope.py"))
    assert code == 3 and out == ""
    assert "no such file" in err and len(err.strip().splitlines()) == 1


def test_broken_notebook_is_unusable_input(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{ not json")
    code, _, err = run_cli("check", str(bad))
    assert code == 3 and "not a valid notebook" in err


def test_healthy_script_exits_zero(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "ok.py"
    script.write_text("# %%\nimport torch\nx = torch.ones(2, requires_grad=True)\n(x * 2).sum().backward()\n")
    code, out, _ = run_cli("check", str(script), "--json")
    assert code == 0 and json.loads(out)["status"] == "ok"


def test_syntax_error_is_another_exception(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "bad.py"
    script.write_text("# %%\nx = 1\n# %%\ndef broken(:\n")
    code, out, _ = run_cli("check", str(script), "--json")
    got = json.loads(out)
    assert code == 2 and got["status"] == "other_error"
    assert got["error"]["type"] == "SyntaxError"


def test_user_prints_do_not_corrupt_json(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "noisy.py"
    script.write_text("# %%\nprint('hello {')\nimport torch\nw = torch.ones(2, requires_grad=True)\nw += 1\n")
    code, out, err = run_cli("check", str(script), "--json")
    assert code == 1 and json.loads(out)["kind"] == "leaf_inplace"
    assert "hello {" in err


def test_notebook_cells_are_counted_with_markdown(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    case = SHARED_CASES / "functional_relu_then_relu_.py"
    cells = split_percent(case.read_text())
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A title")]
    nb.cells += [nbformat.v4.new_code_cell(c.source) for c in cells]
    nb.cells[-1].source = "%%gradcheck\n" + nb.cells[-1].source  # the magic line is not Python
    path = tmp_path / "case.ipynb"
    nbformat.write(nb, str(path))
    code, out, _ = run_cli("check", str(path), "--json", "--no-fix")
    got = json.loads(out)
    expected = json.loads(case.with_suffix(".json").read_text())
    assert code == 1 and got["kind"] == expected["category"]
    # every cell index shifts by one: the markdown cell counts
    assert (got["inplace"]["cell"], got["inplace"]["line"]) == (
        expected["inplace"]["cell"] + 1,
        expected["inplace"]["line"],
    )
    assert got["inplace"]["cell_id"] == nb.cells[expected["inplace"]["cell"] + 1].id


def test_json_carries_the_documented_keys(run_cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run_cli("check", str(EXAMPLE), "--json", "--no-fix")
    got = json.loads(out)
    assert code == 1
    assert {"status", "error", "kind", "inplace", "saved_by", "skip", "tensor", "fixes"} <= set(got)
    assert {"type", "message", "cell", "line"} <= set(got["error"])
    for site in ("inplace", "saved_by"):
        assert {"cell", "line", "code", "op", "module"} <= set(got[site])
        assert {"cell", "line", "code"} <= set(got[site]["defined_at"])
    assert {"from", "merge"} <= set(got["skip"])
    assert {"shape", "dtype", "saved_version", "version"} <= set(got["tensor"])
    assert got["inplace"]["module"] == "block2.act" and got["saved_by"]["module"] == "block2.shortcut"


def test_console_entry_points_run_as_subprocesses() -> None:
    scripts = Path(sys.executable).parent
    for command in ([sys.executable, "-m", "inplace_magic"], [str(scripts / "inplace-magic")]):
        done = subprocess.run([*command, "check", str(EXAMPLE), "--no-fix"], capture_output=True, text=True)
        assert done.returncode == 1, done.stderr
        assert "WRITTEN IN PLACE BY: aten.relu_.default" in done.stdout
        assert "SKIP CONNECTION" in done.stdout


def test_fix_prints_a_diff_and_writes_nothing(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "case.py"
    original = EXAMPLE.read_text()
    script.write_text(original)
    code, out, _ = run_cli("check", str(script), "--fix")
    assert code == 1
    assert "-        self.act = nn.ReLU(inplace=True)" in out and "+        self.act = nn.ReLU()" in out
    assert script.read_text() == original and not (tmp_path / "case.py.bak").exists()


def test_write_applies_the_verified_fix_and_keeps_a_backup(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "case.py"
    original = EXAMPLE.read_text()
    script.write_text(original)
    code, out, _ = run_cli("check", str(script), "--write")
    assert code == 1 and "Wrote the fix" in out
    assert (tmp_path / "case.py.bak").read_text() == original
    assert "self.act = nn.ReLU()" in script.read_text()
    # the written file now runs cleanly
    code, out, _ = run_cli("check", str(script), "--json", "--no-fix")
    assert code == 0 and json.loads(out)["status"] == "ok"


def test_the_help_says_how_often_the_code_runs(run_cli, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run_cli("check", "--help")
    text = " ".join(out.split())
    assert code == 0
    assert "Runs the cells once" in text
    assert "run again under diagnostic hooks (the replay: once; twice for a short run" in text
    assert "again in a separate sandbox process to verify fixes" in text and "(`executions`)" in text
    assert "3 unusable input" in text and "--time-limit SECONDS" in text and "--skip-shell" in text


def test_the_readme_documents_every_option_and_exit_code() -> None:
    from inplace_magic.cli.options import parser

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## On the command line and in CI") : readme.index("## Fixes")]
    check = parser()._subparsers._group_actions[0].choices["check"]  # type: ignore[union-attr]
    options = [o for action in check._actions for o in action.option_strings if o not in ("-h", "--help")]
    assert options and all(f"`{option}" in section for option in options)
    for code in ("`0` every cell ran", "`1` an in-place", "`2` another exception", "`3` unusable input"):
        assert code in section
    assert "`executions` (`run`, `replay`, `fix_verification`, `total`)" in section
