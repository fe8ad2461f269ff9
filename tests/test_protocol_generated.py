"""One source for the wire protocol: the JSON Schemas in schema/wire are what the TypedDicts say
(regenerated and diffed here; src/__tests__/wire.test.ts does the same for the TypeScript generated
from them), the kernel's validator and the schema agree on every message, every field of every
incoming message is type-checked, and the line-edit vectors shared with the TypeScript half hold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_type_hints

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from inplace_magic.diagnose.contract import DiagnosisJSON
from inplace_magic.lab import protocol as lab
from inplace_magic.lab.schema import schemas, text
from inplace_magic.panel import protocol as panel
from inplace_magic.panel.apply import Refused, apply_edits
from inplace_magic.panel.wire import problem

ROOT = Path(__file__).resolve().parents[1]
WIRE = ROOT / "schema" / "wire"
FIXTURES = ROOT / "tests" / "fixtures" / "widget"
SCHEMAS = schemas()
REGISTRY: Registry = Registry().with_resources(
    (name, Resource.from_contents(schema)) for name, schema in SCHEMAS.items()
)


def _schema_validator(file: str, name: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"{file}#/$defs/{name}"}, registry=REGISTRY)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_the_committed_schema_is_what_the_typeddicts_say(name: str) -> None:
    """`make protocol` writes these files; a protocol change that was not regenerated fails here."""
    assert (WIRE / name).read_text(encoding="utf-8") == text(SCHEMAS[name]), (
        f"schema/wire/{name} is out of date: run `make protocol`"
    )


def test_the_schemas_are_valid_json_schema() -> None:
    for schema in SCHEMAS.values():
        Draft202012Validator.check_schema(schema)


STATES = sorted((FIXTURES / "states").glob("*.json"))


@pytest.mark.parametrize("path", STATES, ids=[p.stem for p in STATES])
def test_the_panel_states_and_their_diagnoses_follow_the_protocol(path: Path) -> None:
    state = json.loads(path.read_text())
    assert problem(panel.PanelState, state) is None
    assert list(_schema_validator("panel.schema.json", "PanelState").iter_errors(state)) == []
    diagnosis = json.loads((FIXTURES / path.name).read_text())["diagnosis"]
    assert problem(DiagnosisJSON, diagnosis) is None
    assert list(_schema_validator("diagnosis.schema.json", "DiagnosisJSON").iter_errors(diagnosis)) == []
    message = {"type": "diagnosis", "protocol": 2, "version": "0", "mismatch": "", "state": state}
    assert problem(lab.DiagnosisMessage, message) is None
    assert list(_schema_validator("lab.schema.json", "DiagnosisMessage").iter_errors(message)) == []


def _valid(td: type) -> dict[str, Any]:
    """A valid instance of one of the incoming messages."""
    return {
        panel.ApplyRequest: {
            "type": "apply",
            "protocol": panel.PROTOCOL_VERSION,
            "diagnosisId": "d1",
            "fixIndex": 0,
            "requestId": "r1",
        },
        lab.Configure: {"type": "configure", "protocol": lab.LAB_PROTOCOL_VERSION, "autoDiagnose": True},
        lab.Sync: {"type": "sync", "protocol": lab.LAB_PROTOCOL_VERSION},
        lab.Dismiss: {"type": "dismiss", "protocol": lab.LAB_PROTOCOL_VERSION, "diagnosisId": "d1"},
    }[td]


INCOMING = [panel.ApplyRequest, lab.Configure, lab.Sync, lab.Dismiss]
FILES = {panel.ApplyRequest: "panel.schema.json"}
# a value of every JSON type, put in every field of every incoming message
WRONG: list[object] = [True, 1, 1.5, "x", None, [], {}]
CASES = [(td, key, value) for td in INCOMING for key in get_type_hints(td) for value in WRONG]


@pytest.mark.parametrize(
    ("td", "key", "value"), CASES, ids=[f"{td.__name__}.{key}={json.dumps(v)}" for td, key, v in CASES]
)
def test_every_field_of_every_incoming_message_is_type_checked(td: type, key: str, value: object) -> None:
    """The JSON Schema (the TypeScript types' source, checked by jsonschema) is the oracle: the
    kernel's validator refuses exactly what it refuses, and names the field."""
    message = {**_valid(td), key: value}
    schema_refuses = bool(
        list(_schema_validator(FILES.get(td, "lab.schema.json"), td.__name__).iter_errors(message))
    )
    found = problem(td, message)
    assert (found is not None) == schema_refuses, (found, schema_refuses)
    if found is not None:
        assert found.startswith(f"{key} must be"), found


def test_most_of_those_values_are_wrong() -> None:
    """Each field takes one JSON type: of the seven values, at most two fit (1 and 1.5 for a number)."""
    refused = sum(problem(td, {**_valid(td), key: value}) is not None for td, key, value in CASES)
    assert refused >= len(CASES) * 5 // 7


def test_bool_is_not_an_integer_and_one_is_not_true() -> None:
    assert problem(panel.ApplyRequest, {**_valid(panel.ApplyRequest), "fixIndex": True}) == (
        "fixIndex must be an integer, not true"
    )
    assert problem(lab.Configure, {**_valid(lab.Configure), "autoDiagnose": 1}) == (
        "autoDiagnose must be true or false, not 1"
    )
    assert problem(lab.Sync, {"type": "sync", "protocol": True}) == "protocol must be an integer, not true"


@pytest.mark.parametrize("td", INCOMING, ids=[td.__name__ for td in INCOMING])
def test_missing_and_unknown_fields_are_refused(td: type) -> None:
    valid = _valid(td)
    assert problem(td, valid) is None
    assert list(_schema_validator(FILES.get(td, "lab.schema.json"), td.__name__).iter_errors(valid)) == []
    for key in valid:
        assert problem(td, {k: v for k, v in valid.items() if k != key}) == f"the message has no {key}"
    assert problem(td, {**valid, "code": "import os"}) == "the message carries fields it never has: code"


VECTORS = json.loads((FIXTURES / "apply" / "line_edits.json").read_text())["vectors"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_the_shared_line_edit_vectors(vector: dict[str, Any]) -> None:
    """src/lab/__tests__/edits.test.ts runs the same vectors through the TypeScript half."""
    if "result" in vector:
        assert apply_edits(vector["text"], vector["edits"]) == vector["result"]
    else:
        with pytest.raises(Refused) as refused:
            apply_edits(vector["text"], vector["edits"])
        assert str(refused.value) == vector["mismatch"]
