"""After ``%%gradcheck`` the session holds exactly what a plain failing run leaves, and the replay
took the same data from every stream as the first run took. The same holds after the default
``%%gradcheck``, whose fixes are verified by re-executing them in the kernel.

Each case of ``notebooks/statecases.py`` runs in a fresh IPython shell twice, in two processes:
plainly, and with ``%%gradcheck`` on its failing cell. ``notebooks/statehash.py`` (the oracle,
independent of the package) digests every tensor, parameter, optimizer state, global random state,
random generator object, container and iterator position of each; the digests must be equal.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from notebooks.statecases import CASES

HERE = Path(__file__).parent
RUNNER = HERE / "notebooks" / "statecases.py"

# the replay takes from these what the first run took (the file each run writes shows it)
SAME_DATA = {
    "list_iterator",
    "range_iterator_in_a_function",
    "dataloader_iterator",
    "numpy_default_rng",
    "torch_generator",
    "random_Random",
    "generator_in_a_dataset_attribute",
}


# only streams are set back before the replay: these writes of the first run are seen by the replay
STARTS_FROM_THE_FAILED_RUN = {"data_assignment_ema", "large_and_deep_containers"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, dict[str, Any]]]:
    """mode -> case -> what the run left; both modes run at once, each in its own process."""
    folder = tmp_path_factory.mktemp("state")
    modes = {"plain": "plain", "magic": "%%gradcheck --no-fix", "verified": "%%gradcheck"}
    processes = {
        mode: subprocess.Popen([sys.executable, str(RUNNER), argument, str(folder / f"{mode}.json")])
        for mode, argument in modes.items()
    }
    for mode, process in processes.items():
        assert process.wait(timeout=600) == 0, f"the {mode} runs failed"
    return {mode: json.loads((folder / f"{mode}.json").read_text()) for mode in modes}


@pytest.mark.parametrize("case", list(CASES))
def test_state_after_gradcheck_equals_a_plain_failing_runs(
    case: str, runs: dict[str, dict[str, dict[str, Any]]]
) -> None:
    plain, magic = runs["plain"][case], runs["magic"][case]
    assert magic["error"] == plain["error"]  # the user's own error
    differing = sorted(
        k
        for k in plain["state"].keys() | magic["state"].keys()
        if plain["state"].get(k) != magic["state"].get(k)
    )
    assert differing == []
    assert any(name.startswith("<random>") for name in plain["state"])
    if case in STARTS_FROM_THE_FAILED_RUN:  # the replay saw what the failed run left, then undid it
        assert len(set(magic["seen"])) == 2


@pytest.mark.parametrize("case", list(CASES))
def test_state_after_verifying_the_fixes_equals_a_plain_failing_runs(
    case: str, runs: dict[str, dict[str, dict[str, Any]]]
) -> None:
    plain, verified = runs["plain"][case], runs["verified"][case]
    assert verified["error"] == plain["error"]
    differing = sorted(
        k
        for k in plain["state"].keys() | verified["state"].keys()
        if plain["state"].get(k) != verified["state"].get(k)
    )
    assert differing == []
    if case != "generator_refused":  # replayed, so its fix was re-executed here too
        assert verified["fix_verified"] is True
        # the cell ran as given, replayed once, then twice more: the fix and the gradient reference
        assert len(verified["seen"]) == 4
    if case in SAME_DATA:  # the verification's re-runs took what the first run took, too
        assert verified["seen"] == plain["seen"] * 4


@pytest.mark.parametrize("case", sorted(SAME_DATA))
def test_the_replay_takes_from_a_stream_what_the_first_run_took(
    case: str, runs: dict[str, dict[str, dict[str, Any]]]
) -> None:
    plain, magic = runs["plain"][case], runs["magic"][case]
    assert len(magic["seen"]) == 2, "the cell ran twice: the first run and the replay"
    assert magic["seen"] == plain["seen"] * 2
    assert magic["writer"] == "y.mul_(2)"
    assert not [n for n in magic["diagnosis_notes"] if "could not set" in n]


def test_a_cell_reading_a_generator_is_not_replayed_and_the_note_says_why(
    runs: dict[str, dict[str, dict[str, Any]]],
) -> None:
    magic = runs["magic"]["generator_refused"]
    assert magic["seen"] == runs["plain"]["generator_refused"]["seen"]  # ran once: never replayed
    assert magic["writer"] is None
    (note,) = magic["notes"]
    assert "not replayed" in note and "`gen` (a generator)" in note and "--allow-advance" in note
