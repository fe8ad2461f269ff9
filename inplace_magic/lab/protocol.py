"""The kernel ⇄ JupyterLab extension protocol: the messages of the comm on :data:`COMM_TARGET`.

This module is the one source of truth. ``make protocol`` writes it as JSON Schema
(``schema/wire/lab.schema.json``) and generates the TypeScript types from that (``src/lab/wire.ts``);
tests regenerate both and diff. The kernel checks every message from the extension against the
classes here, field by field, and answers one it does not accept with a :class:`Refused` that says why.

The kernel opens a comm for every message it sends (so a reloaded page still hears the next one);
the open's data is a :class:`Hello` or a :class:`DiagnosisMessage`. The extension may also open a comm
on the target itself (after a page reload, say) and ask with a :class:`Sync`; the kernel answers on
that comm. Every kernel message carries ``mismatch``, what an extension that does not speak its
``protocol`` shows.

Nothing on this wire is code: the extension edits cells only with fixes that arrived here (it matches
the diagnosis id and fix index), and the kernel only reads settings and requests from what comes back.
"""

from __future__ import annotations

from typing import Literal, TypedDict

from ..panel.protocol import PanelState

LAB_PROTOCOL_VERSION = 3
COMM_TARGET = "inplace_magic"


class _FromKernel(TypedDict):
    protocol: int  # LAB_PROTOCOL_VERSION; ``protocol``, ``version``, ``mismatch`` keep their meaning
    version: str  # the kernel's inplace_magic version
    mismatch: str  # what an extension that does not speak ``protocol`` shows


class Hello(_FromKernel):
    """Kernel -> extension, when ``%load_ext inplace_magic`` runs: the extension answers with its settings."""

    type: Literal["hello"]


class DiagnosisMessage(_FromKernel):
    """Kernel -> extension: one diagnosis and its fixes (the panel's state)."""

    type: Literal["diagnosis"]
    state: PanelState


class Diagnoses(_FromKernel):
    """Kernel -> extension, the answer to a :class:`Sync`: the diagnoses not dismissed, oldest first."""

    type: Literal["diagnoses"]
    states: list[PanelState]


class Refused(_FromKernel):
    """Kernel -> extension: a message the kernel did not accept, and why (nothing was done)."""

    type: Literal["refused"]
    message: str


class Configure(TypedDict):
    """Extension -> kernel: the user's settings that the kernel side applies."""

    type: Literal["configure"]
    protocol: int
    autoDiagnose: bool  # run `%gradcheck on` in this kernel


class Sync(TypedDict):
    """Extension -> kernel: send the diagnoses of this kernel again (a reloaded page lost them)."""

    type: Literal["sync"]
    protocol: int


class Dismiss(TypedDict):
    """Extension -> kernel: leave this diagnosis out of later syncs (its panel still works)."""

    type: Literal["dismiss"]
    protocol: int
    diagnosisId: str


KernelMessage = Hello | DiagnosisMessage | Diagnoses | Refused
ExtensionMessage = Configure | Sync | Dismiss
# the messages the kernel accepts, by their ``type``
EXTENSION_MESSAGES: dict[str, type] = {"configure": Configure, "sync": Sync, "dismiss": Dismiss}
