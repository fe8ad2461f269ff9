"""IPython's custom exception hook, borrowed and given back, and notes on the user's exception.

IPython has one public hook for showing exceptions (``set_custom_exc``). The magic borrows it for a
cell at a time and ``%gradcheck on`` keeps it; both must hand exceptions that are not ours to
whatever handler was there before, exactly as IPython would have shown them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class ExceptionHook:
    """IPython's custom exception hook as it was: the types and the handler (a bound method)."""

    types: tuple[type[BaseException], ...]
    handler: Any

    @classmethod
    def current(cls, shell: Any) -> ExceptionHook:
        return cls(tuple(shell.custom_exceptions), shell.CustomTB)

    def put_back(self, shell: Any) -> None:
        shell.custom_exceptions = self.types
        shell.CustomTB = self.handler

    def show(self, shell: Any, etype: Any, value: BaseException, tb: Any, tb_offset: Any) -> Any:
        """Show an exception that is not ours as IPython would have with this hook in place."""
        if self.types and isinstance(value, self.types):
            return self.handler(etype, value, tb, tb_offset=tb_offset)
        shell.showtraceback((etype, value, tb), running_compiled_code=True)
        return None


def add_note(error: BaseException, note: str) -> None:
    """Add ``note`` to the user's exception once (never rewrite its message)."""
    notes = getattr(error, "__notes__", None) or []
    if note in notes:
        return
    if hasattr(error, "add_note"):
        error.add_note(note)
    else:  # Python 3.10: stored, not shown
        error.__notes__ = [*notes, note]  # type: ignore[attr-defined]
