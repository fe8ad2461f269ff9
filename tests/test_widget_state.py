"""The panel state built from real diagnoses: golden states (which the TS tests render), the graph
cap, determinism, and robustness to partial input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from inplace_magic.panel.graph import MAX_NODES, build_graph
from inplace_magic.panel.protocol import PROTOCOL_VERSION
from inplace_magic.panel.state import build_state, diagnosis_id

FIXTURES = Path(__file__).parent / "fixtures" / "widget"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.json"))


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _state(name: str) -> dict[str, Any]:
    fixture = _fixture(name)
    return dict(build_state(fixture["diagnosis"], dict(enumerate(fixture["sources"]))))


def test_the_fixtures_cover_every_kind_the_panel_draws() -> None:
    kinds = {_fixture(n)["diagnosis"]["kind"] for n in NAMES}
    assert {"version_counter", "leaf_inplace", "view_inplace"} <= kinds
    assert any(_fixture(n)["diagnosis"]["optimizer_step"] for n in NAMES)
    assert sum(bool(_fixture(n)["diagnosis"]["skip"]) for n in NAMES) >= 2


@pytest.mark.parametrize("name", NAMES)
def test_the_golden_state_still_follows_from_the_diagnosis(name: str) -> None:
    """The TS tests render states/<name>.json: it must be what Python builds (make widget-fixtures)."""
    golden = json.loads((FIXTURES / "states" / f"{name}.json").read_text())
    assert json.loads(json.dumps(_state(name))) == golden


@pytest.mark.parametrize("name", NAMES)
def test_the_state_is_small_versioned_and_deterministic(name: str) -> None:
    state = _state(name)
    assert state["version"] == PROTOCOL_VERSION
    assert len(json.dumps(state)) < 64_000
    assert state == _state(name)
    assert state["id"] == diagnosis_id(_fixture(name)["diagnosis"])
    ids = [n["id"] for n in state["graph"]["nodes"]]
    assert len(ids) == len(set(ids))
    for edge in state["graph"]["edges"]:
        assert {edge["source"], edge["target"]} <= set(ids)


def _roles(state: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for node in state["graph"]["nodes"]:
        for role in node["roles"]:
            out.setdefault(role, []).append(node)
    return out


def test_skip_connection_graph_timeline_and_fix() -> None:
    state = _state("skip_connection")
    roles = _roles(state)
    assert roles["writer"] == roles["merge"]  # `x += residual` overwrites and merges
    assert roles["saver"][0]["module"] == "blocks.1.act2"
    assert roles["split"][0]["where"]["line"] == 18  # `residual = x`, where the skip is captured
    skip = [e for e in state["graph"]["edges"] if e["kind"] == "skip"]
    assert len(skip) == 1 and skip[0]["broken"] and skip[0]["source"] == roles["split"][0]["id"]
    assert [s["text"] for s in state["timeline"]] == [
        "saved at v1 by `blocks.1.act2` (elu_)",
        "written in place by `blocks.1` (add_) (→v2)",
        "needed at v1 by EluBackward1, but it is at v2",
    ]
    fix = state["fixes"][0]
    assert fix["labels"] == [
        {"tag": "verified", "text": "verified"},
        {"tag": "gradient-preserving", "text": "gradient-preserving"},
    ]
    assert fix["rerun"] == "Then re-run cell 0 and cell 2."
    assert state["kind_label"] == "Saved tensor overwritten"
    lines = fix["diffs"][0]["lines"]
    assert {"op": "-", "text": "        x += residual"} in lines
    assert {"op": "+", "text": "        x = x + residual"} in lines
    assert fix["before"]["0"] == _fixture("skip_connection")["sources"][0]


def test_optimizer_step_names_the_step_and_labels_the_fix_as_changing_semantics() -> None:
    state = _state("optimizer_step")
    roles = _roles(state)
    assert roles["optimizer"][0]["op"] == "Adam.step() call #1"
    assert "writer" not in roles and "split" not in roles
    assert roles["tensor"][0]["module"] == "D.2.weight"
    assert state["writer"]["role"] == "updated it in place (optimizer step)"
    assert {"tag": "changes-semantics", "text": "changes the training semantics"} in state["fixes"][0][
        "labels"
    ]


def test_a_fix_is_called_gradient_preserving_only_when_the_gradients_were_compared() -> None:
    view = _state("view")["fixes"][0]
    assert view["verified"] and view["preserves_gradients"] is None
    assert [label["tag"] for label in view["labels"]] == ["verified"]


def test_leaf_and_view_graphs() -> None:
    leaf = _roles(_state("leaf"))
    assert "leaf" in leaf["tensor"][0]["roles"] and "saver" not in leaf and "backward" not in leaf
    assert [s["event"] for s in _state("leaf")["timeline"]] == ["created", "written"]
    view = _state("view")
    assert _roles(view)["saver"][0]["op"] == "split"
    assert [s["event"] for s in view["timeline"]] == ["view", "written"]


def _long_skip(steps: int) -> dict[str, Any]:
    def step(i: int) -> dict[str, Any]:
        return {"op": "aten.relu.default", "module": f"m{i}", "cell": 0, "line": 100 + i, "code": f"x{i}"}

    diag = _fixture("skip_connection")["diagnosis"]
    diag["skip"]["saver_branch"] = [step(i) for i in range(steps)]
    diag["skip"]["writer_branch"] = [step(i) for i in range(steps, 2 * steps)]
    diag["also_written_by"] = [dict(step(i), op="aten.add_.Tensor") for i in range(10)]
    return diag


def test_a_huge_neighbourhood_is_capped_and_collapsed() -> None:
    graph = build_graph(_long_skip(500))
    assert len(graph["nodes"]) <= MAX_NODES
    more = [n for n in graph["nodes"] if "more" in n["roles"]]
    assert [n["op"] for n in more] == ["… 494 ops", "… 494 ops"]
    assert graph == build_graph(_long_skip(500))


@pytest.mark.parametrize(
    "diag",
    [{}, {"kind": "leaf_inplace"}, {"inplace": {"op": "Tensor.add_"}, "tensor": None, "fixes": [{}]}],
    ids=["empty", "kind-only", "partial"],
)
def test_partial_diagnoses_never_raise(diag: dict[str, Any]) -> None:
    state = build_state(diag)
    assert state["version"] == PROTOCOL_VERSION
    assert state["headline"]


def test_without_sources_the_diff_is_built_from_the_edits() -> None:
    state = build_state(_fixture("optimizer_step")["diagnosis"])
    lines = state["fixes"][0]["diffs"][0]["lines"]
    assert lines[0] == {"op": "@", "text": "line 9"}
    assert {"op": "-", "text": "    G_loss = torch.mean(torch.log(1. - prob_artist1))"} in lines
    assert state["fixes"][0]["before"] == {}
