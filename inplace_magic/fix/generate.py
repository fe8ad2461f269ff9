"""Every candidate rewrite for a diagnosis, from the fix kinds that apply to its kind of error."""

from __future__ import annotations

from collections.abc import Callable

from .context import Context
from .kinds import (
    allow_mutation,
    augmented_assign,
    captured_argument,
    carried_state,
    clone,
    inplace_kwarg,
    inplace_method,
    no_grad,
    out_argument,
    reorder_step,
)
from .model import Candidate

Generator = Callable[[Context], list[Candidate]]

# Order matters only among equally good verified fixes: edits at the write itself first, then the
# flag at a module's construction, copies (they cost memory), semantic changes, the fallback.
_PRECISE: list[Generator] = [
    inplace_method.candidates,
    out_argument.candidates,
    augmented_assign.candidates,
    inplace_kwarg.candidates,
    clone.candidates,
]
_BY_KIND: dict[str, list[Generator]] = {
    "version_counter": [
        *_PRECISE,
        reorder_step.candidates,
        carried_state.candidates,
        allow_mutation.candidates,
    ],
    # An out-of-place rewrite would turn the leaf into a non-leaf that never gets a .grad.
    "leaf_inplace": [no_grad.candidates],
    # a view made by a module's full backward hook is often written by an in-place module right
    # after the hooked one (``nn.ReLU(inplace=True)``): its flag is the edit
    "view_inplace": [
        inplace_method.candidates,
        augmented_assign.candidates,
        inplace_kwarg.candidates,
        clone.candidates,
        no_grad.candidates,
    ],
    "other": [captured_argument.candidates, *_PRECISE],
}


def candidates(ctx: Context) -> list[Candidate]:
    found: list[Candidate] = []
    for generate in _BY_KIND.get(ctx.kind, _PRECISE):
        for candidate in generate(ctx):
            if candidate.cells and all(candidate.cells != seen.cells for seen in found):
                found.append(candidate)
    return found
