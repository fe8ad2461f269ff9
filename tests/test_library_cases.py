"""The CLI on real library models (torchvision, timm, transformers) at realistic depth (issue 11, item 5).

The cases in tests/cases/libraries (and its negatives/) have the format of ../shared/cases, plus:

- ``requires``: the libraries the case imports. A case whose library does not import here is skipped
  with the reason (torchvision and timm never import beside the CPU torch of the main environment:
  ``make test-libraries`` builds their own environment; transformers is in requirements-dev.txt).
- A location whose operation sits inside library code is ``{file, line, code}`` (``file`` relative to
  site-packages) with ``user: {cell, line, code}`` beside it: the user's line that runs it (the line a
  fix edits). The diagnosis must report both, the library line and the user's line, in the location or
  its call stack.
- ``module`` (a name or a list of names) is the qualified module path the location must carry; the
  model's variable name may prefix it.

Each field is its own test so that a field the engine gets wrong today is one strict xfail
(ENGINE_XFAIL below); the engine team removes the entry when they fix it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import OWN_CASES, case_ids
from test_short_wording import assert_short, text_report_words

# the cases build their models from configs; nothing may be fetched
os.environ.setdefault("HF_HUB_OFFLINE", "1")

LIBRARY_CASES = OWN_CASES / "libraries"


# What the engine gets wrong today, per (case, field); the engine team removes an entry when they fix it.
ENGINE_XFAIL: dict[tuple[str, str], str] = {}


def _params(folder: Path, aspects: tuple[str, ...]) -> list[Any]:
    out = []
    for case in case_ids(folder):
        expected = json.loads(case.with_suffix(".json").read_text())
        for aspect in aspects:
            if aspect == "merge" and not (expected.get("skip") or {}).get("merge"):
                continue
            field = {"writer_module": "inplace", "saver_module": "saved_by"}.get(aspect)
            if field and "module" not in (expected.get(field) or {}):
                continue
            marks = []
            reason = ENGINE_XFAIL.get((case.stem, aspect))
            if reason:
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            out.append(pytest.param(case, id=f"{case.stem}-{aspect}", marks=marks))
    return out


@functools.cache
def _unimportable(name: str) -> str | None:
    try:
        importlib.import_module(name)
    except Exception as exc:  # torchvision beside a CPU torch raises RuntimeError, not ImportError
        return f"{name} does not import here ({type(exc).__name__}: {str(exc)[:80]}); see make test-libraries"
    return None


# Set by `make test-libraries`: in the environment built for them the libraries must import, and a case
# whose library does not fails instead of skipping (the gate is here, in the process that imports them
# anyway, rather than in an interpreter of its own that imported them once more: 13 CPU-s).
LIBRARIES_REQUIRED = os.environ.get("INPLACE_MAGIC_LIBRARIES_REQUIRED") == "1"


def _missing(expected: dict[str, Any]) -> str | None:
    """Why the first library the case requires does not import here; None when they all do."""
    return next(filter(None, map(_unimportable, expected.get("requires", []))), None)


def _fail_where_required(reason: str | None) -> None:
    if reason and LIBRARIES_REQUIRED:
        pytest.fail(f"{reason}, in the environment made for these cases")


def _skip_unless_importable(expected: dict[str, Any]) -> None:
    reason = _missing(expected)
    _fail_where_required(reason)
    if reason:
        pytest.skip(reason)


@functools.cache
def _check(case: Path) -> tuple[int, dict[str, Any]]:
    """``inplace-magic check CASE --json --no-fix`` in this process, once per case."""
    from inplace_magic.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["check", str(case), "--json", "--no-fix"])
    return code, json.loads(out.getvalue())


@functools.cache
def _report(case: Path) -> str:
    """The text report of ``inplace-magic check CASE --no-fix``, once per case."""
    from inplace_magic.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        main(["check", str(case), "--no-fix"])
    return out.getvalue()


def _load(case: Path) -> tuple[dict[str, Any], int, dict[str, Any]]:
    expected = json.loads(case.with_suffix(".json").read_text())
    _skip_unless_importable(expected)
    code, got = _check(case)
    return expected, code, got


def _same_place(expected: dict[str, Any], got: dict[str, Any]) -> bool:
    if got.get("line") != expected["line"]:
        return False
    if "cell" in expected:
        return got.get("cell") == expected["cell"] and "file" not in got
    path = got.get("file")
    return path is not None and ("/" + Path(path).as_posix()).endswith("/" + expected["file"])


def _options(expected: dict[str, Any]) -> list[dict[str, Any]]:
    return [expected, *(expected.get("alt") or [])]


def _reported(got: dict[str, Any], *, stack: bool) -> list[dict[str, Any]]:
    items = [got, got.get("defined_at") or {}]
    if stack:
        items += got.get("stack") or []
    return [item for item in items if "line" in item]


def _describe(items: list[dict[str, Any]]) -> list[str]:
    return [f"{item.get('cell', item.get('file'))}:{item['line']}" for item in items]


def _module_ok(got: str | None, expected: str | list[str]) -> bool:
    accepted = [expected] if isinstance(expected, str) else expected
    if got is None:
        return False
    head, _, rest = got.partition(".")
    return got in accepted or (head.isidentifier() and rest in accepted)


def _assert_location(expected: dict[str, Any], got: dict[str, Any] | None, what: str) -> None:
    """The reported place (module path aside: _assert_module)."""
    assert got, f"{what}: nothing reported"
    if "user" in expected:
        reported = _reported(got, stack=True)
        assert any(_same_place(e, r) for e in _options(expected) for r in reported), (
            f"{what}: library location {expected['file']}:{expected['line']} ({expected['code']!r}) "
            f"not among the reported {_describe(reported)}"
        )
        user = expected["user"]
        assert any(_same_place(e, r) for e in _options(user) for r in reported), (
            f"{what}: user line cell {user['cell']}:{user['line']} ({user['code']!r}) "
            f"not among the reported {_describe(reported)}"
        )
    else:
        reported = _reported(got, stack=False)
        assert any(_same_place(e, r) for e in _options(expected) for r in reported), (
            f"{what}: expected {expected.get('cell', expected.get('file'))}:{expected['line']} "
            f"({expected['code']!r}), reported {_describe(reported)}"
        )


def _assert_module(expected: dict[str, Any], got: dict[str, Any] | None, what: str) -> None:
    assert got, f"{what}: nothing reported"
    assert _module_ok(got.get("module"), expected["module"]), (
        f"{what}: module {got.get('module')!r}, expected {expected['module']!r}"
    )


@pytest.mark.parametrize("case", _params(LIBRARY_CASES, ("kind",)))
def test_library_case_kind(case: Path) -> None:
    expected, code, got = _load(case)
    assert (code, got["status"]) == (1, "inplace_error")
    assert got["kind"] == expected["category"]
    assert got["reproduced"], got["notes"]
    assert got["error"]["type"] == "RuntimeError"
    assert expected["error"].startswith(f"RuntimeError: {got['error']['message'][:60]}")


@pytest.mark.parametrize("case", _params(LIBRARY_CASES, ("writer",)))
def test_library_case_writer(case: Path) -> None:
    expected, _, got = _load(case)
    _assert_location(expected["inplace"], got["inplace"], "in-place writer")


@pytest.mark.parametrize("case", _params(LIBRARY_CASES, ("writer_module",)))
def test_library_case_writer_module(case: Path) -> None:
    expected, _, got = _load(case)
    _assert_module(expected["inplace"], got["inplace"], "in-place writer")


@pytest.mark.parametrize("case", _params(LIBRARY_CASES, ("saver",)))
def test_library_case_saver(case: Path) -> None:
    expected, _, got = _load(case)
    _assert_location(expected["saved_by"], got["saved_by"], "saver")


@pytest.mark.parametrize("case", _params(LIBRARY_CASES, ("saver_module",)))
def test_library_case_saver_module(case: Path) -> None:
    expected, _, got = _load(case)
    _assert_module(expected["saved_by"], got["saved_by"], "saver")


@pytest.mark.parametrize("case", _params(LIBRARY_CASES, ("merge",)))
def test_library_case_merge(case: Path) -> None:
    expected, _, got = _load(case)
    _assert_location(expected["skip"]["merge"], (got.get("skip") or {}).get("merge"), "skip merge")


@pytest.mark.parametrize("case", _params(LIBRARY_CASES, ("wording",)))
def test_library_case_wording_is_short(case: Path) -> None:
    """Issue 14 on library models: their modules' reprs (a BERT layer's, a ResNet's Conv2d) and the
    comments of the lines quoted stay out of the headline and the explanation."""
    _, _, got = _load(case)
    texts = {"headline": got["headline"], "explanation": got["explanation"]}
    assert_short(got, case.read_text(), {**texts, **text_report_words(_report(case))})


def _through_the_magic(
    case: Path, monkeypatch: pytest.MonkeyPatch, graph: bool
) -> tuple[list[Any], dict[str, Any] | None]:
    """The case's cells in this process's IPython shell, ``%%gradcheck --no-fix`` on the failing last
    one; what the kernel read from the failed run's graph (``graph``, or nothing) and its diagnosis."""
    from IPython.testing import globalipapp
    from IPython.utils.capture import capture_output

    from inplace_magic.pipeline import core, kernel
    from inplace_magic.record.failed_graph import stale_in_failed_run

    found: list[Any] = []

    def reading(error: BaseException) -> Any:
        found.append(stale_in_failed_run(error))
        return found[-1]

    monkeypatch.setattr(core, "stale_in_failed_run", reading if graph else (lambda error: None))

    globalipapp.start_ipython()
    shell = globalipapp.get_ipython()
    loaded = "inplace_magic" in shell.extension_manager.loaded  # another module's shell: left loaded
    shell.run_line_magic("load_ext", "inplace_magic")
    shell.run_line_magic("reset", "-f")
    kernel._LATEST = None
    cells = [cell.strip("\n") for cell in case.read_text().split("# %%") if cell.strip()]
    first = shell.execution_count
    try:
        with capture_output():
            for cell in cells[:-1]:
                assert shell.run_cell(cell, store_history=True).success
            shell.run_cell("%%gradcheck --no-fix\n" + cells[-1], store_history=True)
        return found, _numbered_from(first, kernel.latest())
    finally:
        monkeypatch.undo()
        if not loaded:
            shell.run_line_magic("unload_ext", "inplace_magic")
        shell.run_line_magic("reset", "-f")


def _numbered_from(first: int, value: Any) -> Any:
    """``value`` with every cell number counted from the run's first cell (In[first] is cell 0)."""
    if isinstance(value, dict):
        return {
            k: v - first if k == "cell" and isinstance(v, int) else _numbered_from(first, v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_numbered_from(first, v) for v in value]
    if isinstance(value, str):  # the words name cells as the terminal does: "cell [4]"
        return re.sub(r"cell \[(\d+)\]", lambda m: f"cell [{int(m[1]) - first}]", value)
    return value


@pytest.mark.parametrize("case", _params(LIBRARY_CASES, ("kind",)))
def test_library_case_through_the_magic_stops_on_its_failed_graph_with_the_same_diagnosis(
    case: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a kernel the failed run's own graph says which saved tensor went stale, and the replay stops
    once the write's module call returns (record/failed_graph.py): on the library models the
    diagnosis must be the one a recording of everything gives."""
    expected = json.loads(case.with_suffix(".json").read_text())
    _skip_unless_importable(expected)
    found, followed = _through_the_magic(case, monkeypatch, graph=True)
    _, recorded = _through_the_magic(case, monkeypatch, graph=False)
    assert followed is not None and recorded is not None
    if expected["category"] == "version_counter":
        assert found and found[0] is not None, "the failed graph told nothing"
    for key in ("kind", "inplace", "saved_by", "skip", "tensor", "headline", "executions"):
        assert followed.get(key) == recorded.get(key), key


@pytest.mark.parametrize("case", _params(LIBRARY_CASES / "negatives", ("negative",)))
def test_library_negative_is_not_diagnosed(case: Path) -> None:
    expected, code, got = _load(case)
    assert got["inplace"] is None and got["kind"] is None
    assert (code, got["status"]) == (0, "ok"), got.get("error")
    assert expected["observed"]["raises"] is None


def _locations(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "line" in node and "code" in node and ("cell" in node or "file" in node):
            yield node
        for value in node.values():
            yield from _locations(value)
    elif isinstance(node, list):
        for value in node:
            yield from _locations(value)


def _site_file(relative: str) -> Path | None:
    for entry in sys.path:
        candidate = Path(entry) / relative
        if candidate.is_file():
            return candidate
    return None


@pytest.mark.parametrize(
    "case", case_ids(LIBRARY_CASES) + case_ids(LIBRARY_CASES / "negatives"), ids=lambda p: p.stem
)
def test_library_case_locations_are_exact(case: Path) -> None:
    """Every recorded ``code`` is the text at its cell/line, or at its line of the installed library."""
    expected = json.loads(case.with_suffix(".json").read_text())
    cells = case.read_text().split("# %%\n")[1:]
    assert "n_cells" not in expected or expected["n_cells"] == len(cells)
    missing = _missing(expected)
    _fail_where_required(missing)
    checked_files = missing is None
    for loc in _locations({k: v for k, v in expected.items() if k != "verification"}):
        if "cell" in loc:
            assert cells[loc["cell"]].splitlines()[loc["line"] - 1].strip() == loc["code"], loc
        elif checked_files:
            path = _site_file(loc["file"])
            assert path is not None, f"{loc['file']} not found on sys.path"
            assert path.read_text().splitlines()[loc["line"] - 1].strip() == loc["code"], loc


# -- what the engine's library model rests on, without the libraries themselves


def test_files_are_the_users_a_librarys_or_internal(tmp_path: Path) -> None:
    """An installed package other than torch is a library; torch, the standard library and the
    kernel are internal; cells, scripts and the user's own modules are the user's."""
    from inplace_magic.record import frames

    installed = tmp_path / "lib" / "site-packages"
    assert frames.file_kind(str(installed / "somelib" / "models.py")) == "library"
    assert frames.file_kind(str(installed / "torch" / "nn" / "modules" / "module.py")) == "internal"
    assert frames.file_kind(str(installed / "ipykernel" / "ipkernel.py")) == "internal"
    assert frames.file_kind(str(importlib.import_module("torch").__file__)) == "internal"
    assert frames.file_kind(os.__file__) == "internal"
    assert frames.file_kind(frames.__file__) == "internal"
    assert frames.file_kind("<cell 1>") == "user"
    assert frames.file_kind(__file__) == "user"
    assert frames.file_kind(str(OWN_CASES / "helper_resblocks.py")) == "user"
    assert frames.installed_path(str(installed / "somelib" / "models.py")) == "somelib/models.py"
    assert frames.installed_path(__file__) is None


def test_a_library_line_comes_with_the_users_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Of a library's nested calls only the innermost line is kept, then the user's line that ran
    it; the test runner's frames outside the user's are not."""
    from inplace_magic.record.frames import user_frames

    package = tmp_path / "site-packages" / "inplace_magic_fake_library"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from inplace_magic.record.frames import user_frames\n\n\n"
        "def inner():\n    return user_frames(3, skip=1)\n\n\n"
        "def outer():\n    return inner()\n"
    )
    monkeypatch.syspath_prepend(str(package.parent))
    library = importlib.import_module("inplace_magic_fake_library")

    found = library.outer()
    assert [(Path(f.filename).name, f.function) for f in found[:2]] == [
        ("__init__.py", "inner"),
        ("test_library_cases.py", "test_a_library_line_comes_with_the_users_line"),
    ]
    assert all("site-packages" not in f.filename for f in found[1:]), found
    assert user_frames(3, skip=1)[0].function == "test_a_library_line_comes_with_the_users_line"


def _double(module: Any, inputs: Any, output: Any) -> Any:
    return output * 2


def test_ops_in_a_forward_hook_belong_to_the_hooked_module_and_copies_stay_inert() -> None:
    """torch runs a module's forward hooks inside its call: the recorder keeps the module on its
    stack until they ran, through a hook of its own that a copy of the module (deepcopy,
    torch.save) turns into one that does nothing, and that is gone after the replay."""
    import copy

    import torch

    from inplace_magic.record.recorder import Recorder

    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    net[1].register_forward_hook(_double)
    hooks_before = dict(net[1]._forward_hooks)
    with Recorder() as recorder:
        net(torch.randn(3, 2))
        torch.save(net, io.BytesIO())
        twin = copy.deepcopy(net)
    mul = next(op for op in recorder.trace.ops if op.op == "aten.mul.Tensor")
    assert mul.modules[-1] is net[1]
    after = next(op for op in recorder.trace.ops if op.seq > mul.seq and op.op == "aten.addmm.default")
    assert after.modules[-1] is net[2]
    assert dict(net[1]._forward_hooks) == hooks_before
    assert not net[1]._forward_hooks_always_called
    twin(torch.randn(3, 2))  # the copy's marker does nothing once the replay is over
