"""Plain words for a diagnosis: a one-line headline and a short paragraph.

One function per shape of error; :func:`explain` picks it from the data (the member, the kind, what
the analysis found) and appends what the engine could not know (``limits``), so a diagnosis that
knows only the line says so.
"""

from __future__ import annotations

from collections.abc import Callable

from ..record.frames import installed_path
from .diagnosis import Diagnosis, Location, OpSite, Skip
from .locations import without_comment


def _code(location: Location | None) -> str:
    """A line as a sentence quotes it: without its comment (the location keeps the whole line)."""
    return without_comment(location.code) if location else ""


def _who(site: OpSite | None) -> str:
    """How a sentence names an op: a torch module by its path and class (``block2.act`` (ReLU), the
    full repr is in the site's ``module_type``), any other op by its line without the comment."""
    if site is None:
        return "an unrecorded write"
    if site.optimizer:
        return f"`{_code(site.location) or 'optimizer.step()'}` ({site.optimizer})"
    op = site.op.removeprefix("aten.").split(".")[0] if site.op.startswith("aten.") else site.op
    if site.module and site.defined_at is not None:
        # the op is the implementation of a torch module: the module is what the user knows
        kind = f" ({site.module_class})" if site.module_class else ""
        return f"`{site.module}`{kind}"
    inside = f" in `{site.module}`" if site.module else ""
    if site.autograd_function and not inside:
        inside = f" in `{site.autograd_function}.forward`"
    code = _code(site.location)
    if code:
        return f"`{code}` [{op}{inside}]"
    return f"[{op}{inside}]"


def _where(site: OpSite | None) -> str:
    if site is None or site.location is None:
        return ""
    called = f", called at {site.stack[0].label()}" if site.autograd_function and site.stack else ""
    if site.location.library:
        # the library's line says where the op sits; the user's line is the one they can change
        user = next((outer for outer in site.stack if not outer.library), None)
        called = f" (run from {user.label()})" if user is not None else called
    return f" at {site.location.label()}{called}"


def _tensor(diagnosis: Diagnosis) -> str:
    t = diagnosis.tensor
    if t is None:
        return "a tensor"
    shape = "[" + ", ".join(str(s) if s >= 0 else "*" for s in t.shape) + "]"
    name = f"parameter `{t.parameter}` " if t.parameter else ""
    nested = "nested " if t.nested else ""
    return f"{name}{nested}{t.dtype}{shape}"


def _version(diagnosis: Diagnosis, saved: bool) -> str:
    t = diagnosis.tensor
    value = (t.saved_version if saved else t.version) if t is not None else None
    return "?" if value is None else str(value)


def _leaf(d: Diagnosis) -> None:
    writer = d.inplace
    d.headline = f"{_who(writer)}{_where(writer)} writes in place into a leaf tensor that requires grad"
    d.explanation = (
        f"{_tensor(d)} is a leaf that requires grad (a parameter or an input created with "
        "requires_grad=True). Autograd cannot record an in-place write into it. If this is an "
        "update step, do it under `with torch.no_grad():`; otherwise write `x = x - y` out of place."
    )


def _view(d: Diagnosis) -> None:
    writer, maker = d.inplace, d.saved_by
    made = f" created by {_who(maker)}{_where(maker)}" if maker else ""
    d.headline = f"{_who(writer)}{_where(writer)} writes in place into a view{made}"
    role = (maker.role or "") if maker else ""
    fix = "Use the out-of-place form of the operation, or .clone() the view before writing."
    if "full backward hook" in role:
        why = (
            f"{role.removeprefix('created the view: ')}; autograd forbids writing into such a view, "
            "because the write would bypass the hook's backward"
        )
        fix = (
            "Clone the value before writing into it (`h = h.clone()` right after the hooked module's "
            "call, or in the hooked module itself), write out of place, or move the in-place op out "
            "of the hooked module."
        )
    elif "custom autograd.Function" in role:
        why = "it was returned by a custom autograd.Function, whose backward an in-place write would bypass"
        fix = "Clone the Function's output before writing (or return a clone from its forward)."
    elif role == "created the view under no_grad":
        why = "it was made under torch.no_grad(), so autograd never linked it to its base"
    elif role == "created the view in inference mode":
        why = "it was made under torch.inference_mode(), so autograd never linked it to its base"
    elif "several outputs" in role:
        why = "it is one of several views returned by one call, which autograd cannot rebase"
    else:
        why = ""
    d.explanation = (
        f"{_tensor(d)} is a view{made}; autograd cannot track an in-place write into it"
        f"{': ' + why if why else ''}. {fix}"
    )


def _not_reproduced(d: Diagnosis) -> None:
    d.headline = "An in-place operation broke autograd, but the replay could not name it"
    d.explanation = " ".join(d.notes)


def _detached(d: Diagnosis) -> None:
    writer, saver = d.inplace, d.saved_by
    code = _code(writer.location if writer else None) or "detach_()"
    d.headline = (
        f"`{code}`{_where(writer)} detached in place a tensor that {_who(saver)}{_where(saver)} saved "
        "for backward"
    )
    d.explanation = (
        f"{_tensor(d)} was saved for backward by {_who(saver)}; detach_() then cut it from the graph "
        "in place, so backward can no longer use it. Use the out-of-place `h = h.detach()`."
    )


def _detach_view(d: Diagnosis) -> None:
    writer, maker = d.inplace, d.saved_by
    code = _code(writer.location if writer else None) or "detach_()"
    made = f" made by {_who(maker)}{_where(maker)}" if maker else ""
    d.headline = f"`{code}`{_where(writer)} detaches a view in place"
    d.explanation = (
        f"{_tensor(d)} is a view{made}; detach_() cannot detach a view in place, because the view "
        "shares its history with its base. Use the out-of-place `v = v.detach()`."
    )


def _optimizer(d: Diagnosis) -> None:
    writer, saver, tensor = d.inplace, d.saved_by, _tensor(d)
    d.headline = (
        f"{_who(writer)}{_where(writer)} updated {tensor} after {_who(saver)}{_where(saver)} "
        "saved it, and a backward through that older forward ran afterwards"
    )
    d.explanation = (
        f"The forward at {saver.location.label() if saver and saver.location else 'an earlier line'} "
        f"saved {tensor} (version {_version(d, saved=True)}) for backward. The optimizer step then "
        "updated it in place, and a backward that still goes through the old forward needs the old "
        "value. Run every backward that uses this forward before the step, or recompute the forward "
        "after the step. Either changes which weights the later gradient is computed with: it is a "
        "change to the training procedure."
    )


def _skip_sentence(skip: Skip) -> str:
    source = skip.source.label() if skip.source else "an earlier op"
    merge = skip.merge.label() if skip.merge else "a later op"
    how = {
        "before": "is carried by a skip connection or branch: the write sits on one branch",
        "inside": "is combined in place with another branch: the write is the merge",
        "after": "feeds a skip connection or branch that merged before the write",
    }[skip.writer_position]
    return f"The value {how}. It branches at {source} and the branches merge ({skip.merge_kind}) at {merge}."


def _saved_modified(d: Diagnosis) -> None:
    writer, saver, tensor = d.inplace, d.saved_by, _tensor(d)
    role = saver.role if saver and saver.role else "saved it"
    d.headline = (
        f"{_who(writer)}{_where(writer)} overwrote {tensor} that {_who(saver)}{_where(saver)} "
        "saved for backward"
    )
    parts = [
        f"{_who(saver)} {role.replace('saved it with', 'saved it through')} ({tensor}, version "
        f"{_version(d, saved=True)}) because its backward needs that value.",
        f"Later, {_who(writer)} wrote into the same memory in place, so at backward time the tensor "
        f"is at version {_version(d, saved=False)}.",
    ]
    if writer is not None and writer.autograd_function:
        parts.append(
            f"The write happens inside `{writer.autograd_function}.forward` (a custom autograd.Function"
            "; `ctx.mark_dirty` tells autograd about it but cannot bring back the value saved earlier)."
        )
    if d.skip is not None:
        parts.append(_skip_sentence(d.skip))
    elif writer is not None and len(writer.names) > 1:
        names = ", ".join(writer.names)
        parts.append(f"The names {names} are aliases of one tensor; use .clone() for a copy.")
    library = _library_of(writer)
    if library is not None and (saver is None or saver.location is None or not saver.location.library):
        # the library's in-place op is correct on its own: the user's code kept the value it writes
        parts.append(
            f"The write is {library}'s own code; a fix goes in your code: clone the tensor where your "
            "code keeps it or saves it (`output.clone()` in a forward hook), so that the library "
            "writes into its own copy."
        )
    else:
        parts.append("Make the write out of place, or clone the tensor before writing into it.")
    d.explanation = " ".join(parts)


def _library_of(site: OpSite | None) -> str | None:
    """The installed package whose code ``site`` runs in (``torchvision``), else None."""
    if site is None or site.location is None or not site.location.library or not site.location.file:
        return None
    below = installed_path(site.location.file)
    return below.split("/", 1)[0] if below else None


def _negative_slope(d: Diagnosis) -> None:
    writer = d.inplace
    module = writer.module_class if writer else None
    what = f"`{writer.module}` ({module})" if writer and module else _who(writer)
    d.headline = f"{what}{_where(writer)} runs in place with a negative slope, whose backward is undefined"
    named = ""
    if module and module.startswith(("CELU", "SELU")):
        named = f" PyTorch's message says 'elu' because {module} is computed by the in-place elu kernel."
    d.explanation = (
        f"In place, {what} keeps only its result, and with a negative slope (or alpha) the result no "
        "longer tells which inputs were negative, so its backward cannot be computed." + named + " Use "
        "the out-of-place form (inplace=False)."
    )


def _out_argument(d: Diagnosis) -> None:
    writer, source = d.inplace, d.saved_by
    d.headline = f"{_who(writer)}{_where(writer)} writes through out= while an input requires grad"
    made = f" (made by {_who(source)}{_where(source)})" if source else ""
    parts = [
        f"Functions called with out= are not differentiable: autograd refuses them when an input "
        f"requires grad{made}. Nothing was saved; the call never ran.",
    ]
    if d.skip is not None:
        parts.append(_skip_sentence(d.skip))
    parts.append("Assign the result instead: `x = torch.add(x, y)`.")
    d.explanation = " ".join(parts)


def _pack_hook(d: Diagnosis) -> None:
    writer, saver = d.inplace, d.saved_by
    d.headline = f"{_who(writer)}{_where(writer)} writes in place inside a saved-tensor pack hook"
    d.explanation = (
        f"The pack hook received the tensor that {_who(saver)}{_where(saver)} was saving for backward, and "
        "wrote into it. Pack hooks must not modify their input: work on a copy (`t = t.clone()`) "
        "or out of place."
    )


def _checkpoint_cache(d: Diagnosis) -> None:
    writer, saver = d.inplace, d.saved_by
    d.headline = (
        f"{_who(writer)}{_where(writer)} changed the output of {_who(saver)}{_where(saver)} that selective "
        "activation checkpointing cached for backward"
    )
    d.explanation = (
        "The checkpoint policy saved that output instead of recomputing it; the recomputation in "
        "backward found the cached value changed. Write out of place, or let the policy recompute "
        "that op (PREFER_RECOMPUTE)."
    )


def _functorch(d: Diagnosis) -> None:
    writer, made = d.inplace, d.saved_by
    d.headline = (
        f"{_who(writer)}{_where(writer)} writes in place into a tensor captured by a torch.func transform"
    )
    origin = f" (created by {_who(made)}{_where(made)})" if made else ""
    d.explanation = (
        f"{_tensor(d)}{origin} comes from outside the function that torch.func.grad (or vjp, jacrev, "
        "vmap of them) transforms; the transform cannot track a write into it. Pass it to the "
        "function as an argument, or write out of place."
    )


def _unused_after_set(d: Diagnosis) -> None:
    writer = d.inplace
    d.headline = (
        f"{_who(writer)}{_where(writer)} swapped a tensor's storage with set_(), cutting it from the graph"
    )
    d.explanation = (
        "The gradient is asked for a tensor whose storage set_() replaced after the graph was built, "
        "so autograd no longer finds it in that graph. Create a new tensor (`x = other`) instead of "
        "set_(), or differentiate with respect to the tensor the graph used."
    )


def _gradient_modified(d: Diagnosis) -> None:
    writer = d.inplace
    d.headline = f"{_who(writer)}{_where(writer)} wrote a gradient in place during backward"
    d.explanation = (
        "Backward produced a gradient and the next node was still to use it when this write changed "
        "it in place. Return a new tensor from the hook (`return grad * 2`) instead of modifying it."
    )


_BY_MEMBER: dict[str, Callable[[Diagnosis], None]] = {
    "detach_view": _detach_view,
    "negative_slope": _negative_slope,
    "out_argument": _out_argument,
    "pack_hook_write": _pack_hook,
    "checkpoint_cache_mutated": _checkpoint_cache,
    "functorch_captured": _functorch,
    "unused_after_set": _unused_after_set,
    "gradient_modified": _gradient_modified,
}


def _choose(d: Diagnosis) -> Callable[[Diagnosis], None]:
    if d.kind == "leaf_inplace":
        return _leaf
    if d.kind == "view_inplace":
        return _view
    if not d.reproduced:
        return _not_reproduced
    if d.member in _BY_MEMBER:
        return _BY_MEMBER[d.member or ""]
    if d.inplace is not None and d.inplace.op == "Tensor.detach_":
        return _detached
    if d.optimizer_step:
        return _optimizer
    return _saved_modified


def explain(diagnosis: Diagnosis) -> None:
    """Fill ``headline`` and ``explanation`` from the data already in ``diagnosis``."""
    _choose(diagnosis)(diagnosis)
    if diagnosis.limits:
        diagnosis.explanation = " ".join([diagnosis.explanation, *diagnosis.limits])
