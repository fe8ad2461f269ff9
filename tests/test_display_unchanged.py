"""What ``display_diagnosis`` shows, byte for byte, on real diagnoses of the shared cases: the text/plain
and text/html reports, the JSON report, the issued panel state (the sidebar's payload), the files the
issued registry lets a fix edit, and the state with cell ids filled in.

The golden files under tests/fixtures/display/ were written by the code before display got cheaper
(issue 15): the speed-ups must leave every output as it was. After an intended change of wording,
regenerate them and review the diff:

    .venv/bin/python tests/test_display_unchanged.py
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures" / "display"
CASES = HERE / "cases"
# a counter, a skip connection, an optimizer step, a view, a member of the family ("other"); whether
# its fixes are searched (a view's verification sandbox fails under pytest: the view is shown without)
CASES_WITH_FIXES = {
    "alias_sigmoid_iadd": True,
    "commented_residual_conv_input_iadd": True,
    "gan_foreach_adam_step": True,
    "view_made_under_no_grad": False,
    "leaky_relu_negative_slope_inplace": True,
}
NAMES = list(CASES_WITH_FIXES)


def _with_cell_ids(value: Any) -> Any:
    """``value`` with a notebook cell id on every location of a cell, as a live kernel reports them."""
    if isinstance(value, dict):
        out = {key: _with_cell_ids(item) for key, item in value.items()}
        if isinstance(value.get("cell"), int) and not isinstance(value.get("cell"), bool):
            out.setdefault("cell_id", f"id-{value['cell']}")
        return out
    if isinstance(value, list):
        return [_with_cell_ids(item) for item in value]
    return value


def _shown(diagnosis: Any, sources: dict[int, str], verifying: tuple[int, ...]) -> dict[str, Any]:
    """One display of ``diagnosis`` in this (terminal) shell: what was published, and what was issued."""
    from IPython.utils.capture import capture_output

    from inplace_magic.ipython.display import display_diagnosis

    with capture_output() as captured:
        shown = display_diagnosis(diagnosis, sources, None, verifying)
    [output] = captured.outputs
    base = shown.issued.base_dir
    return {
        "data": output.data,
        "metadata": output.metadata,
        "state": shown.issued.state,
        "files": sorted(str(path.relative_to(base)) for path in shown.issued.files),
    }


def render(name: str) -> dict[str, Any]:
    """Every output of the case's diagnosis: named as a script names cells, and as a kernel does
    (with its first fix being verified), and its panel state where every location has a cell id."""
    from inplace_magic.ipython.display import prompt_cell_names
    from inplace_magic.panel.state import build_state
    from inplace_magic.pipeline.core import check_cells
    from inplace_magic.replay.cells import read_cells

    cells = read_cells(str(CASES / f"{name}.py"))
    # in a thread of its own: the stack above the cells is then the thread's start, not this file
    # (its callers' lines would be named as the user's code)
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(check_cells, cells, with_fixes=CASES_WITH_FIXES[name]).result()
    assert result.diagnosis is not None, result.status
    sources = {cell.index: cell.source for cell in cells}
    out: dict[str, Any] = {"script": _shown(result.diagnosis, sources, ())}
    with prompt_cell_names():
        out["kernel"] = _shown(result.diagnosis, sources, (0,))
        report = json.loads(json.dumps(result.diagnosis.to_json(), default=str))
        out["cell_ids"] = build_state(_with_cell_ids(report), sources)
    return out


def _text(value: Any) -> str:
    """The rendering as the golden file holds it: key order kept (the JSON report's order is output)."""
    return json.dumps(value, indent=1, ensure_ascii=False) + "\n"


@pytest.fixture(scope="module")
def ip() -> Iterator[Any]:
    import shells

    yield from shells.with_the_extension()  # display_diagnosis publishes through the shell


@pytest.mark.parametrize("name", NAMES)
def test_every_output_of_a_display_is_what_it_was(ip: Any, name: str) -> None:
    golden = (FIXTURES / f"{name}.json").read_text()
    assert _text(render(name)) == golden


def main() -> None:
    sys.path[:0] = [str(HERE.parent), str(HERE)]  # this checkout's package, and tests/shells.py
    import shells

    import inplace_magic

    print("rendering with", Path(inplace_magic.__file__).parent)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    with contextlib.contextmanager(shells.with_the_extension)():
        for name in NAMES:
            (FIXTURES / f"{name}.json").write_text(_text(render(name)))
            print("wrote", (FIXTURES / f"{name}.json").relative_to(HERE.parent))


if __name__ == "__main__":
    main()
