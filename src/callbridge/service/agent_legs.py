"""Which legs each agent's phone has, as the calls show them (an index kept by the agent service).

:meth:`AgentLegs.update` takes a call as just committed and returns, per agent extension it
touched, the legs that *ended* in it; :meth:`AgentLegs.observed` tells what an agent's phone
shows now. Pure bookkeeping: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..domain.agents import PhoneState
from ..domain.calls import Call, HangupCause, HoldState, Leg, LegState

#: ringing ended by the agent's side: declined, busy, or the switch gave up ringing
NOT_TAKEN = (HangupCause.NO_ANSWER, HangupCause.BUSY, HangupCause.REJECTED)

# which of several legs decides what the phone shows
_RANK = {PhoneState.TALKING: 3, PhoneState.HELD: 2, PhoneState.RINGING: 1}


@dataclass(frozen=True, slots=True)
class LegView:
    extension_id: str
    call_id: str
    leg_id: str
    queue_id: str | None
    phone: PhoneState  # ringing, talking or held


@dataclass(frozen=True, slots=True)
class EndedLeg:
    view: LegView
    answered: bool
    cause: HangupCause | None

    @property
    def not_taken(self) -> bool:
        return not self.answered and self.cause in NOT_TAKEN


def _phone_of(call: Call, leg: Leg) -> PhoneState:
    if leg.state is not LegState.ANSWERED:
        return PhoneState.RINGING
    if any(o.hold is HoldState.HELD for o in call.live_legs()):
        return PhoneState.HELD
    return PhoneState.TALKING


class AgentLegs:
    def __init__(self, is_agent: Callable[[str], bool]) -> None:
        self._is_agent = is_agent
        self._by_ext: dict[str, dict[str, LegView]] = {}  # extension id -> leg id -> view
        self._by_call: dict[str, set[tuple[str, str]]] = {}  # call id -> {(ext id, leg id)}
        # extension id -> what observed() returns, kept up to date as legs come and go (absent:
        # to be computed); a phone may carry hundreds of calls, and this is asked on every commit
        self._deciding: dict[str, LegView] = {}

    def clear(self) -> None:
        self._by_ext.clear()
        self._by_call.clear()
        self._deciding.clear()

    def update(self, call: Call) -> dict[str, list[EndedLeg]]:
        """Index ``call``'s agent legs; return the extensions it touched with their ended legs."""
        touched: dict[str, list[EndedLeg]] = {}
        previous = self._by_call.pop(call.id, set())
        for ext_id, leg_id in previous:
            view = self._by_ext.get(ext_id, {}).pop(leg_id, None)
            deciding = self._deciding.get(ext_id)
            if deciding is not None and deciding.leg_id == leg_id:
                del self._deciding[ext_id]  # the deciding leg left: find the next one when asked
            touched.setdefault(ext_id, [])
            leg = call.legs.get(leg_id)
            # a leg gone from the call was moved to another call (join): not an ending
            if view is not None and leg is not None and (call.ended or not leg.live):
                touched[ext_id].append(EndedLeg(view, leg.answered_at is not None, leg.cause))
        if not call.ended:
            current: set[tuple[str, str]] = set()
            for leg in call.live_legs():
                if leg.extension_id is None or not self._is_agent(leg.extension_id):
                    continue
                ext_id = leg.extension_id
                view = LegView(ext_id, call.id, leg.id, call.queue_id, _phone_of(call, leg))
                self._by_ext.setdefault(ext_id, {})[leg.id] = view
                deciding = self._deciding.get(ext_id)
                if deciding is not None and _decides(view) < _decides(deciding):
                    self._deciding[ext_id] = view
                current.add((ext_id, leg.id))
                touched.setdefault(ext_id, [])
            if current:
                self._by_call[call.id] = current
        for ext_id in touched:
            if not self._by_ext.get(ext_id):
                self._by_ext.pop(ext_id, None)
                self._deciding.pop(ext_id, None)
        return touched

    def legs_of(self, extension_id: str) -> Iterable[LegView]:
        return self._by_ext.get(extension_id, {}).values()

    def leg(self, extension_id: str, leg_id: str) -> LegView | None:
        return self._by_ext.get(extension_id, {}).get(leg_id)

    def observed(self, extension_id: str) -> LegView | None:
        """The leg that decides the phone state (talking over held over ringing), if any."""
        # kept by update() (a phone may have many calls at once: a shared or trunk-like
        # extension, the SIP bench's phone); computed again only when the deciding leg left
        found = self._deciding.get(extension_id)
        if found is None:
            found = min(self.legs_of(extension_id), key=_decides, default=None)
            if found is not None:
                self._deciding[extension_id] = found
        return found


def _decides(view: LegView) -> tuple[int, str]:
    """Order of the legs for :meth:`AgentLegs.observed`: the smallest decides."""
    return -_RANK[view.phone], view.leg_id
