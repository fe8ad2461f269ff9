"""B10: what verifying the best fix in the live kernel costs, against one replay (issue 15's target:
at most twice a replay), in a real IPython shell on the skip-connection example.

One replay is the diagnosis' unit: the cells the verification re-executes (the model's class cell,
the cell that builds the model, the failing cell; the diagnosis widens to the same cells here)
re-executed in the kernel under the recorder, with the undo log (``replay_in_kernel`` +
``core.replay``). The verification is :meth:`~inplace_magic.fix.live.LiveVerification.run` until its
first verified fix: those cells with the fix, and without it as the gradient reference. Generating
the candidates (LibCST) is the fix search's, paid with or without verification: its own column.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "resnet_skip_connection.py"


def _session() -> tuple[Any, Any, Any, BaseException]:
    """A shell that ran the example, its extension, the failing cell's window and its error."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output
    from traitlets.config import Config

    from inplace_magic.ipython.magic import _LOADED
    from inplace_magic.replay.kernel import CellCode, FailedCell

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell(config=config)
    shell.run_line_magic("load_ext", "inplace_magic")
    with capture_output():
        for source in EXAMPLE.read_text().split("# %%\n")[1:]:
            result = shell.run_cell(source, store_history=True)
    error = result.error_in_exec
    assert error is not None, "the example's last cell fails"
    extension = _LOADED[shell]
    number = shell.execution_count - 1
    window = FailedCell([CellCode(number, *extension.cellmap.code[number])], extension.starts.get(number))
    return shell, extension, window, error


def verification_row(results: dict[str, Any], repeats: int) -> str:
    """Measure B10 into ``results["B10_verification"]`` and return its Markdown table."""
    from inplace_magic.fix.live import LiveVerification
    from inplace_magic.fix.live.window import build
    from inplace_magic.pipeline import core
    from inplace_magic.pipeline.kernel import diagnose_failure
    from inplace_magic.replay.kernel import replay_in_kernel

    shell, extension, window, error = _session()
    diagnosis = diagnose_failure(
        shell, extension.cellmap, window, error, starts=extension.starts, fixes="none"
    )
    assert diagnosis.diagnosis is not None and diagnosis.diagnosis.reproduced
    report = dict(diagnosis.diagnosis.to_json())
    best = LiveVerification(shell, extension.cellmap, window, report, starts=extension.starts).candidates[0]
    cells = build(shell, extension.cellmap, window, best.cells, extension.starts).original

    def one_replay() -> None:
        got = replay_in_kernel(
            shell,
            cells,
            lambda rerun: core.replay(rerun, error, extension.cellmap, lambda: shell.user_ns, None),
        )
        assert got is not None and got.reproduced

    replays: list[int] = []
    generation: list[float] = []

    def verify() -> None:
        started = time.perf_counter()
        verification = LiveVerification(shell, extension.cellmap, window, report, starts=extension.starts)
        generation.append(time.perf_counter() - started)
        checked = verification.run()
        assert checked[0].outcome == "verified" and checked[0].fix["preserves_gradients"] is True
        replays.append(verification.replays)

    one_replay(), verify()  # warm-up
    times: dict[str, list[float]] = {"replay": [], "verification": []}
    for _ in range(repeats):
        for key, fn in (("replay", one_replay), ("verification", verify)):
            started = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - started)
        times["verification"][-1] -= generation[-1]
    medians = {k: statistics.median(v) for k, v in times.items()}
    row = {
        "replay_ms": round(medians["replay"] * 1e3, 2),
        "verification_ms": round(medians["verification"] * 1e3, 2),
        "verification_x": round(medians["verification"] / medians["replay"], 2),
        "candidates_ms": round(statistics.median(generation[1:]) * 1e3, 2),
        "replays": max(replays),
        "runs": repeats,
    }
    results["B10_verification"] = row
    shell.run_line_magic("unload_ext", "inplace_magic")
    return (
        "\n| B10 verifying the best fix (live kernel) | one replay | verification | verification / replay "
        "| replays | candidates (LibCST) | runs |\n|---|---|---|---|---|---|---|\n"
        f"| skip connection (3 cells) | {row['replay_ms']} ms | {row['verification_ms']} ms | "
        f"{row['verification_x']}x | {row['replays']} | {row['candidates_ms']} ms | {row['runs']} |\n"
    )


if __name__ == "__main__":
    import sys

    import torch

    torch.set_num_threads(1)
    print(verification_row({}, int(sys.argv[1]) if len(sys.argv) > 1 else 15))
