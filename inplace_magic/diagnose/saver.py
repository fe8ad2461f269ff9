"""Who saved the stale tensor: the op, the custom autograd.Function, or torch.utils.checkpoint.

An op saves its inputs just before it is dispatched and its outputs just after, so the saver is the
op recorded before the pack or the one after it; the autograd node that unpacked the tensor decides
which. A custom Function saves in ``ctx.save_for_backward`` inside its ``forward`` (the line a fix
edits), packed when ``apply`` returns (the call site). ``torch.utils.checkpoint`` saves the inputs of
the function it wraps, to recompute it in backward.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import re
import textwrap

from ..record.frames import Frame
from ..record.records import OpRecord, SaveRecord, StaleUse, Trace
from .diagnosis import OpSite
from .sites import SiteBuilder

# ops whose backward needs their own result: a pack right after one of them is its output
SAVES_OUTPUT = frozenset(
    {"relu", "sigmoid", "tanh", "exp", "softmax", "logsoftmax", "elu", "leakyrelu", "sqrt", "rsqrt", "celu"}
)


def normalise(name: str) -> str:
    """``ReluBackward0`` / ``aten.relu_.default`` / ``aten._softmax.default`` -> ``relu`` / ``softmax``."""
    if name.startswith("aten."):
        name = name.split(".")[1]
    name = re.sub(r"Backward\d*$", "", name)
    return name.replace("_", "").lower()


def _op_matches(op: OpRecord | None, node_name: str) -> bool:
    return op is not None and normalise(op.op) == normalise(node_name)


def _closest(named: list[OpRecord], save: SaveRecord, key: tuple[int, int]) -> OpRecord | None:
    """Two neighbours of the pack run the node's op (``conv(conv(x))``): pick the one that saved."""
    if not named:
        return None
    previous, following = named[0], named[-1]
    # the pack ran inside the saver's module call (a stem conv and a shortcut conv differ here)
    same_module = [op for op in named if op.modules[-1:] == save.modules[-1:] and op.modules == save.modules]
    if len(same_module) == 1:
        return same_module[0]
    if key in following.inputs and normalise(previous.op) not in SAVES_OUTPUT:
        return following
    return previous


def saver_op(trace: Trace, stale: StaleUse) -> OpRecord | None:
    """The aten op that saved the stale tensor; None when a custom Function or torch.utils.checkpoint
    saved it, or no recorded op fits."""
    if stale.checkpoint or stale.custom_function:
        return None
    save = stale.save
    candidates = [trace.op(save.prev_seq), trace.op(save.prev_seq + 1)]
    key = (save.tensor.storage, save.tensor.version)
    named = [c for c in candidates if c is not None and _op_matches(c, stale.node_name)]
    op = named[0] if len(named) == 1 else _closest(named, save, key)
    producer = trace.op(save.producer)
    if op is None and _op_matches(producer, stale.node_name):
        op = producer  # an output saved after ops that only read metadata (a nested tensor's sizes)
    if op is None:
        # names that do not normalise alike (NllLossBackward0 <- aten.nll_loss_forward):
        # the neighbour that holds the saved value
        op = next((c for c in candidates if c is not None and (key in c.inputs or key in c.outputs)), None)
    return op


def resolve_saver(builder: SiteBuilder, stale: StaleUse) -> tuple[OpSite, OpRecord | None]:
    """The saver as a site, and its op record when the saver is an aten op."""
    save = stale.save
    if stale.checkpoint:
        return (
            builder.site(
                "torch.utils.checkpoint",
                save.frames,
                save.modules,
                role="saved it (an input of the checkpointed function) to recompute that function in "
                "backward",
                node=stale.node_name,
            ),
            None,
        )
    if stale.custom_function:
        return _function_saver(builder, stale), None
    op = saver_op(builder.trace, stale)
    if op is None:
        site = builder.site(stale.node_name, save.frames, save.modules, role="saved it", node=stale.node_name)
        return site, None
    key = (save.tensor.storage, save.tensor.version)
    role = "saved its output" if key in op.outputs and key not in op.inputs else "saved its input"
    return builder.site(op.op, save.frames, save.modules, role=role, node=stale.node_name), op


def _function_saver(builder: SiteBuilder, stale: StaleUse) -> OpSite:
    """``ctx.save_for_backward`` inside the Function's ``forward``, called at the pack's user line."""
    save = stale.save
    forward = stale.function_forward
    name = forward.autograd_function if forward else re.sub(r"Backward\d*$", "", stale.node_name)
    saved_at = _save_for_backward_line(forward) if forward is not None else None
    frames = (saved_at, *save.frames) if saved_at is not None else save.frames
    return builder.site(
        f"{name}.apply",
        frames,
        save.modules,
        role="saved it with ctx.save_for_backward",
        node=stale.node_name,
        autograd_function=name,
    )


def _save_for_backward_line(forward: Frame) -> Frame | None:
    """The line of ``forward`` that calls ``<ctx>.save_for_backward(...)`` (the last one, if several)."""
    lines = linecache.getlines(forward.filename)
    if not lines or forward.lineno > len(lines):
        return None
    try:
        tree = ast.parse(textwrap.dedent("".join(inspect.getblock(lines[forward.lineno - 1 :]))))
    except (SyntaxError, IndentationError, ValueError):
        return None
    calls = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("save_for_backward", "save_for_forward")
    ]
    if not calls:
        return None
    line = forward.lineno + max(calls) - 1
    return Frame(forward.filename, line, forward.function, forward.autograd_function)
