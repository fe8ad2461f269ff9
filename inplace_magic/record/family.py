"""Is an exception one of ours (the in-place autograd family), and which kind?

The message decides only *whether* the error belongs to the family; what happened is decided from
the replay's records, never from the wording (``which is output 0 of X`` names the writer, the
saver or the producer depending on the case, and its spelling changed across torch versions).
"""

from __future__ import annotations

import re
from typing import Literal

Kind = Literal["version_counter", "leaf_inplace", "view_inplace", "other"]

_SOURCES: tuple[tuple[Kind, str], ...] = (
    ("version_counter", r"needed for gradient computation has been modified by an inplace operation"),
    (
        "leaf_inplace",
        r"a (view of a )?leaf Variable that requires grad (is being|has been) used in an in-place",
    ),
    ("view_inplace", r"is a view and (is being modified inplace|its base or another view)"),
    ("view_inplace", r"view of a view which was created in no_grad mode"),
    ("view_inplace", r"A view was created in (no_grad|inference) mode and is being modified inplace"),
    ("view_inplace", r"modifies inplace an input that is a view of another Tensor"),
    ("other", r"Can't detach views in-place"),
    ("other", r"saved tensor that has been detached in-place"),
    ("other", r"In-place (leakyReLu|elu) backward calculation is triggered"),
    ("other", r"functions with out=\.\.\. arguments don't support automatic differentiation"),
    ("other", r"saved tensor pack hook is modifying its input in place"),
    ("other", r"cached during selective activation checkpoint has been mutated"),
    ("other", r"attempted to call in-place operation .* that would mutate a captured Tensor"),
)
_PATTERNS = tuple((kind, re.compile(pattern, re.IGNORECASE)) for kind, pattern in _SOURCES)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes (``torch.compile`` wraps the version error in BackendCompilerFailed)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        current = current.__cause__
    return seen


def classify(exc: BaseException) -> Kind | None:
    """The in-place kind of ``exc``, or None when the error is not ours."""
    for item in _chain(exc):
        if not isinstance(item, RuntimeError):
            continue
        message = str(item)
        for kind, pattern in _PATTERNS:
            if pattern.search(message):
                return kind
    return None
