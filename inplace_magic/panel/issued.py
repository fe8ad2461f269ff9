"""The diagnoses this kernel issued, with their fixes: the only fixes it ever applies.

A panel's synced state and the sidebar's copy of it live in the page, and a page script can rewrite
them. So the kernel keeps its own copy of every diagnosis it shows, by id, made when it built them and
never handed to a front end; an apply request names a diagnosis id and a fix index, and gets the fix
recorded here under them. A fix may edit a file outside the notebook only where the diagnosis itself
located code (a frame of the user's code ran there).
"""

from __future__ import annotations

import copy
import functools
import json
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..diagnose.contract import DiagnosisJSON
from ..present.segments import JSON_SCALARS
from .protocol import FixView, PanelState
from .state import FixVerdict, with_verdict

# The latest diagnoses a kernel keeps (a long session fails often): older panels then say so.
MAX_ISSUED = 64


@dataclass(frozen=True)
class Issued:
    """One diagnosis as the kernel issued it."""

    state: PanelState  # the kernel's own copy: no front end holds a reference to it
    base_dir: Path  # relative file names of the diagnosis are relative to this (absolute) folder
    located: frozenset[str]  # the file names the diagnosis located: the only files a fix may edit

    @functools.cached_property
    def files(self) -> frozenset[Path]:
        """The located files, resolved when a fix first asks (as the fix's own file is, then):
        resolving each path is a system call per folder, which every diagnosis shown paid."""
        return frozenset(map(self.resolve, self.located))

    def fix(self, index: int) -> FixView | None:
        fixes = self.state["fixes"]
        return fixes[index] if 0 <= index < len(fixes) else None

    def resolve(self, name: str) -> Path:
        path = Path(name)
        return (path if path.is_absolute() else self.base_dir / path).resolve()


def located_files(diag: DiagnosisJSON | Mapping[str, Any]) -> frozenset[str]:
    """Every file name a location of the diagnosis names (its fixes excluded: they are what is checked)."""
    names: set[str] = set()  # each resolved once: a dozen locations name two or three files

    def walk(value: object) -> None:
        if isinstance(value, Mapping):
            name = value.get("file")
            if isinstance(name, str) and name and isinstance(value.get("line"), int):
                names.add(name)
            for key, item in value.items():
                if key != "fixes" and type(item) not in JSON_SCALARS:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                if type(item) not in JSON_SCALARS:
                    walk(item)

    walk(diag)
    return frozenset(names)


class IssuedDiagnoses:
    """The latest diagnoses of this kernel, by id."""

    def __init__(self, limit: int = MAX_ISSUED) -> None:
        self.limit = limit
        self._by_id: OrderedDict[str, Issued] = OrderedDict()
        self._dismissed: set[str] = set()

    def issue(
        self,
        state: PanelState,
        diag: DiagnosisJSON | Mapping[str, Any],
        base_dir: Path | None = None,
        *,
        handed_over: bool = False,
    ) -> Issued:
        """Record ``state`` (built from ``diag``) as issued; the same diagnosis again replaces it.
        ``handed_over``: the caller built ``state`` for this and keeps no reference to it, so it is
        the kernel's own copy as it is (a copy costs a notebook's diagnosis 0.4 ms on a small model)."""
        folder = (base_dir or Path.cwd()).absolute()  # the folder now, resolved with the files
        # the state is JSON (what a front end is sent): a round trip copies it several times faster
        # than deepcopy, which a diagnosis shown in a notebook paid at every error
        own: PanelState = state if handed_over else json.loads(json.dumps(state))
        issued = Issued(own, folder, located_files(diag))
        self._by_id.pop(state["id"], None)
        self._by_id[state["id"]] = issued
        self._dismissed.discard(state["id"])
        while len(self._by_id) > self.limit:
            self._by_id.popitem(last=False)
        return issued

    def get(self, diagnosis_id: str) -> Issued | None:
        return self._by_id.get(diagnosis_id)

    def current(self) -> Iterator[PanelState]:
        """The issued diagnoses not dismissed, oldest first (copies: the caller may send them)."""
        for diagnosis_id, issued in self._by_id.items():
            if diagnosis_id not in self._dismissed:
                yield copy.deepcopy(issued.state)

    def update_fix(self, diagnosis_id: str, index: int, verdict: FixVerdict) -> PanelState | None:
        """Record what the kernel found out about fix ``index`` (its verification); the new state, a
        copy, or None when this kernel issued no such diagnosis or fix. Apply follows the update."""
        issued = self._by_id.get(diagnosis_id)
        fix = issued.fix(index) if issued is not None else None
        if issued is None or fix is None:
            return None
        issued.state["fixes"][index] = with_verdict(fix, verdict)
        return copy.deepcopy(issued.state)

    def dismiss(self, diagnosis_id: str) -> bool:
        """Leave ``diagnosis_id`` out of :meth:`current` (its fixes still apply from its panel)."""
        if diagnosis_id not in self._by_id:
            return False
        self._dismissed.add(diagnosis_id)
        return True


# This kernel's diagnoses: the magic, the panels and the sidebar's channel share them.
ISSUED = IssuedDiagnoses()
