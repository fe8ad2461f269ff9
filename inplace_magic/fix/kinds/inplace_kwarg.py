"""Turn off the in-place flag of a module or functional activation/dropout.

The edit lands where the module is constructed (``defined_at``, or the ``self.X = ...`` that a
``self.X(...)`` call on a named line resolves to), not where it runs.

Whether this fixes anything depends on what the out-of-place op saves: on torch 2.13 ELU, LeakyReLU,
SELU, CELU and RReLU save their result only when in-place, so the flag fixes them; nn.ReLU saves its
output either way, so for ``y = relu(x); y += r`` only rewriting ``+=`` helps. The verifier decides.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from ...diagnose.diagnosis import cell_name
from ..context import Context
from ..model import Candidate
from ..parse import Change, Changes, ParsedCell, code_of, dotted

# Position of ``inplace`` among the positional parameters (after ``self`` / ``input``).
MODULES = {
    **dict.fromkeys(("ReLU", "ReLU6", "SELU", "SiLU", "Mish", "Hardswish", "Hardsigmoid"), 0),
    **dict.fromkeys(("LeakyReLU", "ELU", "CELU"), 1),
    **dict.fromkeys(
        ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"), 1
    ),
    **dict.fromkeys(("RReLU", "Hardtanh", "Threshold"), 2),
}
FUNCTIONS = {
    **dict.fromkeys(("relu", "relu6", "selu", "silu", "mish", "hardswish", "hardsigmoid"), 1),
    **dict.fromkeys(("elu", "celu", "leaky_relu"), 2),
    **dict.fromkeys(("hardtanh", "threshold"), 3),
    **dict.fromkeys(
        ("dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"), 3
    ),
    "rrelu": 4,
}
_SAVES_RESULT_WHEN_INPLACE = {
    "ELU",
    "LeakyReLU",
    "SELU",
    "CELU",
    "RReLU",
    "elu",
    "leaky_relu",
    "selu",
    "celu",
    "rrelu",
}


def _flag_position(call: cst.Call) -> tuple[str, int] | None:
    name = dotted(call.func)
    if name is None:
        return None
    prefix, _, last = name.rpartition(".")
    if last in MODULES and (not prefix or prefix.split(".")[-1] == "nn"):
        return last, MODULES[last]
    if last in FUNCTIONS and (not prefix or prefix.split(".")[-1] in ("F", "functional")):
        return last, FUNCTIONS[last]
    return None


def _is_true(node: cst.BaseExpression) -> bool:
    return isinstance(node, cst.Name) and node.value == "True"


def _without(args: Sequence[cst.Arg], index: int) -> list[cst.Arg]:
    """``args`` less one, commas mended so no stray comma is left behind."""
    kept = [arg for i, arg in enumerate(args) if i != index]
    if index == len(args) - 1 and kept:
        kept[-1] = kept[-1].with_changes(comma=args[index].comma)
    return kept


def flag_change(call: cst.Call) -> cst.Call | None:
    """The call with ``inplace`` off (a literal ``True`` is dropped, anything else becomes ``False``)."""
    found = _flag_position(call)
    if found is None:
        return None
    args = call.args
    if any(arg.star for arg in args):
        return None
    for index, arg in enumerate(args):
        if arg.keyword is not None and arg.keyword.value == "inplace":
            if isinstance(arg.value, cst.Name) and arg.value.value == "False":
                return None
            if _is_true(arg.value):
                return call.with_changes(args=_without(args, index))
            return call.with_changes(
                args=[*args[:index], arg.with_changes(value=cst.Name("False")), *args[index + 1 :]]
            )
    positional = [i for i, arg in enumerate(args) if arg.keyword is None]
    position = found[1]
    if position >= len(positional):
        return None  # not passed: already out of place
    index = positional[position]
    value = args[index].value
    if isinstance(value, cst.Name) and value.value == "False":
        return None
    if _is_true(value) and index == len(args) - 1:
        return call.with_changes(args=_without(args, index))
    return call.with_changes(
        args=[*args[:index], args[index].with_changes(value=cst.Name("False")), *args[index + 1 :]]
    )


def _constructions(parsed: ParsedCell, call: cst.Call) -> list[cst.Call]:
    """For ``self.X(...)``: the calls inside each ``self.X = ...`` of the enclosing class."""
    func = call.func
    if not (
        isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self"
    ):
        return []
    cls = parsed.enclosing(call, cst.ClassDef)
    if cls is None:
        return []
    found: list[cst.Call] = []
    for assign in parsed.nodes(cst.Assign):
        if not parsed.within(assign, cls):
            continue
        if any(dotted(target.target) == f"self.{func.attr.value}" for target in assign.targets):
            found.extend(node for node in parsed.nodes(cst.Call) if parsed.within(node, assign.value))
    return found


def _uses(parsed: ParsedCell, call: cst.Call) -> int:
    """How many ``self.X(...)`` calls in the class reach the module built by ``call``."""
    assign = parsed.enclosing(call, cst.Assign)
    cls = parsed.enclosing(call, cst.ClassDef)
    if assign is None or cls is None or len(assign.targets) != 1:
        return 0
    name = dotted(assign.targets[0].target)
    return sum(1 for node in parsed.nodes(cst.Call) if parsed.within(node, cls) and dotted(node.func) == name)


def _describe(parsed: ParsedCell, call: cst.Call, new: cst.Call) -> tuple[str, str, list[str]]:
    name = (_flag_position(call) or ("?", 0))[0]
    before, after = code_of(call), code_of(new)
    title = f"Make {name} out of place: `{after}`"
    if name in _SAVES_RESULT_WHEN_INPLACE:
        why = (
            f"An in-place {name} overwrites its input and saves its result for backward, so a later "
            "in-place write to that result breaks backward; out of place it saves its input instead."
        )
    elif name.lower().startswith(("dropout", "alpha", "feature")):
        why = (
            f"The in-place {name} multiplies its input by the mask, but another op saved that input "
            "for backward."
        )
    else:
        why = f"The in-place {name} overwrites a tensor that another op saved for backward."
    description = f"`{before}` → `{after}` ({cell_name(parsed.index)}, line {parsed.start(call)}). {why}"
    notes = []
    uses = _uses(parsed, call)
    if uses > 1:
        notes.append(f"This module object is called at {uses} places; the change applies to all of them.")
    return title, description, notes


def candidates(ctx: Context) -> list[Candidate]:
    found: list[tuple[ParsedCell, cst.Call, cst.Call]] = []
    for parsed, site in ctx.at("inplace", "saved_by", "also"):
        for call in parsed.at_line(site.line, cst.Call):
            for target in [call, *_constructions(parsed, call)]:
                new = flag_change(target)
                if new is not None and all(target is not seen for _, seen, _ in found):
                    found.append((parsed, target, new))
    out = []
    for parsed, call, new in found:
        cells = ctx.rewrite(parsed, {call: _flag_off(new)})
        if cells:
            title, description, notes = _describe(parsed, call, new)
            out.append(Candidate("inplace_kwarg", title, description, cells, notes=notes))
    if len(found) > 1:
        out.extend(_all_at_once(ctx, found))
    return out


def _flag_off(fallback: cst.Call) -> Change:
    def change(updated: cst.CSTNode) -> cst.CSTNode:
        # Recomputed on the updated node so that a nested change (a Sequential entry) is kept.
        if isinstance(updated, cst.Call):
            return flag_change(updated) or fallback
        return fallback

    return change


def _all_at_once(ctx: Context, found: list[tuple[ParsedCell, cst.Call, cst.Call]]) -> list[Candidate]:
    cells: dict[int, str] = {}
    for index in sorted({parsed.index for parsed, _, _ in found}):
        parsed = ctx.parsed[index]
        changes: Changes = {call: _flag_off(new) for p, call, new in found if p is parsed}
        cells.update(ctx.rewrite(parsed, changes) or {})
    if not cells:
        return []
    names = ", ".join(sorted({(_flag_position(call) or ("?", 0))[0] for _, call, _ in found}))
    return [
        Candidate(
            "inplace_kwarg",
            f"Make all {len(found)} named in-place layers out of place ({names})",
            "Turns off the in-place flag of every layer the diagnosis names: fixing one alone may "
            "leave another in-place write to the same saved tensor.",
            cells,
        )
    ]
