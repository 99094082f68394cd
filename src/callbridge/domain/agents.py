"""Agent state: presence, phone state and queue state (the CCS ``agent_state`` response).

Theory of operation
-------------------
Three things are tracked separately, each with the time it last changed (``*_since``), so a
client can show how long it has lasted:

* **presence** — what the agent chose: ``ready``, ``away`` with a named option (``Coffee Break``)
  or ``sign_out`` with a named sign-out option. Table :data:`PRESENCE`. Leaving ``sign_out`` is a
  sign-in, entering it a sign-out; both get their own event besides ``agent.presence_changed``.
* **phone state** — what the agent's phone is doing: ``idle``, ``ringing`` (offered), ``talking``,
  ``held`` (the agent's call is on hold), ``wrapup`` (after-call work for a queue call). Table
  :data:`PHONE`. The service does not choose these: it *observes* the agent's legs and walks the
  table to what it saw (:func:`phone_steps`), so every intermediate change is an event.
* **queue state** — which queue the agent's current (or just finished, during wrap-up) activity
  belongs to; ``None`` when the activity is not a queue call. Its display state follows the phone:
  offered, connected, wrap-up.

``consecutive_missed`` counts queue offers not answered within the queue's ring timeout;
answering a queue call or going ready again resets it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel

from .directory import PresenceType
from .errors import IllegalTransition
from .events import DomainEvent, EventCategory
from .fsm import Machine


class PhoneState(StrEnum):
    IDLE = "idle"
    RINGING = "ringing"
    TALKING = "talking"
    HELD = "held"
    WRAPUP = "wrapup"
    BUSY = "talking"  # the former name of TALKING (an alias, not a state of its own)


class PhoneEvent(StrEnum):
    OFFER = "offer"
    ANSWER = "answer"
    HOLD = "hold"
    UNHOLD = "unhold"
    MISS = "miss"
    RELEASE = "release"
    WRAPUP = "wrapup"
    DONE = "done"


PHONE = Machine[PhoneState, PhoneEvent](
    "phone",
    {
        (PhoneState.IDLE, PhoneEvent.OFFER): PhoneState.RINGING,
        (PhoneState.IDLE, PhoneEvent.ANSWER): PhoneState.TALKING,  # e.g. picked up to dial out
        (PhoneState.RINGING, PhoneEvent.ANSWER): PhoneState.TALKING,
        (PhoneState.RINGING, PhoneEvent.MISS): PhoneState.IDLE,
        (PhoneState.RINGING, PhoneEvent.RELEASE): PhoneState.IDLE,
        (PhoneState.TALKING, PhoneEvent.HOLD): PhoneState.HELD,
        (PhoneState.TALKING, PhoneEvent.RELEASE): PhoneState.IDLE,
        (PhoneState.TALKING, PhoneEvent.WRAPUP): PhoneState.WRAPUP,
        (PhoneState.HELD, PhoneEvent.UNHOLD): PhoneState.TALKING,
        (PhoneState.HELD, PhoneEvent.RELEASE): PhoneState.IDLE,
        (PhoneState.HELD, PhoneEvent.WRAPUP): PhoneState.WRAPUP,
        (PhoneState.WRAPUP, PhoneEvent.DONE): PhoneState.IDLE,
    },
    codes={
        (PhoneState.RINGING, PhoneEvent.OFFER): "agent_already_offered",
        (PhoneState.TALKING, PhoneEvent.OFFER): "agent_busy",
        (PhoneState.HELD, PhoneEvent.OFFER): "agent_busy",
        (PhoneState.WRAPUP, PhoneEvent.OFFER): "agent_in_wrapup",
        (PhoneState.HELD, PhoneEvent.HOLD): "agent_already_held",
        (PhoneState.TALKING, PhoneEvent.UNHOLD): "agent_not_held",
        (PhoneState.IDLE, PhoneEvent.DONE): "agent_not_in_wrapup",
    },
)


PRESENCE = Machine[PresenceType, PresenceType](
    "presence",
    {
        (PresenceType.SIGN_OUT, PresenceType.READY): PresenceType.READY,
        (PresenceType.SIGN_OUT, PresenceType.AWAY): PresenceType.AWAY,
        (PresenceType.READY, PresenceType.AWAY): PresenceType.AWAY,
        (PresenceType.READY, PresenceType.SIGN_OUT): PresenceType.SIGN_OUT,
        (PresenceType.AWAY, PresenceType.READY): PresenceType.READY,
        (PresenceType.AWAY, PresenceType.AWAY): PresenceType.AWAY,  # another away option
        (PresenceType.AWAY, PresenceType.SIGN_OUT): PresenceType.SIGN_OUT,
    },
    codes={
        (PresenceType.READY, PresenceType.READY): "agent_already_ready",
        (PresenceType.SIGN_OUT, PresenceType.SIGN_OUT): "agent_already_signed_out",
    },
)

#: The phone states a set of legs can show (wrap-up is never observed, only entered).
OBSERVABLE = (PhoneState.IDLE, PhoneState.RINGING, PhoneState.TALKING, PhoneState.HELD)

_DIRECT: dict[tuple[PhoneState, PhoneState], list[PhoneEvent]] = {
    (PhoneState.IDLE, PhoneState.RINGING): [PhoneEvent.OFFER],
    (PhoneState.IDLE, PhoneState.TALKING): [PhoneEvent.ANSWER],
    (PhoneState.IDLE, PhoneState.HELD): [PhoneEvent.ANSWER, PhoneEvent.HOLD],
    (PhoneState.RINGING, PhoneState.TALKING): [PhoneEvent.ANSWER],
    (PhoneState.RINGING, PhoneState.HELD): [PhoneEvent.ANSWER, PhoneEvent.HOLD],
    (PhoneState.TALKING, PhoneState.HELD): [PhoneEvent.HOLD],
    (PhoneState.HELD, PhoneState.TALKING): [PhoneEvent.UNHOLD],
}


def phone_steps(
    current: PhoneState, observed: PhoneState, *, wrapup: bool = False, missed: bool = False
) -> list[PhoneEvent]:
    """The table events that take the phone from ``current`` to what its legs show.

    ``wrapup``: a finished call leaves after-call work (talking/held -> wrapup, not idle).
    ``missed``: a ringing phone stopped because the agent did not take the offer.
    A new activity during wrap-up ends the wrap-up first (the agent is on the phone again).
    """
    if observed not in OBSERVABLE:
        raise ValueError(f"{observed} cannot be observed on legs")
    if current is observed:
        return []
    if current is PhoneState.WRAPUP:
        if observed is PhoneState.IDLE:
            return []
        return [PhoneEvent.DONE, *phone_steps(PhoneState.IDLE, observed)]
    direct = _DIRECT.get((current, observed))
    if direct is not None:
        return list(direct)
    if current is PhoneState.RINGING:
        leave = PhoneEvent.MISS if missed else PhoneEvent.RELEASE
    else:
        finishing = wrapup and observed is PhoneState.IDLE
        leave = PhoneEvent.WRAPUP if finishing else PhoneEvent.RELEASE
    if observed is PhoneState.IDLE:
        return [leave]
    return [PhoneEvent.RELEASE, *phone_steps(PhoneState.IDLE, observed)]


PHONE_DISPLAY = {
    PhoneState.IDLE: "Idle",
    PhoneState.RINGING: "Ringing",
    PhoneState.TALKING: "Talking",
    PhoneState.HELD: "Held",
    PhoneState.WRAPUP: "Wrap Up",
}

QUEUE_DISPLAY = {
    PhoneState.IDLE: "None",
    PhoneState.RINGING: "Offered",
    PhoneState.TALKING: "Connected",
    PhoneState.HELD: "Connected",
    PhoneState.WRAPUP: "Wrap Up",
}


def clock_duration(seconds: float) -> str:
    """``117:11:18``: hours (unbounded), minutes, seconds — the CCS duration format."""
    total = max(0, int(seconds))
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


class AgentState(BaseModel):
    """One agent's presence, phone and queue state.

    Every field holds an immutable value (a test pins it), so the agent service drafts a change
    on a shallow ``model_copy()``: a deep copy cost ten times as much, on every call's commit.
    """

    tenant_id: str
    extension_id: str
    presence: PresenceType = PresenceType.SIGN_OUT
    presence_name: str = "Sign Out"
    presence_since: datetime
    phone: PhoneState = PhoneState.IDLE
    phone_since: datetime
    call_id: str | None = None  # the call the phone state is about (none when idle)
    queue_id: str | None = None
    queue_since: datetime | None = None
    wrapup_until: datetime | None = None
    consecutive_missed: int = 0

    @property
    def signed_in(self) -> bool:
        return self.presence is not PresenceType.SIGN_OUT

    @property
    def queue_status(self) -> str:
        return "None" if self.queue_id is None else QUEUE_DISPLAY[self.phone]

    def _event(self, type_: str, **data: object) -> DomainEvent:
        return DomainEvent(
            type=type_,
            category=EventCategory.AGENT,
            data={"extension_id": self.extension_id, **data},
        )

    def set_presence(
        self, kind: PresenceType, name: str, now: datetime, *, reason: str | None = None
    ) -> list[DomainEvent]:
        same_away = kind is PresenceType.AWAY and self.presence is PresenceType.AWAY
        if same_away and name == self.presence_name:
            raise IllegalTransition("presence", "away", "away", code="agent_already_away")
        new = PRESENCE.next(self.presence, kind)
        previous = {"type": self.presence, "name": self.presence_name}
        was_signed_in = self.signed_in
        self.presence, self.presence_name, self.presence_since = new, name, now
        extra: dict[str, object] = {} if reason is None else {"reason": reason}
        events = [
            self._event(
                "agent.presence_changed",
                presence={"type": new, "name": name},
                previous=previous,
                **extra,
            )
        ]
        if new is PresenceType.READY:
            self.consecutive_missed = 0  # a fresh start: the miss rule counts from here
        if not was_signed_in:
            events.append(self._event("agent.signed_in", presence={"type": new, "name": name}))
        elif new is PresenceType.SIGN_OUT:
            events.append(self._event("agent.signed_out", name=name, **extra))
        return events

    def phone_event(self, event: PhoneEvent, now: datetime) -> list[DomainEvent]:
        new = PHONE.next(self.phone, event)
        old, call_id = self.phone, self.call_id
        self.phone, self.phone_since = new, now
        if new is not PhoneState.WRAPUP:
            self.wrapup_until = None
        if new is PhoneState.IDLE:
            self.call_id = None
        data: dict[str, object] = {"state": new, "previous": old}
        if call_id is not None:
            data["call_id"] = call_id
        return [self._event("agent.phone_state_changed", **data)]

    def follow(
        self,
        observed: PhoneState,
        now: datetime,
        *,
        call_id: str | None = None,
        wrapup_seconds: float = 0,
        missed: bool = False,
        queue_call: bool = False,
    ) -> list[DomainEvent]:
        """Walk the phone table to what the agent's legs show (see :func:`phone_steps`).

        Answering a queue call (``queue_call``) resets ``consecutive_missed``; other calls, such
        as the agent's own click-to-call, do not count either way.
        """
        steps = phone_steps(self.phone, observed, wrapup=wrapup_seconds > 0, missed=missed)
        events: list[DomainEvent] = []
        for step in steps:
            if step in (PhoneEvent.OFFER, PhoneEvent.ANSWER) and call_id is not None:
                self.call_id = call_id
            if step is PhoneEvent.ANSWER and queue_call:
                self.consecutive_missed = 0
            events += self.phone_event(step, now)
            if step is PhoneEvent.WRAPUP:
                self.wrapup_until = now + timedelta(seconds=wrapup_seconds)
        if observed is not PhoneState.IDLE and call_id is not None:
            self.call_id = call_id
        return events

    def end_wrapup(self, now: datetime) -> list[DomainEvent]:
        """After-call work is over (its time ran out, or the agent said ready)."""
        events = self.phone_event(PhoneEvent.DONE, now)
        return events + self.set_queue(None, now)

    def set_queue(self, queue_id: str | None, now: datetime) -> list[DomainEvent]:
        if queue_id == self.queue_id:
            return []
        previous = self.queue_id
        self.queue_id = queue_id
        self.queue_since = None if queue_id is None else now
        return [self._event("agent.queue_state_changed", queue_id=queue_id, previous=previous)]

    def miss_offer(self, queue_id: str | None, call_id: str | None) -> list[DomainEvent]:
        """An offer was not taken within the ring timeout."""
        self.consecutive_missed += 1
        return [
            self._event(
                "agent.offer_missed",
                queue_id=queue_id,
                call_id=call_id,
                consecutive_missed=self.consecutive_missed,
            )
        ]
