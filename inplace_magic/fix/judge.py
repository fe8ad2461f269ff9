"""From what the sandbox observed to a verdict: verified, gradient-preserving, and why not."""

from __future__ import annotations

from typing import Any

from .model import Candidate, RunOutcome, Verdict


def short(message: object, limit: int = 160) -> str:
    text = str(message)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def where(error: dict[str, Any]) -> str:
    place = f"cell {error['cell']}" if "cell" in error else str(error.get("file", "?"))
    return f"{place}, line {error.get('line', '?')}"


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    # Where and what kind, never the wording: a version error's numbers change when a fix changes
    # how often the tensor was written, though it is the same error.
    keys = ("type", "kind", "cell", "file", "line")
    return all(a.get(k) == b.get(k) for k in keys)


def _reproduced(original: dict[str, Any] | None) -> bool:
    error = original.get("error") if original else None
    return isinstance(error, dict) and error.get("kind") is not None


def verdict(
    candidate: Candidate,
    run: RunOutcome,
    original: dict[str, Any] | None,
    reference: dict[str, Any] | None,
) -> Verdict:
    result = Verdict(notes=list(candidate.notes))
    if original is not None and original.get("timed_out"):
        # then the candidate is not even run: there is nothing to compare it with
        result.notes.append(
            "Not verified: the original code ran past the time limit, so it could not be compared."
        )
        return result
    if run.ended is not None:
        result.notes.append(f"Not verified: the code ended the sandbox process ({run.ended}) while it ran.")
        return result
    if not run.ran or original is None:
        result.notes.append("Not verified: the sandbox did not finish running it in time.")
        return result
    if not _reproduced(original):
        result.notes.append(
            "Not verified: the original code did not raise an in-place error when run fresh, so "
            "there was nothing to check the fix against."
        )
        return result
    original_error: dict[str, Any] = original["error"]
    error = result.error = run.error
    if error is None:
        _passed(result, run, original)
    elif error.get("kind") is not None and not _same(error, original_error):
        result.next_error = error
        result.notes.append(
            f"Fixes this error but uncovers the next in-place error at {where(error)}: "
            f"{short(error.get('message'))}"
        )
    elif _same(error, original_error):
        result.notes.append(f"Not verified: the fixed code still raises an in-place error at {where(error)}.")
    else:
        result.notes.append(
            f"Not verified: the fixed code raises {error.get('type')} at {where(error)}: "
            f"{short(error.get('message'))}"
        )
    if result.verified:
        result.preserves_gradients = _preserves(candidate, run, reference, result.notes)
    elif candidate.changes_semantics:
        result.preserves_gradients = False
    return result


def _passed(result: Verdict, run: RunOutcome, original: dict[str, Any]) -> None:
    if run.timed_out:
        past = run.backward_calls > int(original.get("backward_calls", 0))
        result.verified = past and run.gradients > 0
        result.notes.append(
            f"Ran until the time limit without an error ({run.backward_calls} backward calls"
            + (", past the point where the original failed)." if past else ").")
        )
    elif run.gradients > 0:
        result.verified = True
        result.notes.append(
            f"Verified: the fixed cells ran without error and computed {run.gradients} gradients."
        )
    elif run.backward_calls == 0:
        # Nothing to differentiate (the error was raised in a forward-only program): the absence of
        # the error is all there is to check.
        result.verified = True
        result.notes.append("Verified: the fixed cells ran without error (they never call backward).")
    else:
        result.notes.append(
            "Not verified: the fixed cells ran backward without error but no gradient arrived."
        )
    if result.verified and not run.finite:
        result.notes.append("Some gradients are not finite (NaN or inf).")


def _preserves(
    candidate: Candidate, run: RunOutcome, reference: dict[str, Any] | None, notes: list[str]
) -> bool | None:
    if candidate.changes_semantics:
        notes.append("Changes what is computed, so the gradients are not compared with the original's.")
        return False
    if run.matches_reference is None:
        if reference and reference.get("timed_out"):
            notes.append("No gradient reference: the original code ran past the time limit.")
        elif reference and int(reference.get("backward_calls", 0)) == 0:
            notes.append(
                "No gradient reference: the original code fails before its first backward even when "
                "autograd may keep copies of saved tensors."
            )
        return None
    if run.matches_reference:
        notes.append(
            f"Gradients match the reference ({run.compared} compared: the original code run under "
            "allow_mutation_on_saved_tensors, same random state)."
        )
        return True
    notes.append("Gradients differ from the reference: " + ", ".join(run.mismatched[:5]) + ".")
    return False
