"""Transition tables.

Theory of operation: every state machine in the domain is a ``Machine``: a name and a table
``{(state, event): new_state}``. ``Machine.next`` looks the pair up and either returns the new state
or raises :class:`IllegalTransition` with a stable code. It never mutates anything itself, so the
caller applies the new state only after the whole command has been validated: an illegal event
always leaves the entity as it was. ``codes`` maps (state, event) pairs whose refusal deserves a
more specific code than the generic ``<machine>_cannot_<event>`` (e.g. ``leg_already_held``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar

from .errors import IllegalTransition

S = TypeVar("S", bound=StrEnum)
E = TypeVar("E", bound=StrEnum)


@dataclass(frozen=True)
class Machine(Generic[S, E]):
    name: str
    table: Mapping[tuple[S, E], S]
    codes: Mapping[tuple[S, E], str] = field(default_factory=dict)

    def next(self, state: S, event: E) -> S:
        try:
            return self.table[(state, event)]
        except KeyError:
            raise IllegalTransition(
                self.name, str(state), str(event), code=self.codes.get((state, event))
            ) from None

    def allows(self, state: S, event: E) -> bool:
        return (state, event) in self.table
