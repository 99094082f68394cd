"""Calls, legs, bridges and recordings.

A :class:`Call` is one conversation: a set of :class:`Leg` (one party's channel each) and of
:class:`Bridge` (legs whose audio is connected: two-party, or a mixing conference). The call owns
at most one active :class:`Recording`.

Every lifecycle is a transition table (see :mod:`callbridge.domain.fsm`). Methods validate first and
mutate last, and return the :class:`DomainEvent` values that describe the change; a refused command
raises a :class:`DomainError` and leaves the call exactly as it was. The service layer works on a
deep copy and keeps it only once the switch has carried the command out.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from .errors import Conflict, IllegalTransition, Invalid, NotFound
from .events import DomainEvent, EventCategory
from .fsm import Machine

# --------------------------------------------------------------------------- leg lifecycle


class LegState(StrEnum):
    DIALING = "dialing"  # request sent to the party, nothing heard back yet
    RINGING = "ringing"
    ANSWERED = "answered"
    HUNGUP = "hungup"


class LegEvent(StrEnum):
    RING = "ring"
    ANSWER = "answer"
    HANGUP = "hangup"


LEG = Machine[LegState, LegEvent](
    "leg",
    {
        (LegState.DIALING, LegEvent.RING): LegState.RINGING,
        (LegState.DIALING, LegEvent.ANSWER): LegState.ANSWERED,
        (LegState.DIALING, LegEvent.HANGUP): LegState.HUNGUP,
        (LegState.RINGING, LegEvent.ANSWER): LegState.ANSWERED,
        (LegState.RINGING, LegEvent.HANGUP): LegState.HUNGUP,
        (LegState.ANSWERED, LegEvent.HANGUP): LegState.HUNGUP,
    },
    codes={
        (LegState.HUNGUP, LegEvent.HANGUP): "leg_already_hungup",
        (LegState.HUNGUP, LegEvent.ANSWER): "leg_already_hungup",
        (LegState.HUNGUP, LegEvent.RING): "leg_already_hungup",
        (LegState.ANSWERED, LegEvent.ANSWER): "leg_already_answered",
        (LegState.ANSWERED, LegEvent.RING): "leg_already_answered",
    },
)


class HoldState(StrEnum):
    ACTIVE = "active"
    HELD = "held"


class HoldEvent(StrEnum):
    HOLD = "hold"
    UNHOLD = "unhold"


HOLD = Machine[HoldState, HoldEvent](
    "hold",
    {
        (HoldState.ACTIVE, HoldEvent.HOLD): HoldState.HELD,
        (HoldState.HELD, HoldEvent.UNHOLD): HoldState.ACTIVE,
    },
    codes={
        (HoldState.HELD, HoldEvent.HOLD): "leg_already_held",
        (HoldState.ACTIVE, HoldEvent.UNHOLD): "leg_not_held",
    },
)


class MuteState(StrEnum):
    UNMUTED = "unmuted"
    MUTED = "muted"


class MuteEvent(StrEnum):
    MUTE = "mute"
    UNMUTE = "unmute"


MUTE = Machine[MuteState, MuteEvent](
    "mute",
    {
        (MuteState.UNMUTED, MuteEvent.MUTE): MuteState.MUTED,
        (MuteState.MUTED, MuteEvent.UNMUTE): MuteState.UNMUTED,
    },
    codes={
        (MuteState.MUTED, MuteEvent.MUTE): "leg_already_muted",
        (MuteState.UNMUTED, MuteEvent.UNMUTE): "leg_not_muted",
    },
)

# --------------------------------------------------------------------------- copies

_M = TypeVar("_M", bound=BaseModel)
_new = object.__new__
_set = object.__setattr__


def _shallow(model: _M) -> _M:
    """A copy of ``model`` sharing its field values: what ``model_copy()`` does, without its
    generic path (a call's draft copies several models, on every change of every call).

    Only for this module's models: no extra fields, no private attributes (a test pins both).
    """
    new = _new(type(model))
    _set(new, "__dict__", model.__dict__.copy())
    _set(new, "__pydantic_fields_set__", set(model.__pydantic_fields_set__))
    _set(new, "__pydantic_extra__", None)
    _set(new, "__pydantic_private__", None)
    return new


# --------------------------------------------------------------------------- call lifecycle


class CallState(StrEnum):
    SETUP = "setup"  # legs being dialled, nobody reached yet
    RINGING = "ringing"
    QUEUED = "queued"  # waiting in an ACD queue
    ANSWERED = "answered"  # at least two parties have been connected
    ENDED = "ended"


class CallEvent(StrEnum):
    RING = "ring"
    QUEUE = "queue"
    ANSWER = "answer"
    END = "end"


CALL = Machine[CallState, CallEvent](
    "call",
    {
        (CallState.SETUP, CallEvent.RING): CallState.RINGING,
        (CallState.SETUP, CallEvent.QUEUE): CallState.QUEUED,
        (CallState.SETUP, CallEvent.ANSWER): CallState.ANSWERED,
        (CallState.SETUP, CallEvent.END): CallState.ENDED,
        (CallState.RINGING, CallEvent.QUEUE): CallState.QUEUED,
        (CallState.RINGING, CallEvent.ANSWER): CallState.ANSWERED,
        (CallState.RINGING, CallEvent.END): CallState.ENDED,
        (CallState.QUEUED, CallEvent.ANSWER): CallState.ANSWERED,
        (CallState.QUEUED, CallEvent.END): CallState.ENDED,
        (CallState.ANSWERED, CallEvent.QUEUE): CallState.QUEUED,
        (CallState.ANSWERED, CallEvent.END): CallState.ENDED,
    },
    codes={(CallState.ENDED, e): "call_ended" for e in CallEvent},
)

# --------------------------------------------------------------------------- recording


class RecordingState(StrEnum):
    ACTIVE = "active"
    SUPPRESSED = "suppressed"
    STOPPED = "stopped"


class RecordingEvent(StrEnum):
    SUPPRESS = "suppress"
    UNSUPPRESS = "unsuppress"
    STOP = "stop"


RECORDING = Machine[RecordingState, RecordingEvent](
    "recording",
    {
        (RecordingState.ACTIVE, RecordingEvent.SUPPRESS): RecordingState.SUPPRESSED,
        (RecordingState.ACTIVE, RecordingEvent.STOP): RecordingState.STOPPED,
        (RecordingState.SUPPRESSED, RecordingEvent.UNSUPPRESS): RecordingState.ACTIVE,
        (RecordingState.SUPPRESSED, RecordingEvent.STOP): RecordingState.STOPPED,
    },
    codes={
        (RecordingState.SUPPRESSED, RecordingEvent.SUPPRESS): "recording_already_suppressed",
        (RecordingState.ACTIVE, RecordingEvent.UNSUPPRESS): "recording_not_suppressed",
        **{(RecordingState.STOPPED, e): "recording_stopped" for e in RecordingEvent},
    },
)


class SuppressionWindow(BaseModel):
    started_at: datetime
    ended_at: datetime | None = None
    by: str | None = None


class Recording(BaseModel):
    id: str
    state: RecordingState = RecordingState.ACTIVE
    started_at: datetime
    stopped_at: datetime | None = None
    suppressions: list[SuppressionWindow] = Field(default_factory=list)


# --------------------------------------------------------------------------- legs and bridges


class PartyKind(StrEnum):
    EXTENSION = "extension"
    EXTERNAL = "external"


class Direction(StrEnum):
    INBOUND = "inbound"  # the party called us
    OUTBOUND = "outbound"  # we called the party


class HangupCause(StrEnum):
    NORMAL = "normal"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    REJECTED = "rejected"
    FAILED = "failed"
    CANCELLED = "cancelled"
    KILLED = "killed"
    TRANSFERRED = "transferred"
    KICKED = "kicked"
    JOINED = "joined"  # the leg's call was merged into another call
    SHUTDOWN = "shutdown"  # the switch lost the leg (restart)
    UNALLOCATED = "unallocated"  # (#3) an inbound call to a number no tenant routes (SIP 404)


class LegRole(StrEnum):
    ORIGINATOR = "originator"  # the extension rung first by click-to-call
    TARGET = "target"  # whoever the call was for
    CUSTOMER = "customer"  # an inbound caller
    TRANSFER_TARGET = "transfer_target"
    UNPARK_TARGET = "unpark_target"
    CONFERENCE_MEMBER = "conference_member"
    SUPERVISOR = "supervisor"  # dialled in to listen, whisper or barge (see Supervision)


class SupervisionMode(StrEnum):
    """How a supervisor leg takes part in its bridge. It always hears every other party."""

    LISTEN = "listen"  # heard by nobody
    WHISPER = "whisper"  # heard by the supervised agent only
    BARGE = "barge"  # heard by everybody: a normal party


class Supervision(BaseModel):
    """A supervisor leg's mode and the agent leg it supervises; ``active`` once it joined."""

    mode: SupervisionMode
    agent_leg_id: str
    active: bool = False

    def heard_by(self) -> list[str] | None:
        """Who hears the supervisor: ``None`` everybody, else exactly those leg ids."""
        if self.mode is SupervisionMode.LISTEN:
            return []
        if self.mode is SupervisionMode.WHISPER:
            return [self.agent_leg_id]
        return None


class Leg(BaseModel):
    id: str
    kind: PartyKind
    direction: Direction
    number: str
    extension_id: str | None = None
    state: LegState = LegState.DIALING
    hold: HoldState = HoldState.ACTIVE
    mute: MuteState = MuteState.UNMUTED
    bridge_id: str | None = None
    parked_slot: str | None = None
    created_at: datetime
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    cause: HangupCause | None = None
    role: LegRole = LegRole.TARGET
    supervision: Supervision | None = None
    # What the service does when this leg answers: bridge it with ``connect_to`` (or join that
    # bridge), or dial ``then_dial`` (click-to-call: the agent answered, now ring the target).
    connect_to: str | None = None
    then_dial: str | None = None

    @property
    def live(self) -> bool:
        return self.state is not LegState.HUNGUP


class BridgeKind(StrEnum):
    TWO_PARTY = "two_party"
    CONFERENCE = "conference"


class Bridge(BaseModel):
    id: str
    kind: BridgeKind = BridgeKind.TWO_PARTY
    leg_ids: list[str] = Field(default_factory=list)


class CallOrigin(StrEnum):
    ORIGINATE = "originate"  # click-to-call: ring the extension, then the target
    INBOUND = "inbound"  # an external number called in


# --------------------------------------------------------------------------- the call


class Call(BaseModel):
    id: str
    tenant_id: str
    origin: CallOrigin
    from_number: str
    to_number: str
    caller_id: str | None = None
    queue_id: str | None = None
    state: CallState = CallState.SETUP
    legs: dict[str, Leg] = Field(default_factory=dict)
    bridges: dict[str, Bridge] = Field(default_factory=dict)
    recording: Recording | None = None
    created_at: datetime
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    cause: HangupCause | None = None
    seq: int = 0  # the tenant event seq this snapshot reflects (stamped by the service)

    # ----------------------------------------------------------------- copies

    def clone(self) -> Call:
        """A deep copy, for a draft: nothing a change of the copy does reaches this call.

        Copies the mutable parts explicitly (the leg and bridge maps, each leg's supervision,
        each bridge's leg list, the recording and its suppression windows) and shares the rest
        (strings, enums, datetimes: immutable). A few times cheaper than a pydantic round trip
        (``model_validate(model_dump())``) or ``copy.deepcopy``; a test fails when a field is
        added that this does not know to be immutable or copied.
        """
        new = _shallow(self)
        fields = new.__dict__
        legs: dict[str, Leg] = {}
        for key, leg in self.legs.items():
            copied = legs[key] = _shallow(leg)
            if leg.supervision is not None:
                copied.__dict__["supervision"] = _shallow(leg.supervision)
        fields["legs"] = legs
        bridges: dict[str, Bridge] = {}
        for key, bridge in self.bridges.items():
            copied_bridge = bridges[key] = _shallow(bridge)
            copied_bridge.__dict__["leg_ids"] = list(bridge.leg_ids)
        fields["bridges"] = bridges
        if self.recording is not None:
            recording = _shallow(self.recording)
            recording.__dict__["suppressions"] = [_shallow(w) for w in self.recording.suppressions]
            fields["recording"] = recording
        return new

    # ----------------------------------------------------------------- queries

    def leg(self, leg_id: str) -> Leg:
        try:
            return self.legs[leg_id]
        except KeyError:
            raise NotFound("leg", leg_id) from None

    def live_legs(self) -> list[Leg]:
        return [leg for leg in self.legs.values() if leg.live]

    def peers_of(self, leg_id: str) -> list[Leg]:
        """The live legs sharing a bridge with ``leg_id``."""
        leg = self.leg(leg_id)
        if leg.bridge_id is None:
            return []
        bridge = self.bridges[leg.bridge_id]
        return [self.legs[i] for i in bridge.leg_ids if i != leg_id and self.legs[i].live]

    def extension_ids(self) -> list[str]:
        return sorted({leg.extension_id for leg in self.legs.values() if leg.extension_id})

    @property
    def ended(self) -> bool:
        return self.state is CallState.ENDED

    def _ev(self, type_: str, **data: Any) -> DomainEvent:
        # call_event(type_, self.id, **data), without passing ``data`` on as keywords once more
        return DomainEvent(type_, EventCategory.CALL, self.id, data)

    def _live_leg(self, leg_id: str) -> Leg:
        leg = self.leg(leg_id)
        if not leg.live:
            raise IllegalTransition("leg", leg.state, "use", code="leg_already_hungup")
        return leg

    def _answered_leg(self, leg_id: str) -> Leg:
        leg = self._live_leg(leg_id)
        if leg.state is not LegState.ANSWERED:
            raise IllegalTransition("leg", leg.state, "control", code="leg_not_answered")
        return leg

    def require_active(self) -> None:
        if self.ended:
            raise IllegalTransition("call", self.state, "control", code="call_ended")

    # ----------------------------------------------------------------- lifecycle

    def created_event(self) -> DomainEvent:
        return self._ev(
            "call.created",
            origin=self.origin,
            from_number=self.from_number,
            to_number=self.to_number,
            caller_id=self.caller_id,
        )

    def add_leg(self, leg: Leg) -> list[DomainEvent]:
        self.require_active()
        if leg.id in self.legs:
            raise Conflict(f"leg {leg.id} already exists", code="leg_exists", leg_id=leg.id)
        self.legs[leg.id] = leg
        return [
            self._ev(
                "leg.created",
                leg_id=leg.id,
                kind=leg.kind,
                direction=leg.direction,
                number=leg.number,
                extension_id=leg.extension_id,
            )
        ]

    def _move(self, event: CallEvent, now: datetime) -> list[DomainEvent]:
        new = CALL.next(self.state, event)
        old, self.state = self.state, new
        if new is CallState.ANSWERED and self.answered_at is None:
            self.answered_at = now
        return [self._ev("call.state_changed", state=new, previous=old)]

    def leg_ringing(self, leg_id: str) -> list[DomainEvent]:
        leg = self.leg(leg_id)
        leg.state = LEG.next(leg.state, LegEvent.RING)
        events = [self._ev("leg.ringing", leg_id=leg_id, number=leg.number)]
        if CALL.allows(self.state, CallEvent.RING):
            events += self._move(CallEvent.RING, leg.created_at)
        return events

    def leg_answered(self, leg_id: str, now: datetime) -> list[DomainEvent]:
        leg = self.leg(leg_id)
        leg.state = LEG.next(leg.state, LegEvent.ANSWER)
        leg.answered_at = now
        return [self._ev("leg.answered", leg_id=leg_id, number=leg.number)]

    def mark_answered(self, now: datetime) -> list[DomainEvent]:
        """Two parties are talking: the call as a whole is answered."""
        if self.state is CallState.ANSWERED:
            return []
        return self._move(CallEvent.ANSWER, now)

    def mark_queued(self, queue_id: str, now: datetime) -> list[DomainEvent]:
        events = self._move(CallEvent.QUEUE, now)
        self.queue_id = queue_id
        return events

    def leg_hungup(self, leg_id: str, cause: HangupCause, now: datetime) -> list[DomainEvent]:
        leg = self.leg(leg_id)
        leg.state = LEG.next(leg.state, LegEvent.HANGUP)
        leg.cause, leg.ended_at = cause, now
        events = [self._ev("leg.hungup", leg_id=leg_id, number=leg.number, cause=cause)]
        events += self._detach(leg)
        if leg.supervision is not None and leg.supervision.active:
            leg.supervision.active = False
            events.append(self._ev("supervision.ended", leg_id=leg_id, cause=cause))
        return events

    def _detach(self, leg: Leg) -> list[DomainEvent]:
        events: list[DomainEvent] = []
        if leg.parked_slot is not None:
            events.append(self._ev("leg.unparked", leg_id=leg.id, slot=leg.parked_slot))
            leg.parked_slot = None
        if leg.bridge_id is not None:
            events += self.leave_bridge(leg.id)
        return events

    def end(self, cause: HangupCause, now: datetime) -> list[DomainEvent]:
        """End the call. Legs still up must have been hung up by the caller first."""
        self.require_active()
        if self.live_legs():
            raise Conflict("call still has live legs", code="call_has_live_legs")
        events: list[DomainEvent] = []
        if self.recording is not None and self.recording.state is not RecordingState.STOPPED:
            events += self.stop_recording(now)
        events += self._move(CallEvent.END, now)
        self.ended_at, self.cause = now, cause
        events.append(self._ev("call.ended", cause=cause))
        return events

    # ----------------------------------------------------------------- bridges

    def bridge(self, bridge_id: str, leg_ids: list[str], kind: BridgeKind) -> list[DomainEvent]:
        self.require_active()
        if bridge_id in self.bridges:
            raise Conflict(f"bridge {bridge_id} exists", code="bridge_exists")
        if len(set(leg_ids)) != len(leg_ids):
            raise Invalid("a leg cannot be bridged twice", code="leg_duplicated")
        for leg_id in leg_ids:
            leg = self._answered_leg(leg_id)
            if leg.bridge_id is not None:
                raise Conflict(
                    f"leg {leg_id} is already bridged", code="leg_already_bridged", leg_id=leg_id
                )
            if leg.parked_slot is not None:
                raise Conflict(f"leg {leg_id} is parked", code="leg_parked", leg_id=leg_id)
        self.bridges[bridge_id] = Bridge(id=bridge_id, kind=kind, leg_ids=list(leg_ids))
        for leg_id in leg_ids:
            self.legs[leg_id].bridge_id = bridge_id
        return [self._ev("bridge.created", bridge_id=bridge_id, kind=kind, leg_ids=list(leg_ids))]

    def join_bridge(self, bridge_id: str, leg_id: str) -> list[DomainEvent]:
        self.require_active()
        bridge = self.bridges.get(bridge_id)
        if bridge is None:
            raise NotFound("bridge", bridge_id)
        leg = self._answered_leg(leg_id)
        if leg.bridge_id is not None:
            raise Conflict(f"leg {leg_id} is already bridged", code="leg_already_bridged")
        if leg.parked_slot is not None:
            raise Conflict(f"leg {leg_id} is parked", code="leg_parked", leg_id=leg_id)
        bridge.leg_ids.append(leg_id)
        leg.bridge_id = bridge_id
        events = [self._ev("bridge.joined", bridge_id=bridge_id, leg_id=leg_id)]
        if bridge.kind is BridgeKind.TWO_PARTY and len(bridge.leg_ids) > 2:
            bridge.kind = BridgeKind.CONFERENCE
            events.append(self._ev("bridge.became_conference", bridge_id=bridge_id))
        return events

    def leave_bridge(self, leg_id: str) -> list[DomainEvent]:
        leg = self.leg(leg_id)
        if leg.bridge_id is None:
            raise Conflict(f"leg {leg_id} is not bridged", code="leg_not_bridged")
        bridge = self.bridges[leg.bridge_id]
        bridge.leg_ids.remove(leg_id)
        leg.bridge_id = None
        events = [self._ev("bridge.left", bridge_id=bridge.id, leg_id=leg_id)]
        if not bridge.leg_ids:
            del self.bridges[bridge.id]
            events.append(self._ev("bridge.destroyed", bridge_id=bridge.id))
        return events

    # ----------------------------------------------------------------- hold and mute

    def hold(self, leg_id: str) -> list[DomainEvent]:
        self.require_active()
        leg = self._answered_leg(leg_id)
        leg.hold = HOLD.next(leg.hold, HoldEvent.HOLD)
        return [self._ev("leg.held", leg_id=leg_id)]

    def unhold(self, leg_id: str) -> list[DomainEvent]:
        self.require_active()
        leg = self._answered_leg(leg_id)
        leg.hold = HOLD.next(leg.hold, HoldEvent.UNHOLD)
        return [self._ev("leg.unheld", leg_id=leg_id)]

    def mute(self, leg_id: str) -> list[DomainEvent]:
        self.require_active()
        leg = self._answered_leg(leg_id)
        leg.mute = MUTE.next(leg.mute, MuteEvent.MUTE)
        return [self._ev("leg.muted", leg_id=leg_id)]

    def unmute(self, leg_id: str) -> list[DomainEvent]:
        self.require_active()
        leg = self._answered_leg(leg_id)
        leg.mute = MUTE.next(leg.mute, MuteEvent.UNMUTE)
        return [self._ev("leg.unmuted", leg_id=leg_id)]

    # ----------------------------------------------------------------- supervision

    def _supervisor_leg(self, leg_id: str) -> tuple[Leg, Supervision]:
        leg = self._answered_leg(leg_id)
        if leg.supervision is None:
            raise Conflict(f"leg {leg_id} is not a supervisor", code="not_supervisor")
        return leg, leg.supervision

    def supervision_started(self, leg_id: str) -> list[DomainEvent]:
        """The supervisor leg answered and joined the agent's bridge."""
        self.require_active()
        leg, sup = self._supervisor_leg(leg_id)
        if sup.active:
            raise Conflict("the supervision has already started", code="supervision_active")
        sup.active = True
        return [
            self._ev(
                "supervision.started",
                leg_id=leg_id,
                mode=sup.mode,
                supervisor_extension_id=leg.extension_id,
                agent_leg_id=sup.agent_leg_id,
            )
        ]

    def change_supervision(self, leg_id: str, mode: SupervisionMode) -> list[DomainEvent]:
        """Switch a started supervision to ``mode`` (no event if it already is in it)."""
        self.require_active()
        _, sup = self._supervisor_leg(leg_id)
        if not sup.active:
            raise Conflict("the supervisor has not joined yet", code="supervision_not_started")
        if sup.mode is mode:
            return []
        if mode is SupervisionMode.WHISPER and not self.leg(sup.agent_leg_id).live:
            raise Conflict("the supervised agent has left the call", code="not_supervisable")
        previous, sup.mode = sup.mode, mode
        return [
            self._ev(
                "supervision.mode_changed",
                leg_id=leg_id,
                mode=mode,
                previous=previous,
                agent_leg_id=sup.agent_leg_id,
            )
        ]

    # ----------------------------------------------------------------- parking

    def park(self, leg_id: str, slot: str) -> list[DomainEvent]:
        """Move a leg out of its bridge into ``slot`` (slot availability is the lot's business)."""
        self.require_active()
        leg = self._answered_leg(leg_id)
        if leg.parked_slot is not None:
            raise Conflict(
                f"leg {leg_id} is already parked in {leg.parked_slot}",
                code="leg_already_parked",
                slot=leg.parked_slot,
            )
        events: list[DomainEvent] = []
        if leg.bridge_id is not None:
            events += self.leave_bridge(leg_id)
        leg.parked_slot = slot
        events.append(self._ev("leg.parked", leg_id=leg_id, slot=slot))
        return events

    def unpark(self, leg_id: str) -> list[DomainEvent]:
        leg = self._live_leg(leg_id)
        if leg.parked_slot is None:
            raise Conflict(f"leg {leg_id} is not parked", code="leg_not_parked")
        slot, leg.parked_slot = leg.parked_slot, None
        return [self._ev("leg.unparked", leg_id=leg_id, slot=slot)]

    # ----------------------------------------------------------------- recording

    def start_recording(self, recording_id: str, now: datetime) -> list[DomainEvent]:
        self.require_active()
        if self.recording is not None and self.recording.state is not RecordingState.STOPPED:
            raise Conflict("the call is already being recorded", code="recording_active")
        self.recording = Recording(id=recording_id, started_at=now)
        return [self._ev("recording.started", recording_id=recording_id)]

    def _recording(self) -> Recording:
        if self.recording is None:
            raise Invalid("the call is not being recorded", code="recording_not_found")
        return self.recording

    def suppress_recording(self, now: datetime, by: str | None) -> list[DomainEvent]:
        self.require_active()
        rec = self._recording()
        rec.state = RECORDING.next(rec.state, RecordingEvent.SUPPRESS)
        rec.suppressions.append(SuppressionWindow(started_at=now, by=by))
        return [self._ev("recording.suppressed", recording_id=rec.id, by=by)]

    def unsuppress_recording(self, now: datetime, by: str | None) -> list[DomainEvent]:
        self.require_active()
        rec = self._recording()
        rec.state = RECORDING.next(rec.state, RecordingEvent.UNSUPPRESS)
        rec.suppressions[-1].ended_at = now
        return [self._ev("recording.unsuppressed", recording_id=rec.id, by=by)]

    def stop_recording(self, now: datetime) -> list[DomainEvent]:
        rec = self._recording()
        was = rec.state
        rec.state = RECORDING.next(rec.state, RecordingEvent.STOP)
        if was is RecordingState.SUPPRESSED:
            rec.suppressions[-1].ended_at = now
        rec.stopped_at = now
        return [self._ev("recording.stopped", recording_id=rec.id)]

    # ----------------------------------------------------------------- DTMF

    def dtmf_sent(self, leg_id: str, digits: str) -> list[DomainEvent]:
        self.require_active()
        self._answered_leg(leg_id)
        if not digits or any(d not in "0123456789*#ABCD" for d in digits):
            raise Invalid(f"DTMF digits {digits!r} must be 0-9, *, #, A-D", code="dtmf_invalid")
        return [self._ev("dtmf.sent", leg_id=leg_id, digits=digits)]
