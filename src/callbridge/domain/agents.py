"""Agent state: presence (ready / away / sign_out, with a named option) and phone state.

Presence is what the agent chose; phone state is what their phone is doing. Both are transition
tables. Durations are computed by the caller from the ``since`` timestamps.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

from .directory import PresenceType
from .errors import IllegalTransition
from .events import DomainEvent, EventCategory
from .fsm import Machine


class PhoneState(StrEnum):
    IDLE = "idle"
    RINGING = "ringing"
    BUSY = "busy"
    WRAPUP = "wrapup"


class PhoneEvent(StrEnum):
    OFFER = "offer"
    ANSWER = "answer"
    MISS = "miss"
    RELEASE = "release"
    WRAPUP = "wrapup"
    DONE = "done"


PHONE = Machine[PhoneState, PhoneEvent](
    "phone",
    {
        (PhoneState.IDLE, PhoneEvent.OFFER): PhoneState.RINGING,
        (PhoneState.IDLE, PhoneEvent.ANSWER): PhoneState.BUSY,  # e.g. picked up to dial out
        (PhoneState.RINGING, PhoneEvent.ANSWER): PhoneState.BUSY,
        (PhoneState.RINGING, PhoneEvent.MISS): PhoneState.IDLE,
        (PhoneState.RINGING, PhoneEvent.RELEASE): PhoneState.IDLE,
        (PhoneState.BUSY, PhoneEvent.RELEASE): PhoneState.IDLE,
        (PhoneState.BUSY, PhoneEvent.WRAPUP): PhoneState.WRAPUP,
        (PhoneState.WRAPUP, PhoneEvent.DONE): PhoneState.IDLE,
    },
    codes={
        (PhoneState.RINGING, PhoneEvent.OFFER): "agent_already_offered",
        (PhoneState.BUSY, PhoneEvent.OFFER): "agent_busy",
        (PhoneState.WRAPUP, PhoneEvent.OFFER): "agent_in_wrapup",
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


class AgentState(BaseModel):
    tenant_id: str
    extension_id: str
    presence: PresenceType = PresenceType.SIGN_OUT
    presence_name: str = "Sign Out"
    presence_since: datetime
    phone: PhoneState = PhoneState.IDLE
    phone_since: datetime
    queue_id: str | None = None
    queue_since: datetime | None = None
    consecutive_missed: int = 0

    def _event(self, type_: str, **data: object) -> DomainEvent:
        return DomainEvent(
            type=type_,
            category=EventCategory.AGENT,
            data={"extension_id": self.extension_id, **data},
        )

    def set_presence(self, kind: PresenceType, name: str, now: datetime) -> list[DomainEvent]:
        same_away = kind is PresenceType.AWAY and self.presence is PresenceType.AWAY
        if same_away and name == self.presence_name:
            raise IllegalTransition("presence", "away", "away", code="agent_already_away")
        new = PRESENCE.next(self.presence, kind)
        previous = {"type": self.presence, "name": self.presence_name}
        self.presence, self.presence_name, self.presence_since = new, name, now
        return [
            self._event(
                "agent.presence_changed",
                presence={"type": new, "name": name},
                previous=previous,
            )
        ]

    def phone_event(self, event: PhoneEvent, now: datetime) -> list[DomainEvent]:
        new = PHONE.next(self.phone, event)
        old, self.phone, self.phone_since = self.phone, new, now
        if event is PhoneEvent.MISS:
            self.consecutive_missed += 1
        elif event is PhoneEvent.ANSWER:
            self.consecutive_missed = 0
        return [self._event("agent.phone_state_changed", state=new, previous=old)]
