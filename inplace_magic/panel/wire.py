"""The wire protocol's one source of truth, read two ways: as JSON Schema and as a validator.

The messages and payloads between the kernel and the front end are the TypedDicts of
:mod:`.protocol` (the panel) and :mod:`inplace_magic.lab.protocol` (the sidebar), and the diagnosis
JSON of :mod:`inplace_magic.diagnose.contract`. This module walks their annotations:

- :func:`schema_of` writes them as JSON Schema (``schema/wire/*.schema.json``, from which the
  TypeScript types are generated: ``make protocol``);
- :func:`problem` checks a message that came from the front end against the same annotations, the
  type of every field (``true`` is not an integer here, although ``bool`` is an ``int`` in Python),
  and names the first field that is wrong.

Only the annotation forms the protocol uses are understood (str, int, float, bool, None, Literal,
unions, list, dict with str keys, nested TypedDicts, Any); anything else raises TypeError when the
schema is written, so a new form cannot slip through unchecked.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import types
from collections.abc import Mapping
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints, is_typeddict

JSONSchema = dict[str, Any]

_SCALARS: dict[object, tuple[str, str]] = {
    str: ("string", "a string"),
    int: ("integer", "an integer"),
    float: ("number", "a number"),
    bool: ("boolean", "true or false"),
    type(None): ("null", "null"),
}


@functools.cache
def _hints(td: type) -> dict[str, Any]:
    return get_type_hints(td)


def _is_union(tp: object) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def _field_comments(td: type) -> dict[str, str]:
    """``name: type  # comment`` in the class body (and its bases) -> the comment, for the schema."""
    found: dict[str, str] = {}
    for klass in reversed(td.__mro__):
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):  # a functional TypedDict, or a built-in base
            continue
        for match in re.finditer(r"^\s+(\w+|\"\w+\"):.*?#\s*(.+)$", source, re.MULTILINE):
            found[match.group(1).strip('"')] = match.group(2).strip()
    return found


def _functional_comments(td: type) -> dict[str, str]:
    """The comments of a functional ``TypedDict("Name", {"key": type,  # comment})``."""
    module = inspect.getmodule(td)
    if module is None:
        return {}
    try:
        source = inspect.getsource(module)
    except OSError:
        return {}
    start = source.find(f'{td.__name__} = TypedDict(\n    "{td.__name__}"')
    if start < 0:
        return {}
    block = source[start : source.find("\n)\n", start)]
    return {m.group(1): m.group(2).strip() for m in re.finditer(r'^\s+"(\w+)":.*?#\s*(.+)$', block, re.M)}


class SchemaWriter:
    """Turns TypedDicts (and named aliases) into one JSON Schema with ``$defs``.

    ``aliases`` names Literal and union aliases (``NodeRole = Literal[...]`` is just a Literal at
    runtime); ``external`` maps TypedDicts defined by another schema file to their ``$ref`` there.
    """

    def __init__(
        self, aliases: Mapping[str, object] | None = None, external: Mapping[type, str] | None = None
    ) -> None:
        self.aliases = {_key(tp): name for name, tp in (aliases or {}).items()}
        self.external = dict(external or {})
        self.defs: dict[str, JSONSchema] = {}

    def of(self, tp: object) -> JSONSchema:
        if tp is Any:
            return {}
        if tp in _SCALARS:
            return {"type": _SCALARS[tp][0]}
        origin, args = get_origin(tp), get_args(tp)
        if origin is Literal or _is_union(tp):
            body: JSONSchema
            if origin is Literal:
                body = {"enum": list(args)} if len(args) > 1 else {"const": args[0]}
            else:
                body = {"anyOf": [self.of(arg) for arg in args]}
            name = self.aliases.get(_key(tp))
            if name is None:
                return body
            self.defs.setdefault(name, {"title": name, **body})
            return {"$ref": f"#/$defs/{name}"}
        if origin is list:
            return {"type": "array", "items": self.of(args[0])}
        if origin is dict and args[0] is str:
            return {"type": "object", "additionalProperties": self.of(args[1])}
        if isinstance(tp, type) and tp in self.external:
            return {"$ref": self.external[tp]}
        if isinstance(tp, type) and is_typeddict(tp):
            return self.typeddict(tp)
        raise TypeError(f"the wire protocol cannot carry {tp!r}")

    def typeddict(self, td: type) -> JSONSchema:
        name = td.__name__
        if name not in self.defs:
            self.defs[name] = {}  # placeholder: a recursive reference ends here
            comments = {**_functional_comments(td), **_field_comments(td)}
            properties: JSONSchema = {}
            for key, hint in _hints(td).items():
                prop = self.of(hint)
                # beside a bare $ref, a description would be read as the referenced type's
                if key in comments and "$ref" not in prop:
                    prop = {**prop, "description": _plain(comments[key])}
                properties[key] = prop
            required = [key for key in properties if key in td.__required_keys__]  # type: ignore[attr-defined]
            definition: JSONSchema = {"title": f"I{name}", "type": "object"}
            if td.__doc__:  # its own docstring (inspect.getdoc would inherit dict's)
                definition["description"] = _plain(inspect.cleandoc(td.__doc__))
            definition.update(properties=properties, required=required, additionalProperties=False)
            self.defs[name] = definition
        return {"$ref": f"#/$defs/{name}"}

    def document(self, title: str, description: str, roots: list[object], **extra: Any) -> JSONSchema:
        """One schema file: any one of ``roots``, with everything they use under ``$defs``."""
        refs = [self.of(root) for root in roots]
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": title,
            "description": description,
            **extra,
            "anyOf": refs,
            "$defs": dict(sorted(self.defs.items())),
        }


def _plain(doc: str) -> str:
    """reST roles and double backticks as the plain backticks of a JSDoc comment."""
    return re.sub(r":\w+:`~?\.*([\w.]+)`", r"`\1`", doc).replace("``", "`")


def _key(tp: object) -> tuple[object, ...]:
    # Literal["a", "b"] == Literal["b", "a"] and Literal[1] == Literal[True]: key by order, value and type
    kind = "literal" if get_origin(tp) is Literal else "union"
    return (kind, *((type(a), a) for a in get_args(tp)))


def schema_of(td: type) -> JSONSchema:
    """The JSON Schema of one TypedDict (with its ``$defs``), for tests and tools."""
    writer = SchemaWriter()
    ref = writer.of(td)
    return {**ref, "$defs": writer.defs}


# -- validation: the same annotations, checked against a value from the front end


def _show(value: object) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = type(value).__name__
    return text if len(text) <= 40 else text[:39] + "…"


def _describe(tp: object) -> str:
    if tp is Any:
        return "anything"
    if tp in _SCALARS:
        return _SCALARS[tp][1]
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return " or ".join(_show(a) for a in args)
    if _is_union(tp):
        return " or ".join(_describe(a) for a in args)
    if origin is list:
        return "a list"
    return "an object"


def _matches_scalar(tp: object, value: object) -> bool:
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    return value is None


def problem(tp: object, value: object, path: str = "") -> str | None:
    """Why ``value`` is not a ``tp``, naming the field (``"fixIndex must be an integer, not true"``),
    or None when it is one. ``tp`` is a TypedDict or any annotation :class:`SchemaWriter` knows;
    ``path`` is where ``value`` sits in the message ("" for the message itself)."""
    name = path or "the message"
    if tp is Any:
        return None
    if tp in _SCALARS:
        return None if _matches_scalar(tp, value) else f"{name} must be {_describe(tp)}, not {_show(value)}"
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        # type first: True == 1 in Python, and a protocol number is not a boolean
        ok = any(type(value) is type(a) and value == a for a in args)
        return None if ok else f"{name} must be {_describe(tp)}, not {_show(value)}"
    if _is_union(tp):
        if any(problem(arg, value, path) is None for arg in args):
            return None
        return f"{name} must be {_describe(tp)}, not {_show(value)}"
    if origin is list:
        if not isinstance(value, list):
            return f"{name} must be a list, not {_show(value)}"
        for i, item in enumerate(value):
            found = problem(args[0], item, f"{name}[{i}]")
            if found:
                return found
        return None
    if origin is dict:
        if not isinstance(value, dict):
            return f"{name} must be an object, not {_show(value)}"
        for key, item in value.items():
            found = problem(args[1], item, f"{name}[{_show(key)}]")
            if found:
                return found
        return None
    if isinstance(tp, type) and is_typeddict(tp):
        return _typeddict_problem(tp, value, path)
    raise TypeError(f"the wire protocol cannot carry {tp!r}")


def _typeddict_problem(td: type, value: object, path: str) -> str | None:
    name = path or "the message"
    if not isinstance(value, dict):
        return f"{name} must be an object, not {_show(value)}"
    hints = _hints(td)
    missing = [key for key in hints if key in td.__required_keys__ and key not in value]  # type: ignore[attr-defined]
    if missing:
        return f"{name} has no {', '.join(missing)}"
    unknown = sorted(str(key) for key in value if key not in hints)
    if unknown:
        return f"{name} carries fields it never has: {', '.join(unknown)}"
    for key, hint in hints.items():
        if key in value:
            found = problem(hint, value[key], f"{path}.{key}" if path else key)
            if found:
                return found
    return None
