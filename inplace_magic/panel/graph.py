"""The conflict neighbourhood of a diagnosis as a small graph for the panel.

Only what the diagnosis names is drawn: the overwritten tensor, its saver and writer, the backward
that needs the old value, and for a skip connection the split, both branches and the merge. Nodes
carry a level (0: the conflict, 1: the branches and other writers, 2: call sites) so the front end
can start small and expand. The size is capped, and ids follow insertion order, so the payload is
the same for the same diagnosis.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from ..diagnose.contract import DiagnosisJSON, SkipJSON
from ..diagnose.diagnosis import cell_name
from ..present.segments import location
from ..present.words import without_comment
from .protocol import EdgeKind, GraphEdge, GraphNode, GraphView, NodeRole, Where

MAX_NODES = 40
MAX_BRANCH_STEPS = 6  # per branch, beyond which the middle collapses into one "more" node
MAX_CALLERS = 2


def short_op(op: str | None) -> str:
    """``aten.add_.Tensor`` -> ``add_``; ``Tensor.sub_`` -> ``sub_``; others unchanged."""
    if not op:
        return "?"
    if op.startswith("aten."):
        return op.split(".")[1]
    if op.startswith("Tensor."):
        return op[len("Tensor.") :]
    return op


def where(loc: Mapping[str, Any] | None) -> Where | None:
    """A location of the diagnosis JSON as the panel's :class:`Where` (None when it has no line)."""
    line = loc.get("line") if loc else None
    if not loc or not isinstance(line, int) or isinstance(line, bool):
        return None
    cell = loc.get("cell")
    out: Where
    parts = location(loc, {})
    if isinstance(cell, int):
        out = {"line": line, "cell": cell, "label": f"{cell_name(cell)}, line {line}", "parts": parts}
        if loc.get("cell_id"):
            out["cell_id"] = str(loc["cell_id"])
    else:
        file = str(loc.get("file") or "?")
        out = {"line": line, "file": file, "label": f"{file}, line {line}", "parts": parts}
    if loc.get("code"):
        out["code"] = _clip(without_comment(str(loc["code"])), 300)
    if loc.get("function"):
        out["function"] = str(loc["function"])
    return out


def part(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A part of the diagnosis, or an empty one: the builders never raise on a partial diagnosis."""
    return value if value else {}


def tensor_label(tensor: Mapping[str, Any] | None) -> str:
    if not tensor:
        return "tensor"
    shape = ", ".join(str(n) for n in tensor.get("shape") or [])
    return f"{tensor.get('dtype', '?')}[{shape}]"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Graph:
    def __init__(self) -> None:
        self.nodes: dict[tuple[Any, ...], GraphNode] = {}
        self.edges: dict[tuple[str, str], GraphEdge] = {}

    def node(
        self,
        key: tuple[Any, ...],
        role: NodeRole,
        op: str,
        module: str | None,
        text: str,
        loc: Where | None,
        level: int,
        title: str | None = None,
    ) -> str:
        found = self.nodes.get(key)
        if found is None:
            found = {
                "id": f"n{len(self.nodes)}",
                "roles": [],
                "op": op,
                "module": module,
                "title": title if title is not None else (f"{op} · {module}" if module else op),
                "text": _clip(without_comment(text), 120),
                "where": loc,
                "level": level,
            }
            self.nodes[key] = found
        if role not in found["roles"]:
            found["roles"].append(role)
        found["level"] = min(found["level"], level)
        return found["id"]

    def site(self, site: Mapping[str, Any], role: NodeRole, level: int, title: str | None = None) -> str:
        loc = where(site)
        op = (
            site.get("optimizer")
            if role == "optimizer" and site.get("optimizer")
            else short_op(site.get("op"))
        )
        return self.node(
            _site_key(site),
            role,
            str(op),
            site.get("module"),
            str(site.get("code") or ""),
            loc,
            level,
            title,
        )

    def edge(
        self,
        source: str,
        target: str,
        kind: EdgeKind,
        label: str,
        *,
        highlight: bool = False,
        broken: bool = False,
    ) -> None:
        if source == target:
            return
        found = self.edges.get((source, target))
        if found is None:
            self.edges[(source, target)] = {
                "id": f"e{len(self.edges)}",
                "source": source,
                "target": target,
                "kind": kind,
                "label": label,
                "highlight": highlight,
                "broken": broken,
            }
            return
        # two relations between the same nodes: keep the more telling one
        found["highlight"] = found["highlight"] or highlight
        found["broken"] = found["broken"] or broken
        if kind == "skip":
            found["kind"] = kind


def _site_key(site: Mapping[str, Any]) -> tuple[Any, ...]:
    return ("op", site.get("op"), site.get("module"), site.get("cell"), site.get("file"), site.get("line"))


def build_graph(diag: DiagnosisJSON) -> GraphView:
    """The neighbourhood graph of a diagnosis dict (``Diagnosis.to_json()``)."""
    g = _Graph()
    tensor = part(diag.get("tensor"))
    writer = diag.get("inplace")
    saver = diag.get("saved_by")
    kind = diag.get("kind")
    saved_v = tensor.get("saved_version")
    now_v = tensor.get("version")
    label = tensor_label(tensor)

    t_text = "leaf, requires grad" if tensor.get("is_leaf") else ""
    if saved_v is not None and now_v is not None:
        t_text = f"saved at v{saved_v}, now v{now_v}"
    t_name = tensor.get("parameter") or ", ".join(part(writer).get("names") or []) or "tensor"
    t = g.node(("tensor",), "tensor", label, t_name, t_text, None, 0, f"{label} · {t_name}")
    if tensor.get("is_leaf"):
        g.node(("tensor",), "leaf", label, t_name, t_text, None, 0)

    if saver:
        s = g.site(saver, "saver", 0)
        role = str(saver.get("role") or "")
        saved = f"saved v{saved_v}" if saved_v is not None else "saved"
        if "output" in role or kind == "view_inplace":
            g.edge(s, t, "saved", "its view" if kind == "view_inplace" else saved, highlight=True)
        else:
            g.edge(t, s, "saved", saved, highlight=True)
    if writer:
        w = g.site(writer, "optimizer" if diag.get("optimizer_step") else "writer", 0)
        change = f"writes → v{now_v}" if now_v is not None else "writes"
        g.edge(t, w, "writes", change, highlight=True)
    if saver and saver.get("node") and kind == "version_counter":
        err = where(diag.get("error"))
        b = g.node(
            ("backward",), "backward", str(saver["node"]), None, f"needs v{saved_v}, finds v{now_v}", err, 0
        )
        g.edge(t, b, "needs", f"needs v{saved_v}", highlight=True, broken=True)

    skip = diag.get("skip")
    if skip:
        _add_skip(g, skip, ", ".join(part(writer).get("names") or []) or label)
    for other in (diag.get("also_written_by") or [])[:4]:
        g.edge(t, g.site(other, "writer", 1), "writes", "also writes", highlight=True)
    for site in (writer, saver):
        for caller in (part(site).get("stack") or [])[:MAX_CALLERS]:
            c = g.node(
                ("caller", caller.get("cell"), caller.get("file"), caller.get("line")),
                "caller",
                "call",
                None,
                str(caller.get("code") or ""),
                where(caller),
                2,
                "called from",
            )
            g.edge(c, g.nodes[_site_key(part(site))]["id"], "calls", "")
    return _capped(g)


def _split_text(source: Mapping[str, Any]) -> str:
    """What the split stands for: its line, or for a value that came in as an argument, the function."""
    code = str(source.get("code") or "")
    if code.startswith(("def ", "async def ")):
        return f"input of {source.get('function') or 'the function'}()"
    return code


def _add_skip(g: _Graph, skip: SkipJSON, value: str) -> None:
    source = skip.get("from") or {}
    merge_info = skip.get("merge") or {}
    split = g.node(
        _site_key(source),
        "split",
        short_op(source.get("op")),
        None,
        _split_text(source),
        where(source),
        0,
        f"split · {value}",
    )
    merged = f"merge ({merge_info.get('kind') or short_op(merge_info.get('op'))})"
    module = merge_info.get("module")
    merge = g.site(merge_info, "merge", 0, f"{merged} · {module}" if module else merged)
    for branch, first_kind in (("saver_branch", "skip"), ("writer_branch", "data")):
        steps = [s for s in part(skip).get(branch) or [] if _site_key(s) != _site_key(merge_info)]
        chain = [split]
        if len(steps) > MAX_BRANCH_STEPS:
            head, tail = steps[: MAX_BRANCH_STEPS // 2], steps[-(MAX_BRANCH_STEPS // 2) :]
            hidden = len(steps) - len(head) - len(tail)
            chain += [g.site(s, "step", 1) for s in head]
            chain.append(g.node(("more", branch), "more", f"… {hidden} ops", None, "", None, 1))
            chain += [g.site(s, "step", 1) for s in tail]
        else:
            chain += [g.site(s, "step", 1) for s in steps]
        chain.append(merge)
        for i, (a, b) in enumerate(itertools.pairwise(chain)):
            # the saver's branch is the one whose value was overwritten: its edge out of the split
            # is the skip edge the in-place write broke
            if i == 0 and first_kind == "skip":
                g.edge(a, b, "skip", "", highlight=True, broken=True)
            else:
                g.edge(a, b, "data", "")


def _capped(g: _Graph) -> GraphView:
    nodes = list(g.nodes.values())
    omitted = 0
    if len(nodes) > MAX_NODES:
        keep = sorted(nodes, key=lambda n: (n["level"], int(n["id"][1:])))[:MAX_NODES]
        omitted = len(nodes) - len(keep)
        kept = {n["id"] for n in keep}
        nodes = [n for n in nodes if n["id"] in kept]
    ids = {n["id"] for n in nodes}
    edges = [e for e in g.edges.values() if e["source"] in ids and e["target"] in ids]
    return {
        "nodes": nodes,
        "edges": edges,
        "max_level": max((n["level"] for n in nodes), default=0),
        "omitted": omitted,
    }
