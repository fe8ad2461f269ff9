"""Plain words for a diagnosis: a one-line headline and a short paragraph."""

from __future__ import annotations

from .diagnosis import Diagnosis, OpSite


def _who(site: OpSite | None) -> str:
    if site is None:
        return "an unrecorded write"
    if site.optimizer:
        return f"`{site.location.code if site.location else 'optimizer.step()'}` ({site.optimizer})"
    op = site.op.removeprefix("aten.").split(".")[0] if site.op.startswith("aten.") else site.op
    if site.module and site.defined_at is not None:
        # the op is the implementation of a torch module: the module is what the user knows
        kind = f" ({site.module_type})" if site.module_type else ""
        return f"`{site.module}`{kind}"
    inside = f" in `{site.module}`" if site.module else ""
    if site.location and site.location.code:
        return f"`{site.location.code}` [{op}{inside}]"
    return f"[{op}{inside}]"


def _where(site: OpSite | None) -> str:
    if site is None or site.location is None:
        return ""
    return f" at {site.location.label()}"


def _tensor(diagnosis: Diagnosis) -> str:
    t = diagnosis.tensor
    if t is None:
        return "a tensor"
    shape = "[" + ", ".join(str(s) for s in t.shape) + "]"
    name = f"parameter `{t.parameter}` " if t.parameter else ""
    return f"{name}{t.dtype}{shape}"


def explain(diagnosis: Diagnosis) -> None:
    """Fill ``headline`` and ``explanation`` from the data already in ``diagnosis``."""
    kind = diagnosis.kind
    writer, saver, tensor = diagnosis.inplace, diagnosis.saved_by, _tensor(diagnosis)
    if kind == "leaf_inplace":
        diagnosis.headline = (
            f"{_who(writer)}{_where(writer)} writes in place into a leaf tensor that requires grad"
        )
        diagnosis.explanation = (
            f"{tensor} is a leaf that requires grad (a parameter or an input created with "
            "requires_grad=True). Autograd cannot record an in-place write into it. If this is an "
            "update step, do it under `with torch.no_grad():`; otherwise write `x = x - y` out of place."
        )
        return
    if kind == "view_inplace":
        made = f" created by {_who(saver)}{_where(saver)}" if saver else ""
        diagnosis.headline = f"{_who(writer)}{_where(writer)} writes in place into a view{made}"
        why = {
            "created the view under no_grad": "it was made under torch.no_grad(), so autograd never "
            "linked it to its base",
        }.get(saver.role or "" if saver else "", "")
        if saver and saver.role and "several outputs" in saver.role:
            why = "it is one of several views returned by one call, which autograd cannot rebase"
        elif saver and saver.role and "custom Function" in saver.role:
            why = (
                "it was returned by a custom autograd.Function (a module with a full backward hook "
                "wraps its outputs in one), whose backward an in-place write would bypass"
            )
        diagnosis.explanation = (
            f"{tensor} is a view{made}; autograd cannot track an in-place write into it"
            f"{': ' + why if why else ''}. Use the out-of-place form of the operation, or .clone() the "
            "view before writing."
        )
        return
    if not diagnosis.reproduced:
        diagnosis.headline = "An in-place operation broke autograd, but the replay could not name it"
        diagnosis.explanation = " ".join(diagnosis.notes)
        return
    if writer is not None and writer.op == "Tensor.detach_":
        diagnosis.headline = (
            f"`{writer.location.code if writer.location else 'detach_()'}`{_where(writer)} detached in place "
            f"a tensor that {_who(saver)}{_where(saver)} saved for backward"
        )
        diagnosis.explanation = (
            f"{tensor} was saved for backward by {_who(saver)}; detach_() then cut it from the graph "
            "in place, so backward can no longer use it. Use the out-of-place `h = h.detach()`."
        )
        return
    if diagnosis.optimizer_step:
        diagnosis.headline = (
            f"{_who(writer)}{_where(writer)} updated {tensor} after {_who(saver)}{_where(saver)} "
            "saved it, and a backward through that older forward ran afterwards"
        )
        diagnosis.explanation = (
            f"The forward at {saver.location.label() if saver and saver.location else 'an earlier line'} "
            f"saved {tensor} (version {diagnosis.tensor.saved_version if diagnosis.tensor else '?'}) for "
            "backward. The optimizer step then updated it in place, and a backward that still goes "
            "through the old forward needs the old value. Run every backward that uses this forward "
            "before the step, or recompute the forward after the step. Either changes which weights "
            "the later gradient is computed with: it is a change to the training procedure."
        )
        return
    role = saver.role if saver and saver.role else "saved it"
    diagnosis.headline = (
        f"{_who(writer)}{_where(writer)} overwrote {tensor} that {_who(saver)}{_where(saver)} "
        "saved for backward"
    )
    parts = [
        f"{_who(saver)} {role.replace('saved it with', 'saved it through')} ({tensor}, version "
        f"{diagnosis.tensor.saved_version if diagnosis.tensor else '?'}) because its backward needs "
        "that value.",
        f"Later, {_who(writer)} wrote into the same memory in place, so at backward time the tensor "
        f"is at version {diagnosis.tensor.version if diagnosis.tensor else '?'}.",
    ]
    skip = diagnosis.skip
    if skip is not None:
        in_place_merge = writer is not None and skip.merge_op == writer.op
        how = "is combined in place with" if in_place_merge else "is carried by"
        parts.append(
            f"The value {how} a skip connection: "
            f"it branches at {skip.source.label() if skip.source else 'an earlier op'} and the branches "
            f"merge ({skip.merge_kind}) at {skip.merge.label() if skip.merge else 'a later op'}."
        )
    elif writer is not None and len(writer.names) > 1:
        parts.append(
            f"The names {', '.join(writer.names)} are aliases of one tensor; use .clone() for a copy."
        )
    parts.append("Make the write out of place, or clone the tensor before writing into it.")
    diagnosis.explanation = " ".join(parts)
