"""Explicit random generator objects: their state, read and put back in place.

The global random states are :class:`~.run.RandomState`'s. These are the generators a user holds
(``np.random.default_rng(0)``, ``torch.Generator()``, ``random.Random(0)``, a legacy
``np.random.RandomState``): a replay that draws from one must draw the numbers the first run drew,
and leave it where the first run left it. Each is set back on the very object, so every reference
to it (a DataLoader's ``generator=``, a dataset's ``self.rng``) sees the change.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from typing import Any

import torch


def _numpy_kind(kind: type) -> str | None:
    numpy = sys.modules.get("numpy")  # never imported for this: a session without numpy has none
    if numpy is None:
        return None
    if issubclass(kind, numpy.random.Generator):
        return "numpy Generator"
    if issubclass(kind, numpy.random.RandomState):
        return "numpy RandomState"
    if issubclass(kind, numpy.random.BitGenerator):
        return "numpy BitGenerator"
    return None


def generator_kind_of(kind: type) -> str | None:
    """What kind of random generator a value of type ``kind`` is, in words, or None when it is none:
    the type alone decides (the walk before each cell asks once per type it meets, :mod:`.streams`)."""
    # issubclass: isinstance would go through the metaclass's Python-level __instancecheck__
    if issubclass(kind, torch.Generator):
        return "torch Generator"
    # SystemRandom draws from the OS: it has no state to set back, and no replay repeats it
    if issubclass(kind, random.Random) and not issubclass(kind, random.SystemRandom):
        return "random.Random"
    return _numpy_kind(kind)


@dataclass(frozen=True)
class GeneratorState:
    """The state of one generator object at one moment."""

    generator: Any
    state: Any

    @classmethod
    def read(cls, generator: Any) -> GeneratorState:
        if isinstance(generator, torch.Generator):
            return cls(generator, generator.get_state())
        if isinstance(generator, random.Random):
            return cls(generator, generator.getstate())
        numpy = sys.modules["numpy"]
        if isinstance(generator, numpy.random.RandomState):
            return cls(generator, generator.get_state())
        bit_generator = (
            generator.bit_generator if isinstance(generator, numpy.random.Generator) else generator
        )
        return cls(generator, bit_generator.state)  # a fresh dict each time: never aliased

    def put_back(self) -> bool:
        """Set the generator back to this state (always possible: True, as for iterators)."""
        generator = self.generator
        if isinstance(generator, torch.Generator):
            generator.set_state(self.state)
        elif isinstance(generator, random.Random):
            generator.setstate(self.state)
        elif isinstance(generator, sys.modules["numpy"].random.RandomState):
            generator.set_state(self.state)
        else:
            bit_generator = getattr(generator, "bit_generator", generator)
            bit_generator.state = self.state
        return True
