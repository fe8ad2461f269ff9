"""The wire protocol as JSON Schema, written from its one source: the TypedDicts.

``python -m inplace_magic.lab.schema schema/wire`` (part of ``make protocol``) writes

- ``diagnosis.schema.json``: ``Diagnosis.to_json()`` (:mod:`inplace_magic.diagnose.contract`), the
  CLI's ``--json`` and the notebook output's diagnosis;
- ``panel.schema.json``: the panel's traits and messages (:mod:`inplace_magic.panel.protocol`);
- ``lab.schema.json``: the sidebar's comm messages (:mod:`.protocol`).

The TypeScript types are generated from these files (``schema/wire/to-typescript.mjs``). Tests write
them again and diff, so a protocol change that was not regenerated fails.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..diagnose.contract import DiagnosisJSON
from ..panel import protocol as panel
from ..panel.wire import JSONSchema, SchemaWriter
from ..record.family import Kind
from . import protocol as lab

PANEL_FILE = "panel.schema.json"


def schemas() -> dict[str, JSONSchema]:
    """File name -> schema, for the three parts of the protocol."""
    panel_roots: list[object] = [panel.PanelModel, panel.ApplyRequest]
    lab_roots: list[object] = [lab.KernelMessage, lab.ExtensionMessage]
    return {
        "diagnosis.schema.json": SchemaWriter({"Kind": Kind}).document(
            "DiagnosisJSON",
            "One diagnosed in-place autograd error: Diagnosis.to_json(), the CLI's --json and the "
            "notebook output's application/vnd.inplace-magic.diagnosis+json.",
            [DiagnosisJSON],
        ),
        PANEL_FILE: SchemaWriter(panel.ALIASES).document(
            "PanelPayload",
            "The diagnosis panel's synced traits (kernel -> front end) and its request "
            "(front end -> kernel).",
            panel_roots,
            **{"x-constants": {"PROTOCOL_VERSION": panel.PROTOCOL_VERSION}},
        ),
        "lab.schema.json": SchemaWriter(
            {"KernelMessage": lab.KernelMessage, "ExtensionMessage": lab.ExtensionMessage},
            {panel.PanelState: f"{PANEL_FILE}#/$defs/PanelState"},
        ).document(
            "LabMessage",
            f"The messages of the comm on {lab.COMM_TARGET!r} between the kernel and the JupyterLab "
            "extension.",
            lab_roots,
            **{
                "x-constants": {
                    "LAB_PROTOCOL_VERSION": lab.LAB_PROTOCOL_VERSION,
                    "COMM_TARGET": lab.COMM_TARGET,
                }
            },
        ),
    }


def text(schema: JSONSchema) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0] if args else "schema/wire")
    folder.mkdir(parents=True, exist_ok=True)
    for name, schema in schemas().items():
        (folder / name).write_text(text(schema), encoding="utf-8")
        print(f"wrote {folder / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
