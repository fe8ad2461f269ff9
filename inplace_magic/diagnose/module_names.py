"""Names people use for modules and parameters: ``encoder.block2.act``, ``D.2.weight``.

Paths are relative to the model object; when the namespace holds several models (a GAN's G and D,
an actor and a critic) they are prefixed with the variable name, so ``D.2`` never reads as ``G.2``.
"""

from __future__ import annotations

from typing import Any

import torch

from ..record.records import Trace
from ..record.torch_facts import storage_key


class ModuleNamer:
    def __init__(self, trace: Trace, namespace: dict[str, Any]) -> None:
        self.trace = trace
        named: list[tuple[str, torch.nn.Module]] = [
            (name, value)
            for name, value in namespace.items()
            if isinstance(value, torch.nn.Module) and not name.startswith("_")
        ]
        self._trees: dict[int, list[tuple[str, torch.nn.Module]]] = {}
        contained: set[int] = set()
        for _, module in named:
            contained.update(id(sub) for _, sub in self._tree(module) if sub is not module)
        self.models: list[tuple[str, torch.nn.Module]] = [(n, m) for n, m in named if id(m) not in contained]
        self.prefix = len({id(m) for _, m in self.models}) > 1
        self._name_of_root = {id(m): n for n, m in reversed(self.models)}
        self._paths: dict[int, dict[int, str]] = {}
        self._parameters: dict[int, str] | None = None

    def _tree(self, root: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
        """``root.named_modules(remove_duplicate=False)``, walked once for the whole diagnosis."""
        tree = self._trees.get(id(root))
        if tree is None:
            tree = self._trees[id(root)] = _named_modules(root)
        return tree

    def _index(self, root: torch.nn.Module) -> dict[int, str]:
        index = self._paths.get(id(root))
        if index is None:
            index = {}
            for path, sub in self._tree(root):
                index.setdefault(id(sub), path)
            self._paths[id(root)] = index
        return index

    def _qualify(self, root: torch.nn.Module, path: str) -> str:
        name = self._name_of_root.get(id(root))
        if not path:
            return name or type(root).__name__
        return f"{name}.{path}" if self.prefix and name else path

    def path(self, modules: tuple[torch.nn.Module, ...]) -> str | None:
        """Qualified path of the innermost module of a module call stack."""
        if not modules:
            return None
        leaf = modules[-1]
        outer = modules[0]
        # the outermost module called may be a part of a model (``model.forward_features(x)`` calls
        # ``model.layer4`` first, ``b.layer2(c2)`` a backbone's stage): paths start at the model
        models = [m for _, m in self.models]
        holders = [m for m in models if m is outer or id(outer) in self._index(m)]
        held = {id(m) for m in holders}
        roots = [*holders, *([] if id(outer) in held else [outer]), *(m for m in models if id(m) not in held)]
        found = [(root, path) for root in roots if (path := self._index(root).get(id(leaf))) is not None]
        if found:
            # a submodule called on its own (``net[1](h)``) is still ``net.1`` when a model holds it
            root, path = min(found, key=lambda item: not item[1])
            return self._qualify(root, path)
        # created inline (``nn.ReLU(inplace=True)(h)``): name it under the nearest registered caller
        for depth in range(len(modules) - 2, -1, -1):
            for root in roots:
                path = self._index(root).get(id(modules[depth]))
                if path is not None:
                    parent = self._qualify(root, path)
                    return f"{parent}.<unregistered {type(leaf).__name__}>"
        return f"<unregistered {type(leaf).__name__}>"

    @staticmethod
    def describe(module: torch.nn.Module) -> str:
        try:
            extra = module.extra_repr()
        except Exception:  # a user module whose extra_repr fails must not break the report
            extra = ""
        text = f"{type(module).__name__}({extra})"
        return text if len(text) <= 80 else text[:77] + "...)"

    def parameter(self, storage: int) -> str | None:
        """The parameter or buffer living in ``storage`` (also for views such as ``weight.t()``)."""
        if self._parameters is None:
            found: dict[int, str] = {}
            # the namespace's models first: a root the replay called may be a part of one (``model.layer4``
            # when ``model.forward_features(x)`` ran), whose names would lack the model's path
            roots: list[tuple[str | None, torch.nn.Module]] = [(n, m) for n, m in self.models]
            roots += [(self._name_of_root.get(id(m)), m) for m in self.trace.roots]
            walked: set[int] = set()
            for name, root in roots:
                if id(root) in walked:
                    continue  # the model the replay called is most often a name's too: same names
                walked.add(id(root))
                for pname, tensor in _parameters_and_buffers(root, self._tree(root)):
                    label = f"{name}.{pname}" if (self.prefix and name) else pname
                    found.setdefault(storage_key(tensor), label)
            for optimizer in self.trace.optimizers:
                for g, group in enumerate(optimizer.param_groups):
                    for i, p in enumerate(group["params"]):
                        found.setdefault(storage_key(p), f"{type(optimizer).__name__} param_groups[{g}][{i}]")
            self._parameters = found
        return self._parameters.get(storage)


_NAMED = (torch.nn.Module.named_parameters, torch.nn.Module.named_buffers)
_NAMED_MODULES = torch.nn.Module.named_modules
_MAX_WALK = 100_000  # torch's own walk would recurse for ever on a module that contains itself


def _named_modules(root: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """``list(root.named_modules(remove_duplicate=False))`` without a generator per module: torch's
    recursion of generators was a third of the analysis on a small model, where the namespace's
    models, the module paths and the parameters' names each walked the model again. A module whose
    class walks its own way gets torch's walk, overrides and all."""
    found: list[tuple[str, torch.nn.Module]] = []
    stack: list[tuple[str, torch.nn.Module]] = [("", root)]
    while stack:
        path, module = stack.pop()
        if type(module).named_modules is not _NAMED_MODULES or len(found) > _MAX_WALK:
            return list(root.named_modules(remove_duplicate=False))
        found.append((path, module))
        children = [
            (f"{path}.{name}" if path else name, child)
            for name, child in module._modules.items()
            if child is not None
        ]
        stack.extend(reversed(children))  # depth first, in registration order, as torch walks
    return found


def _parameters_and_buffers(
    root: torch.nn.Module, tree: list[tuple[str, torch.nn.Module]]
) -> list[tuple[str, torch.Tensor]]:
    """``[*root.named_parameters(), *root.named_buffers()]``, read from each module's own dicts
    (``tree``: :func:`_named_modules` of ``root``): torch's generators walk the modules twice, with a
    memo, and at every diagnosis that was half of the analysis on a small model (a tensor is named
    by its first name either way)."""
    kind = type(root)
    if (kind.named_parameters, kind.named_buffers) != _NAMED:  # a model that names its own
        return [*root.named_parameters(), *root.named_buffers()]
    modules: list[tuple[str, torch.nn.Module]] = []
    seen: set[int] = set()
    for path, module in tree:  # each module at its first path, as named_modules() gives them
        if id(module) not in seen:
            seen.add(id(module))
            modules.append((path, module))
    found: list[tuple[str, torch.Tensor]] = []
    for members in ("_parameters", "_buffers"):
        for path, module in modules:
            for key, tensor in getattr(module, members).items():
                if tensor is not None:
                    found.append((f"{path}.{key}" if path else key, tensor))
    return found
