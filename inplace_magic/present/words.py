"""The words a user reads about a diagnosis, made once: every face (text report, HTML, the panel,
the sidebar) shows these, and the front end gets them in its payload instead of writing its own.

Fix labels, kind names, which cells to re-run after a fix, and what to do when the kernel and the
front end speak different protocol versions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from ..diagnose.contract import FixJSON

LabelTag = Literal["verified", "unverified", "gradient-preserving", "changes-semantics"]

LABEL_WORDS: dict[LabelTag, str] = {
    "verified": "verified",
    "unverified": "not verified",
    "gradient-preserving": "gradient-preserving",
    "changes-semantics": "changes the training semantics",
}

KIND_WORDS: dict[str, str] = {
    "version_counter": "Saved tensor overwritten",
    "leaf_inplace": "In-place write into a leaf",
    "view_inplace": "In-place write into a view",
    "other": "In-place autograd error",
}


def fix_tags(fix: FixJSON | Mapping[str, Any]) -> list[LabelTag]:
    """How far a fix can be trusted: verified? gradients compared and equal? semantics changed?"""
    tags: list[LabelTag] = ["verified" if fix.get("verified") else "unverified"]
    if fix.get("changes_semantics"):
        tags.append("changes-semantics")
    elif fix.get("preserves_gradients") is True:  # only when the gradients were compared and matched
        tags.append("gradient-preserving")
    return tags


def fix_label(fix: FixJSON | Mapping[str, Any]) -> str:
    """The labels of a fix in one phrase: "verified, gradient-preserving"."""
    return ", ".join(LABEL_WORDS[tag] for tag in fix_tags(fix))


def kind_name(kind: object) -> str:
    """The kind of in-place error in plain words."""
    return KIND_WORDS.get(str(kind), KIND_WORDS["other"])


def rerun_hint(edited_cells: Iterable[int], failing_cell: int | None) -> str:
    """Which cells to re-run after a fix: from the first edited cell to the failing one."""
    cells = sorted(set(edited_cells))
    if not cells:
        return "Re-run the failing cell."
    first = cells[0]
    last = max(cells[-1], failing_cell if failing_cell is not None else cells[-1])
    return f"Then re-run cell {first}." if first == last else f"Then re-run cells {first}–{last}."


def panel_mismatch(version: str, protocol: int) -> str:
    """Shown by a panel front end that does not speak the protocol of the state it was given."""
    return (
        f"This panel was made by inplace_magic {version}, which speaks protocol {protocol}, and its "
        "front end speaks another: restart the kernel after upgrading inplace_magic, then re-run the cell."
    )


def kernel_mismatch(version: str, protocol: int) -> str:
    """Shown by a JupyterLab extension that does not speak the kernel's protocol."""
    return (
        f"This kernel's inplace_magic {version} speaks protocol {protocol}, and this JupyterLab "
        "extension speaks another: install the same inplace_magic version in the kernel's environment "
        "and in JupyterLab's, reload the page, then restart the kernel."
    )


def panel_request_mismatch(theirs: object, version: str, protocol: int) -> str:
    """The kernel's answer to a panel request of another protocol version."""
    return (
        f"The panel speaks protocol {_shown(theirs)} and this kernel's inplace_magic {version} speaks "
        f"{protocol}: restart the kernel after upgrading inplace_magic, then re-run the cell."
    )


def extension_mismatch(theirs: object, their_version: object, version: str, protocol: int) -> str:
    """The kernel's answer to a JupyterLab extension message of another protocol version."""
    named = f" (inplace_magic {their_version})" if isinstance(their_version, str) else ""
    return (
        f"The JupyterLab extension{named} speaks protocol {_shown(theirs)} and this kernel's "
        f"inplace_magic {version} speaks {protocol}: install the same inplace_magic version in the "
        "kernel's environment and in JupyterLab's, reload the page, then restart the kernel."
    )


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 20 else text[:19] + "…"
