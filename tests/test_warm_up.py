"""The first diagnosis in a fresh kernel costs what the next ones cost: ``%load_ext`` warmed up in the
background what it would pay once, leaving no trace, and the warm-up waits while the user's cells run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

from inplace_magic.ipython.warm_up import WarmUp

SHELL = textwrap.dedent(
    """
    import json, sys
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell(config=config)
    """
)

SESSION = SHELL + textwrap.dedent(
    """
    shell.run_line_magic("load_ext", "inplace_magic")
    from inplace_magic.ipython.warm_up import warm_up
    assert warm_up().done.wait(300) and not warm_up().failed, warm_up().failed
    with capture_output():
        shell.run_cell("import torch\\nw = torch.ones(3, requires_grad=True)\\n")
        after_setup = set(sys.modules)
        result = shell.run_cell("%%gradcheck\\ny = (w * 2).sigmoid()\\ny.mul_(2)\\ny.sum().backward()\\n")
    import inplace_magic
    diagnosis = inplace_magic.last_diagnosis()
    print(json.dumps({
        "error": type(result.error_in_exec).__name__,
        "writer": diagnosis["inplace"]["code"],
        "fixes": len(diagnosis["fixes"]),
        "imported_by_the_diagnosis": sorted(set(sys.modules) - after_setup),
    }))
    """
)


def _run(code: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    seen: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return seen


def test_the_first_diagnosis_imports_nothing_that_load_ext_did_not_import_in_the_background() -> None:
    seen = _run(SESSION)
    assert seen["error"] == "RuntimeError" and seen["writer"] == "y.mul_(2)" and seen["fixes"] >= 1
    imported = seen["imported_by_the_diagnosis"]
    assert isinstance(imported, list)
    ours = [name for name in imported if name.split(".")[0] in ("inplace_magic", "libcst", "anywidget")]
    assert ours == [], ours


NO_TRACE = SHELL + textwrap.dedent(
    """
    import random
    import numpy as np
    import torch

    torch.manual_seed(3); random.seed(3); np.random.seed(3)
    torch.set_num_threads(3)  # not the suite's OMP_NUM_THREADS=1: a warm-up that set threads would show

    def state():
        return {
            "names": sorted(k for k in shell.user_ns if not k.startswith("_")),
            "torch": torch.get_rng_state().tolist(),
            "random": repr(random.getstate()),
            "numpy": repr(np.random.get_state()),
            "grad": torch.is_grad_enabled(),
            "dtype": str(torch.get_default_dtype()),
            "threads": torch.get_num_threads(),
            "modes": len(torch.utils._python_dispatch._get_current_dispatch_mode_stack()),
            "module hooks": len(torch.nn.modules.module._global_forward_hooks),
            "trace": repr(sys.gettrace()),
        }

    before = state()
    shell.run_line_magic("load_ext", "inplace_magic")
    from inplace_magic.ipython.warm_up import warm_up
    assert warm_up().done.wait(300) and not warm_up().failed, warm_up().failed
    after = state()
    print(json.dumps({"same": before == after, "diff": [k for k in before if before[k] != after[k]]}))
    """
)


def test_the_warm_up_leaves_no_trace_in_the_session_random_states_or_torch() -> None:
    assert _run(NO_TRACE) == {"same": True, "diff": []}


def test_the_warm_up_waits_while_a_cell_runs() -> None:
    ran: list[str] = []
    warm_up = WarmUp(steps=(("first", lambda: ran.append("first")), ("second", lambda: ran.append("second"))))
    warm_up.cell_started()
    warm_up.start()
    time.sleep(0.3)  # a cell that runs this long: nothing may run beside it
    assert ran == []
    warm_up.cell_started()  # a cell magic's body, inside the cell
    warm_up.cell_ended()
    time.sleep(0.2)
    assert ran == []  # the outer cell still runs
    warm_up.cell_ended()
    assert warm_up.done.wait(30)
    assert ran == ["first", "second"] and warm_up.failed == []


def test_a_step_that_fails_is_left_to_the_first_diagnosis_and_the_rest_still_runs() -> None:
    ran: list[str] = []

    def broken() -> None:
        raise ImportError("no such module")

    warm_up = WarmUp(steps=(("broken", broken), ("next", lambda: ran.append("next"))))
    warm_up.start()
    assert warm_up.done.wait(30)
    assert ran == ["next"]
    assert warm_up.failed == [("broken", "ImportError('no such module')")]


def test_inside_an_import_it_pauses_and_gives_way_to_a_cell_that_imports_the_same_module(
    tmp_path: Path,
) -> None:
    """It stops where each module's code starts, while a cell runs; the cell that then imports a
    module the warm-up is importing waits for that module only, it does not wait forever."""
    inside = threading.Event()
    (tmp_path / "warm_outer.py").write_text(
        "import tests_warm_up_signal\ntests_warm_up_signal.inside.set()\n"
        "tests_warm_up_signal.may_go_on.wait(30)\nimport warm_inner\nVALUE = warm_inner.VALUE + 1\n"
    )
    (tmp_path / "warm_inner.py").write_text("VALUE = 41\n")
    signal = type(sys)("tests_warm_up_signal")
    may_go_on = threading.Event()
    signal.inside, signal.may_go_on = inside, may_go_on  # type: ignore[attr-defined]
    sys.modules["tests_warm_up_signal"] = signal
    sys.path.insert(0, str(tmp_path))
    try:
        warm_up = WarmUp(steps=(("import", lambda: __import__("warm_outer")),))
        warm_up.start()
        assert inside.wait(30)  # the warm-up is inside warm_outer's code
        warm_up.cell_started()
        may_go_on.set()
        time.sleep(0.3)
        # paused where warm_inner's code starts: the module exists, empty, and waits
        assert not hasattr(sys.modules.get("warm_inner"), "VALUE")
        import warm_outer  # type: ignore[import-not-found]  # waits for the warm-up's import of it

        assert warm_outer.VALUE == 42
        assert warm_up.done.wait(30) and warm_up.failed == []
    finally:
        sys.path.remove(str(tmp_path))
        for name in ("tests_warm_up_signal", "warm_outer", "warm_inner"):
            sys.modules.pop(name, None)


TRACEBACK = SHELL + textwrap.dedent(
    """
    shell.run_line_magic("load_ext", "inplace_magic")
    with capture_output():
        shell.run_cell("import torch\\nw = torch.ones(3, requires_grad=True)\\n", store_history=True)
        shell.run_cell(
            "%%gradcheck --no-fix\\ny = (w * 2).sigmoid()\\ny.mul_(2)\\ny.sum().backward()\\n",
            store_history=True,
        )
    stored = shell.history_manager.exceptions[shell.execution_count - 1]
    print(json.dumps({"ename": stored["ename"], "traceback": "\\n".join(stored["traceback"])}))
    """
)


def test_the_error_a_gradcheck_cell_raises_again_is_stored_with_the_frames_the_user_saw() -> None:
    # IPython formats it for its history: through the magic's frames it parsed IPython's and our
    # sources, a second or more that only the first diagnosis paid
    seen = _run(TRACEBACK)
    assert seen["ename"] == "RuntimeError"
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(seen["traceback"]))  # IPython's colours
    assert "y.sum().backward()" in text
    assert "run_cell_magic" not in text and "extension.py" not in text and "magic.py" not in text
