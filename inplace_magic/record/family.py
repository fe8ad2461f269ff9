"""Is an exception one of ours (the in-place autograd family), and which member of it?

The message decides only *whether* the error belongs to the family and which member it is; what
happened is decided from the replay's records, never from the wording (``which is output 0 of X``
names the writer, the saver or the producer depending on the case, and its spelling changed across
torch versions).

:data:`FAMILY` is the one table of the family's texts: each member with the pattern that recognises
it and the wordings it is known to have had, old and new (tests/test_family_texts.py checks every
wording against its member). Two members are *claimed only when the replay confirms them*: their
text also comes from errors that have nothing to do with in-place writes, so the first run alone
does not make them ours (:func:`confirmable`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["version_counter", "leaf_inplace", "view_inplace", "other"]

MemberId = Literal[
    "saved_tensor_modified",
    "gradient_modified",
    "leaf_written",
    "view_multi_output",
    "view_custom_function",
    "view_no_grad",
    "view_inference",
    "function_input_view",
    "view_other",
    "detach_view",
    "saved_tensor_detached",
    "negative_slope",
    "out_argument",
    "pack_hook_write",
    "checkpoint_cache_mutated",
    "functorch_captured",
    "nested_message_failed",
    "unused_after_set",
]


@dataclass(frozen=True)
class Wording:
    text: str
    seen: str  # where the wording comes from: a torch version, a PR, an issue


@dataclass(frozen=True)
class Member:
    id: MemberId
    kind: Kind
    pattern: str
    wordings: tuple[Wording, ...]
    confirmed_by_replay: bool = False  # the text alone does not make it ours

    def matches(self, message: str) -> bool:
        return _COMPILED[self.id].search(message) is not None


_HINT_213 = (
    "Hint: enable anomaly detection to find the operation that failed to compute its gradient, with "
    "torch.autograd.set_detect_anomaly(True, check_nan=False)."
)
_HINT_OLD = (
    "Hint: enable anomaly detection to find the operation that failed to compute its gradient, with "
    "torch.autograd.set_detect_anomaly(True)."
)
_HINT_ANOMALY = (
    "Hint: the backtrace further above shows the operation that failed to compute its gradient. The "
    "variable in question was changed in there or anywhere later. Good luck!"
)
_CUSTOM_VIEW_TAIL = (
    "This view was created inside a custom Function (or because an input was returned as-is) and the "
    "autograd logic to handle view+inplace would override the custom backward associated with the "
    "custom Function, leading to incorrect gradients. This behavior is forbidden. You can fix this by "
    "cloning the output of the custom Function."
)
_MODIFIED = "one of the variables needed for gradient computation has been modified by an inplace operation"

FAMILY: tuple[Member, ...] = (
    Member(
        "saved_tensor_modified",
        "version_counter",
        r"needed for gradient computation has been modified by an inplace operation",
        (
            Wording(
                f"{_MODIFIED}: [torch.FloatTensor [4, 8, 16, 16]], which is output 0 of Relu, is at "
                f"version 1; expected version 0 instead. {_HINT_213}",
                "torch 2.13 (node names without 'Backward')",
            ),
            Wording(
                f"{_MODIFIED}: [torch.cuda.FloatTensor [1, 128, 45, 80]], which is output 0 of "
                f"ReluBackward0, is at version 20; expected version 0 instead. {_HINT_OLD}",
                "torch 1.10-2.x (node names end in 'Backward0')",
            ),
            Wording(
                f"{_MODIFIED}: [torch.FloatTensor [64, 109]] is at version 2; expected version 1 "
                f"instead. {_HINT_213}",
                "torch 2.13, a saved leaf, parameter or buffer (no 'output K of' clause)",
            ),
            Wording(
                f"{_MODIFIED}: [torch.FloatTensor [4, 3]], which is output 0 of "
                f"torch::autograd::CopySlices, is at version 1; expected version 0 instead. {_HINT_213}",
                "torch 2.13, written through an index or slice assignment",
            ),
            Wording(
                f"{_MODIFIED}: [torch.FloatTensor [1, 2, 2]], which is output 0 of AsStridedBackward0, "
                f"is at version 1; expected version 0 instead. {_HINT_ANOMALY}",
                "anomaly mode on (torch 1.x-2.x)",
            ),
            Wording(
                f"{_MODIFIED}: [torch.FloatTensor  2  3\n 4  3\n[ torch.LongTensor{{2,2}} ]], which is "
                f"output 0 of Relu, is at version 1; expected version 0 instead. {_HINT_213}",
                "torch 2.13, a strided nested tensor (its sizes printed as a tensor)",
            ),
            Wording(
                f"{_MODIFIED}: [torch.cuda.FloatTensor [80, 1]], which is output 0 of "
                "UnsqueezeBackward0, is at version 1; expected version 0 instead. Hint: enable anomaly "
                "detection to find the operation that failed to compute its gradient, with "
                "torch.autograd.set_detect_anomaly(True).",
                "torch 1.2-1.9",
            ),
            Wording(_MODIFIED, "torch 0.4-1.1 (no details)"),
        ),
    ),
    Member(
        "gradient_modified",
        "other",
        r"\bgradients?\b(?! computation has been modified).{0,80}\b(has been|was) modified by an inplace "
        r"operation",
        (
            Wording(
                "A gradient tensor has been modified by an inplace operation after it was produced and "
                "before MulBackward0 consumed it: [torch.FloatTensor [4]] is at version 1; expected "
                "version 0 instead.",
                "proposed in pytorch PR #185286 (version check on gradient tensors in the engine's "
                "InputBuffer); the wording is not final, this is the PR's description put as a message",
            ),
            Wording(
                "The gradient for a tensor was modified by an inplace operation between its production "
                "and its consumption by the next node: is at version 2; expected version 1 instead.",
                "pytorch PR #178315 / #178293 (earlier revisions of the same check)",
            ),
        ),
    ),
    Member(
        "leaf_written",
        "leaf_inplace",
        r"a (view of a )?leaf Variable that requires grad (is being|has been) used in an in-place",
        (
            Wording(
                "a leaf Variable that requires grad is being used in an in-place operation.", "torch 2.13"
            ),
            Wording(
                "a view of a leaf Variable that requires grad is being used in an in-place operation.",
                "torch 2.13 (a slice of a leaf)",
            ),
            Wording(
                "a leaf Variable that requires grad has been used in an in-place operation.", "torch 0.4-1.4"
            ),
        ),
    ),
    Member(
        "view_multi_output",
        "view_inplace",
        r"is a view and (is being modified inplace|its base or another view of its base has been "
        r"modified inplace)\. This view is the output of a function that returns multiple views",
        (
            Wording(
                "Output 1 of Split is a view and is being modified inplace. This view is the output of a "
                "function that returns multiple views. Such functions do not allow the output views to "
                "be modified inplace. You should replace the inplace operation by an out-of-place one.",
                "torch 2.13",
            ),
            Wording(
                "Output 0 of UnbindBackward0 is a view and is being modified inplace. This view is the "
                "output of a function that returns multiple views. Such functions do not allow the "
                "output views to be modified inplace. You should replace the inplace operation by an "
                "out-of-place one.",
                "torch 1.10-2.x",
            ),
        ),
    ),
    Member(
        "view_custom_function",
        "view_inplace",
        r"is a view and (is being modified inplace|its base or another view of its base has been "
        r"modified inplace)\. This view was created inside a custom Function",
        (
            Wording(
                "Output 0 of BackwardHookFunction is a view and is being modified inplace. "
                f"{_CUSTOM_VIEW_TAIL}",
                "torch 2.13, a module with a full backward hook",
            ),
            Wording(
                "Output 0 of BackwardHookFunctionBackward is a view and is being modified inplace. "
                f"{_CUSTOM_VIEW_TAIL}",
                "torch 1.8-2.x, a module with a full backward hook",
            ),
            Wording(
                f"Output 0 of View is a view and is being modified inplace. {_CUSTOM_VIEW_TAIL}",
                "torch 2.13, a view returned from a custom Function",
            ),
            Wording(
                "Output 0 of MyFunctionBackward is a view and its base or another view of its base has "
                f"been modified inplace. {_CUSTOM_VIEW_TAIL}",
                "torch 1.x-2.x, the base of a custom Function's view written",
            ),
        ),
    ),
    Member(
        "view_no_grad",
        "view_inplace",
        r"(A view was created in no_grad mode|view of a view which was created in no_grad mode) and "
        r"(is being modified inplace|its base or another view of its base has been modified inplace)",
        (
            Wording(
                "A view was created in no_grad mode and is being modified inplace with grad mode enabled. "
                "Given that this use case is ambiguous and error-prone, it is forbidden. You can clarify "
                "your code by moving both the view and the inplace either both inside the no_grad block "
                "(if you don't want the inplace to be tracked) or both outside (if you want the inplace "
                "to be tracked).",
                "torch 2.13",
            ),
            Wording(
                "Output 0 of SliceBackward0 is a view of a view which was created in no_grad mode and is "
                "being modified inplace with grad mode enabled. Given that this use case is ambiguous "
                "and error-prone, it is forbidden.",
                "torch 1.10-2.x",
            ),
        ),
    ),
    Member(
        "view_inference",
        "view_inplace",
        r"A view was created in inference mode and is being modified inplace",
        (
            Wording(
                "A view was created in inference mode and is being modified inplace in normal mode.",
                "torch 1.9-2.13",
            ),
        ),
    ),
    Member(
        "function_input_view",
        "view_inplace",
        r"modifies inplace an input that is a view of another Tensor",
        (
            Wording(
                "If your Function modifies inplace an input that is a view of another Tensor, your "
                "Function cannot return more than one Tensor. This is not supported by the current "
                "autograd engine. You should either make sure the input is not a view (using .clone() "
                "for example) or make your Function only return one Tensor (potentially splitting it "
                "into two Functions: one doing the inplace that returns a single Tensor and a second "
                "one that does the other operations). You can ask on the forum "
                "https://discuss.pytorch.org/ if you need help to do this change.",
                "torch 1.7-2.13",
            ),
        ),
    ),
    Member(
        "view_other",
        "view_inplace",
        r"is a view and (is being modified inplace|its base or another view)",
        (
            Wording(
                "Output 0 of AsStridedBackward0 is a view and its base or another view of its base has "
                "been modified inplace.",
                "torch 1.x-2.x, a view rule with a continuation not listed above",
            ),
        ),
    ),
    Member(
        "detach_view",
        "other",
        r"Can't detach views in-place",
        (Wording("Can't detach views in-place. Use detach() instead.", "torch 1.x-2.13"),),
    ),
    Member(
        "saved_tensor_detached",
        "other",
        r"saved tensor that has been detached in-place",
        (
            Wording(
                "Trying to use a saved tensor that has been detached in-place, i.e. with .detach_().This "
                "is not supported, please use out-of-place `.detach()` instead",
                "torch 1.13-2.13",
            ),
        ),
    ),
    Member(
        "negative_slope",
        "other",
        r"In-place (leakyReLu|elu) backward calculation is triggered",
        (
            Wording(
                "In-place leakyReLu backward calculation is triggered with a negative slope which is not "
                "supported. This is caused by calling in-place forward function with a negative slope, "
                "please call out-of-place version instead. File an issue at "
                "https://github.com/pytorch/pytorch if you do require supporting in-place leakRelu "
                "backward calculation with negative slope",
                "torch 1.4-2.13",
            ),
            Wording(
                "In-place elu backward calculation is triggered with a negative slope which is not "
                "supported. This is caused by calling in-place forward function with a negative slope, "
                "please call out-of-place version instead.",
                "torch 1.4-2.13 (also for CELU and SELU, which are computed by elu)",
            ),
        ),
    ),
    Member(
        "out_argument",
        "other",
        r"functions with out=\.\.\. arguments don't support automatic differentiation",
        (
            Wording(
                "add(): functions with out=... arguments don't support automatic differentiation, but "
                "one of the arguments requires grad.",
                "torch 1.x-2.13",
            ),
        ),
    ),
    Member(
        "pack_hook_write",
        "other",
        r"saved tensor pack hook is modifying its input in place",
        (
            Wording(
                "A saved tensor pack hook is modifying its input in place. Tensors provided as input to "
                "pack hook can not be modified by in-place operations as this can lead to unexpected "
                "side-effects. Please open an issue if you need to perform in-place operations on the "
                "input to a pack hook.",
                "torch 1.13-2.13",
            ),
        ),
    ),
    Member(
        "checkpoint_cache_mutated",
        "other",
        r"cached during selective activation checkpoint has been mutated",
        (Wording("Tensor cached during selective activation checkpoint has been mutated", "torch 2.4-2.13"),),
    ),
    Member(
        "functorch_captured",
        "other",
        r"attempted to call in-place operation .* that would mutate a captured Tensor",
        (
            Wording(
                "During a grad (vjp, jvp, grad, etc) transform, the function provided attempted to call "
                "in-place operation (aten::add_.Tensor) that would mutate a captured Tensor. This is not "
                "supported; please rewrite the function being transformed to explicitly accept the "
                "mutated Tensor(s) as inputs.",
                "torch 2.0-2.13 (torch.func)",
            ),
            Wording(
                "During a grad (vjp, jvp, grad, etc) transform, the function provided attempted to call "
                "in-place operation (aten::mul_.Tensor) that would mutate a captured Tensor. This is not "
                "supported; please rewrite the function being transformed to explicitly accept the "
                "mutated Tensor(s) as inputs.",
                "functorch 0.2 / torch 1.13",
            ),
        ),
    ),
    Member(
        "nested_message_failed",
        "version_counter",
        r"^aten\._nested_tensor_size\.default$",
        (
            Wording(
                "aten._nested_tensor_size.default",
                "torch 2.13, a jagged nested tensor: formatting the version error's sizes fails and a "
                "NotImplementedError is raised instead; ours only when the replay finds the stale tensor",
            ),
        ),
        confirmed_by_replay=True,
    ),
    Member(
        "unused_after_set",
        "other",
        r"The differentiated Tensor at index \d+ appears to not have been used in the graph",
        (
            Wording(
                "The differentiated Tensor at index 0 appears to not have been used in the graph. Set "
                "allow_unused=True if this is the desired behavior.",
                "torch 1.x-2.13; ours only when the replay shows set_() swapping that tensor's storage",
            ),
        ),
        confirmed_by_replay=True,
    ),
)
_COMPILED = {member.id: re.compile(member.pattern, re.IGNORECASE) for member in FAMILY}


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes (``torch.compile`` wraps the version error in BackendCompilerFailed)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        current = current.__cause__
    return seen


def member_of(exc: BaseException, *, confirmable: bool = False) -> Member | None:
    """The family member ``exc`` belongs to; with ``confirmable`` also those that only a replay
    can confirm. Only RuntimeErrors (NotImplementedError among them) belong to the family."""
    for item in _chain(exc):
        if not isinstance(item, RuntimeError):
            continue
        message = str(item)
        for member in FAMILY:
            if (confirmable or not member.confirmed_by_replay) and member.matches(message):
                return member
    return None


def classify(exc: BaseException) -> Kind | None:
    """The in-place kind of ``exc``, or None when the error is not ours."""
    member = member_of(exc)
    return member.kind if member is not None else None


def confirmable(exc: BaseException) -> Member | None:
    """A member whose text alone does not make ``exc`` ours: replay, and claim it only if the
    diagnosis finds the in-place write behind it."""
    member = member_of(exc, confirmable=True)
    return member if member is not None and member.confirmed_by_replay else None
