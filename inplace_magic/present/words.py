"""The words a user reads about a diagnosis, made once: every face (text report, HTML, the panel,
the sidebar) shows these, and the front end gets them in its payload instead of writing its own.

Fix labels and how far its verification got, kind names, how cells are named, which cells to re-run
after a fix, and what to do when the kernel and the front end speak different protocol versions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from ..diagnose.contract import FixJSON
from ..diagnose.diagnosis import cell_name

# the faces read every word of a diagnosis from here, code lines too
from ..diagnose.locations import without_comment as without_comment

LabelTag = Literal[
    "verified", "unverified", "gradient-preserving", "changes-semantics", "verifying", "did-not-help"
]

LABEL_WORDS: dict[LabelTag, str] = {
    "verified": "verified",
    "unverified": "not verified",
    "gradient-preserving": "gradient-preserving",
    "changes-semantics": "changes the training semantics",
    "verifying": "verifying…",
    "did-not-help": "did not help",
}

# How far the kernel got with a fix: "verifying" while it runs it, then a verdict.
VerificationStatus = Literal["verifying", "verified", "changes_semantics", "did_not_help", "not_verified"]

VERIFICATION_STATUSES: tuple[VerificationStatus, ...] = (
    "verifying",
    "verified",
    "changes_semantics",
    "did_not_help",
    "not_verified",
)

# Why Apply waits, or is refused, in each status where it is not offered.
APPLY_WAITS: dict[VerificationStatus, str] = {
    "verifying": "The kernel is running this fix to check it; Apply is offered when it has finished.",
    "did_not_help": "The kernel ran this fix and the error remained, so it is not offered.",
}

# A cell of a live kernel, as the notebook shows it: its In[] prompt (JupyterLab's "[4]:").
PROMPT_CELL_NAME = "cell [{}]"

KIND_WORDS: dict[str, str] = {
    "version_counter": "Saved tensor overwritten",
    "leaf_inplace": "In-place write into a leaf tensor",
    "view_inplace": "In-place write into a view",
    "other": "In-place autograd error",
}


def verification_status(fix: FixJSON | Mapping[str, Any]) -> VerificationStatus:
    """Where the fix's verification stands, from what the fix says about itself."""
    given = fix.get("verification")
    if isinstance(given, str) and given in VERIFICATION_STATUSES:
        return given  # type: ignore[return-value]  # checked just above
    if not fix.get("verified"):
        return "not_verified"
    if fix.get("changes_semantics") or fix.get("preserves_gradients") is False:
        return "changes_semantics"
    return "verified"


def fix_tags(fix: FixJSON | Mapping[str, Any], status: VerificationStatus | None = None) -> list[LabelTag]:
    """How far a fix can be trusted: verified? gradients compared and equal? semantics changed?"""
    status = status or verification_status(fix)
    if status in ("verifying", "did_not_help"):
        tags: list[LabelTag] = ["verifying" if status == "verifying" else "did-not-help"]
        # a reordered optimizer step changes the training whatever the run shows
        return [*tags, "changes-semantics"] if fix.get("changes_semantics") else tags
    tags = ["unverified" if status == "not_verified" else "verified"]
    if fix.get("changes_semantics") or status == "changes_semantics":
        tags.append("changes-semantics")
    elif fix.get("preserves_gradients") is True:  # only when the gradients were compared and matched
        tags.append("gradient-preserving")
    return tags


def fix_label(fix: FixJSON | Mapping[str, Any], status: VerificationStatus | None = None) -> str:
    """The labels of a fix in one phrase: "verified, gradient-preserving"."""
    return ", ".join(LABEL_WORDS[tag] for tag in fix_tags(fix, status))


def times(count: int) -> str:
    """How often code ran, in words: "once", "twice", "3 times"."""
    return {1: "once", 2: "twice"}.get(count, f"{count} times")


def can_apply(status: VerificationStatus) -> bool:
    """Whether a fix in ``status`` is offered: not while it is being verified, not when it failed."""
    return status not in APPLY_WAITS


def kind_name(kind: object) -> str:
    """The kind of in-place error in plain words."""
    return KIND_WORDS.get(str(kind), KIND_WORDS["other"])


def rerun_hint(edited_cells: Iterable[int], failing_cell: int | None) -> str:
    """Which cells to re-run after a fix: the edited ones, then the failing one."""
    cells = sorted(set(edited_cells))
    if not cells:
        return "Re-run the failing cell."
    if failing_cell is not None and failing_cell not in cells:
        cells.append(failing_cell)
    names = [cell_name(cell) for cell in cells]
    if len(names) == 1:
        return f"Then re-run {names[0]}."
    return f"Then re-run {', '.join(names[:-1])} and {names[-1]}."


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
