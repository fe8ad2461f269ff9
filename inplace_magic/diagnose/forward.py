"""In-place errors autograd raised at the call itself: a leaf written, or a view autograd cannot
rebase (one of several outputs, made under no_grad, returned by a custom Function or made by a
module's full backward hook). The function mode caught the call with the tensor in hand; the view's
origin is the recorded op that made it.
"""

from __future__ import annotations

import torch

from ..record.family import Member
from ..record.records import ForwardFailure, HookMark, OpRecord
from .diagnosis import Diagnosis, ErrorInfo, OpSite
from .sites import SiteBuilder

_MULTI_OUTPUT_VIEWS = frozenset({"split", "split_with_sizes", "unbind", "chunk", "unsafe_split"})
_HOOK_NODE = "BackwardHookFunctionBackward"


def _hook_mark(builder: SiteBuilder, view_op: OpRecord) -> HookMark | None:
    """The hooked module call whose BackwardHookFunction made this view: the last mark before it."""
    marks = [m for m in builder.trace.hook_marks if m.seq <= view_op.seq]
    return marks[-1] if marks else None


def _hooked_module(builder: SiteBuilder, mark: HookMark, view_op: OpRecord) -> tuple[torch.nn.Module, ...]:
    """The module stack of the hooked module: its outputs are wrapped after our module hook popped it."""
    if mark.wraps == "outputs":
        return (*view_op.modules, mark.module)
    return view_op.modules


def _hook_kinds(module: torch.nn.Module) -> str:
    """Which registration made the wrapping: ``register_full_backward_pre_hook`` or the hook."""
    kinds = []
    if module._backward_pre_hooks:
        kinds.append("full backward pre-hook")
    if module._backward_hooks:
        kinds.append("full backward hook")
    return " and ".join(kinds) or "global full backward hook"


def _view_site(builder: SiteBuilder, member: Member, failure: ForwardFailure, view_op: OpRecord) -> OpSite:
    name = view_op.op.split(".")[1] if view_op.op.startswith("aten.") else view_op.op
    if failure.grad_fn == _HOOK_NODE:
        mark = _hook_mark(builder, view_op)
        if mark is not None:
            modules = _hooked_module(builder, mark, view_op)
            path = builder.names.path(modules) or type(mark.module).__name__
            role = (
                f"created the view: the {_hook_kinds(mark.module)} registered on `{path}` wraps the "
                f"module's {mark.wraps} in BackwardHookFunction views"
            )
            return builder.site("BackwardHookFunction", view_op.frames, modules, role=role)
        role = "created the view: a module's full backward hook wraps its inputs and outputs in views"
        return builder.op_site(view_op, role=role)
    if failure.custom_function_view:  # checked before no_grad: a Function's forward runs under no_grad
        function = view_op.frames[0].autograd_function if view_op.frames else None
        function = function or (failure.grad_fn or "").removesuffix("Backward")
        return builder.op_site(
            view_op,
            role=f"created the view inside the custom autograd.Function `{function}` (returned from its "
            "forward, or an input returned as-is)",
            autograd_function=function or None,
        )
    if member.id == "view_inference":  # inference mode also turns grad off: the member tells them apart
        return builder.op_site(view_op, role="created the view in inference mode")
    if not view_op.grad_enabled:
        return builder.op_site(view_op, role="created the view under no_grad")
    if name in _MULTI_OUTPUT_VIEWS:
        return builder.op_site(view_op, role=f"created the view as one of several outputs ({name})")
    return builder.op_site(view_op, role="created the view")


def from_forward(
    builder: SiteBuilder, member: Member, error: ErrorInfo, failure: ForwardFailure
) -> Diagnosis:
    inplace = builder.site(failure.function, failure.frames, failure.modules, optimizer=failure.optimizer)
    saved_by = None
    limits: list[str] = []
    view_op = builder.trace.op(failure.view_seq)
    if view_op is not None and member.kind != "leaf_inplace":
        saved_by = _view_site(builder, member, failure, view_op)
    elif member.kind == "view_inplace":
        limits.append(
            "The op that made the written view was not recorded (it ran before the replay started, or "
            "outside the dispatcher); only the writing line is known."
        )
    tensor = builder.tensor(failure.tensor, None, failure.tensor.version) if failure.tensor else None
    return Diagnosis(
        kind=member.kind,
        error=error,
        inplace=inplace,
        saved_by=saved_by,
        tensor=tensor,
        member=member.id,
        limits=limits,
    )
