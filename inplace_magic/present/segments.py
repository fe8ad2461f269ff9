"""Text the panel and the sidebar draw as segments: plain text, code (with what it stands for on hover)
and cell references.

A cell reference carries the cell's In[] number and, where the kernel saw it, its notebook id, so the
front end can name the cell as the notebook shows it now (after a re-run or a move) and jump to it by
id. The words themselves are the kernel's (:mod:`inplace_magic.present.words`); the front end draws.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TypedDict

from ..diagnose.contract import DiagnosisJSON
from ..diagnose.diagnosis import cell_name
from .words import without_comment

Cells = Mapping[int, str | None]  # In[] number -> cell id, or None where the kernel saw none

# JSON's scalars, by exact type (no subclass): a walk of a diagnosis has nothing to look into there.
# Most of its values are these, and telling one from a Mapping costs an ABC check: walks skip them
# (a third of a walk's time on the tiny models, each walk once per error shown).
JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


class _SegmentBase(TypedDict):
    text: str


class Segment(_SegmentBase, total=False):
    """A piece of text to draw: plain, code, or a reference to a cell (which the front end names as
    the notebook shows it now, and jumps to by id)."""

    code: bool  # drawn as code
    title: str  # on hover: what the code stands for ("ReLU(inplace=True)")
    cell: int  # a cell reference: the cell's In[] number when the kernel ran it
    cell_id: str  # the referenced cell's notebook id, where the kernel saw it


def text(value: str) -> Segment:
    return {"text": value}


def code(value: str, title: str = "") -> Segment:
    out: Segment = {"text": value, "code": True}
    if title:
        out["title"] = title
    return out


def cell_ref(cell: int, cell_id: str | None) -> Segment:
    out: Segment = {"text": cell_name(cell), "cell": cell}
    if cell_id:
        out["cell_id"] = cell_id
    return out


def cells_of(diag: Any) -> dict[int, str | None]:
    """Every cell a diagnosis names (its In[] number), with its id where one of its locations has it."""
    return cells_and_ids(diag)[0]


def cells_and_ids(diag: Any) -> tuple[dict[int, str | None], dict[str, str]]:
    """:func:`cells_of` and the panel's ``cell_ids`` (cell index as a string -> the first id any
    location gives it) from one walk of the diagnosis: the panel's state needs both, and each walk
    of a diagnosis costs about 0.1 ms on a small model, at every error shown."""
    cells: dict[int, str | None] = {}  # the last non-empty id of a cell wins
    ids: dict[str, str] = {}  # the first id wins, as the panel has always read them

    def walk(value: object) -> None:
        if isinstance(value, Mapping):
            cell, cell_id = value.get("cell"), value.get("cell_id")
            if isinstance(cell, int) and isinstance(cell_id, str):
                ids.setdefault(str(cell), cell_id)
            if isinstance(cell, int) and not isinstance(cell, bool):  # a flag names no cell
                if isinstance(cell_id, str) and cell_id:
                    cells[cell] = cell_id
                else:
                    cells.setdefault(cell, None)
            for item in value.values():
                if type(item) not in JSON_SCALARS:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                if type(item) not in JSON_SCALARS:
                    walk(item)

    walk(diag)
    return dict(sorted(cells.items())), dict(sorted(ids.items(), key=lambda kv: int(kv[0])))


def location(loc: Mapping[str, Any] | None, cells: Cells) -> list[Segment]:
    """A location such as "cell [2], line 10" as a cell reference and its line; a file's location as text."""
    if not loc or not isinstance(loc.get("line"), int):
        return []
    cell = loc.get("cell")
    if isinstance(cell, int) and not isinstance(cell, bool):
        given = loc.get("cell_id")
        cell_id = given if isinstance(given, str) and given else cells.get(cell)
        return [cell_ref(cell, cell_id), text(f", line {loc['line']}")]
    return [text(f"{loc.get('file') or '?'}, line {loc['line']}")]


def prose(value: str, cells: Cells) -> list[Segment]:
    """A sentence of the diagnosis: `backticked` spans are code, the cells it names are references."""
    parts = value.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick is a character, in the text before it
        # (popped first: ``parts[-2] += ... parts.pop()`` stores at -2 of the shorter list)
        tail = parts.pop()
        parts[-1] += "`" + tail
    out: list[Segment] = []
    by_name = {cell_name(cell): (cell, cell_id) for cell, cell_id in cells.items()}
    for index, part in enumerate(parts):
        if not part:
            continue
        if index % 2:
            out.append(code(part))
            continue
        out.extend(_with_cells(part, by_name))
    return out


def _with_cells(value: str, by_name: Mapping[str, tuple[int, str | None]]) -> Iterator[Segment]:
    at = 0
    for start, name in _mentions(value, [name for name in by_name if name]):  # an empty name names nothing
        if start > at:
            yield text(value[at:start])
        yield cell_ref(*by_name[name])
        at = start + len(name)
    if at < len(value):
        yield text(value[at:])


def _mentions(value: str, names: list[str]) -> Iterator[tuple[int, str]]:
    """Where ``value`` names a cell, left to right, as a regular expression of the names (longest
    first) would find them. Not one: its In[] numbers differ at every error, so it was compiled anew
    for each diagnosis shown, a tenth of a millisecond; plain ``str.find`` costs microseconds."""
    at = 0
    while True:
        found = [(start, name) for name in names if (start := _next_mention(value, name, at)) >= 0]
        if not found:
            return
        start, name = min(found, key=lambda mention: (mention[0], -len(mention[1])))
        yield start, name
        at = start + len(name)


def _next_mention(value: str, name: str, at: int) -> int:
    """Where ``name`` next stands in ``value`` from ``at`` on, whole: "cell 2" is not the start of
    "cell 20", nor "cell [2" of "cell [2]" (-1 where it does not)."""
    start = value.find(name, at)
    while start >= 0 and _goes_on(value, start + len(name)):
        start = value.find(name, start + 1)
    return start


def _goes_on(value: str, end: int) -> bool:
    """A digit or a closing bracket right after a name: it is the start of another cell's name."""
    return end < len(value) and (value[end] == "]" or value[end].isdecimal())


def plain(segments: list[Segment]) -> str:
    """The segments as one line of text (code spans in backticks, as the diagnosis writes them)."""
    return "".join(f"`{s['text']}`" if s.get("code") else s["text"] for s in segments)


# -- the headline


def _short_op(op: object) -> str:
    name = str(op or "?")
    return name.removeprefix("aten.").split(".")[0] if name.startswith("aten.") else name


def _who_forms(site: Mapping[str, Any]) -> list[tuple[str, Segment]]:
    """How the engine's sentences name a site (diagnose/explain.py's ``_who``: a module by its path and
    class, a line without its comment), each with the short form the panel shows: the module path
    with its repr on hover, the code with what it ran on hover. Diagnoses recorded before the engine
    wrote short forms (the panel's fixtures) name a module by its repr and keep the comment: those
    long forms are recognised too."""
    forms: list[tuple[str, Segment]] = []
    code_line = str(site.get("code") or "")
    short = without_comment(code_line)
    quoted = list(dict.fromkeys([short, code_line]))  # the engine's form first, then a recorded one's
    module, module_type = site.get("module"), site.get("module_type")
    op = str(site.get("op") or "?")
    if site.get("optimizer"):
        for line in quoted:
            forms.append(
                (
                    f"`{line or 'optimizer.step()'}` ({site['optimizer']})",
                    code(short or "optimizer.step()", str(site["optimizer"])),
                )
            )
    if module and module_type:
        for kind in dict.fromkeys([str(module_type).split("(", 1)[0], str(module_type)]):
            forms.append((f"`{module}` ({kind})", code(str(module), str(module_type))))
    if module:
        inside, words = f" in `{module}`", f" in {module}"
    elif site.get("autograd_function"):
        inside, words = (
            f" in `{site['autograd_function']}.forward`",
            f" in {site['autograd_function']}.forward",
        )
    else:
        inside = words = ""
    if code_line:
        forms += [(f"`{line}` [{_short_op(op)}{inside}]", code(short, f"{op}{words}")) for line in quoted]
        forms += [(f"`{line}`", code(short, op)) for line in quoted]
    return forms


def headline(diag: DiagnosisJSON | Mapping[str, Any], cells: Cells) -> list[Segment]:
    """The engine's headline, short: each writer and saver by its module path (the repr on hover) or
    its code without the comment (what it ran on hover), and the cells as references. A phrase the
    engine words otherwise is kept as it is."""
    value = str(diag.get("headline") or "In-place autograd error")
    sites = [diag.get("inplace"), diag.get("saved_by"), *(diag.get("also_written_by") or [])]
    marks: list[Segment] = []
    for site in sites:
        if not isinstance(site, Mapping):
            continue
        for long, short in _who_forms(site):
            if long in value:
                value = value.replace(long, f"\x00{len(marks)}\x00")
                marks.append(short)
    parts: list[Segment] = []
    for index, piece in enumerate(value.split("\x00")):
        if index % 2:
            parts.append(marks[int(piece)])
        elif piece:
            parts.extend(prose(piece, cells))
    return parts


def headline_line(diag: DiagnosisJSON | Mapping[str, Any]) -> str:
    """The headline as one line of text, as the text and HTML reports print it."""
    return plain(headline(diag, cells_of(diag)))


def report_headline(diagnosis: Any, report: DiagnosisJSON | None, given: str | None) -> str:
    """The reports' headline: ``given`` where the caller made it already (the panel state's, on first
    display), else from ``report``, the diagnosis's JSON (made here when None)."""
    if given is not None:
        return given
    return headline_line(report if report is not None else diagnosis.to_json())
