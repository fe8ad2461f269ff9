"""Records -> :class:`OpSite`: the location, module, where the module was built, the enclosing lines.

One builder per diagnosis; it holds the locator (frames -> cells and lines) and the namer (modules
and parameters), which every part of the analysis shares.
"""

from __future__ import annotations

from typing import Any

import torch

from ..record.frames import Frame, forward_hook_of
from ..record.records import OpRecord, TensorInfo, Trace
from ..replay.run import CellLookup
from .diagnosis import Location, OpSite, TensorSummary
from .locations import Locator
from .module_names import ModuleNamer


class SiteBuilder:
    def __init__(self, trace: Trace, source_map: CellLookup, namespace: dict[str, Any] | None) -> None:
        self.trace = trace
        self.locator = Locator(source_map)
        self.names = ModuleNamer(trace, namespace or {})

    def site(
        self,
        op: str,
        frames: tuple[Frame, ...],
        modules: tuple[torch.nn.Module, ...],
        **extra: Any,
    ) -> OpSite:
        module = modules[-1] if modules else None
        defined_at = None
        path = self.names.path(modules)
        hook = forward_hook_of(module, frames) if module is not None else None
        if hook is not None:
            # torch runs a module's forward hooks inside its call: the op is the hook's, not the
            # module's implementation (no construction line to edit)
            role = extra.get("role")
            hooked = f"in a {hook} registered on {path}"
            extra["role"] = f"{role}, {hooked}" if role else hooked
        elif module is not None and type(module).__module__.startswith("torch."):
            # the op ran inside torch's own module code: the user's edit goes where it was built
            defined_at = self.locator.location(self.trace.construction_sites.get(module))
        extra.setdefault("autograd_function", frames[0].autograd_function if frames else None)
        return OpSite(
            op=op,
            location=self.locator.location(frames[0] if frames else None),
            module=path,
            module_type=self.names.describe(module) if module is not None else None,
            defined_at=defined_at,
            stack=self.locator.stack(frames),
            **extra,
        )

    def op_site(self, op: OpRecord, **extra: Any) -> OpSite:
        return self.site(op.op, op.frames, op.modules, optimizer=op.optimizer, names=op.names, **extra)

    def location(self, frame: Frame | None) -> Location | None:
        return self.locator.location(frame)

    def parameter(self, storage: int) -> str | None:
        return self.names.parameter(storage)

    def tensor(self, info: TensorInfo, saved_version: int | None, current: int | None) -> TensorSummary:
        return TensorSummary(
            shape=info.shape,
            dtype=info.dtype,
            saved_version=saved_version,
            version=current,
            parameter=self.parameter(info.storage),
            is_leaf=info.is_leaf,
            requires_grad=info.requires_grad,
            nested=info.nested,
        )
