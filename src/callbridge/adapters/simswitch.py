"""A deterministic simulated switch: virtual endpoints whose behaviour is scripted per number.

Theory of operation
-------------------
:class:`SimulatedSwitch` implements the :class:`~callbridge.ports.switch.Switch` port without any
SIP or RTP. Every extension and external number is a virtual endpoint; what it does when dialled
(ring, answer, be busy, never answer, reject, fail, hang up later, send DTMF) is set per number
with an :class:`EndpointScript`. A number without a script answers after the switch's
``default_answer_after`` seconds.

All timing goes through the injected :class:`~callbridge.ports.clock.Clock`: with a ``FakeClock``
a test decides exactly when a leg rings, answers or hangs up by advancing time.

Event rules (what the listener receives)
    * Commands from the core never call the listener synchronously: what a dial leads to
      (``RINGING``, ``ANSWERED``, ``HUNGUP`` with cause busy / no_answer / rejected / failed) is
      scheduled on the clock, ``RINGING`` at delay 0, the outcome after ``answer_after`` seconds,
      and ``HUNGUP(no_answer)`` after ``DialRequest.timeout_s`` if nothing else happened first
      (an outcome due at exactly the timeout wins).
    * A command's successful return is its acknowledgement: a ``hangup`` commanded by the core
      produces **no** ``HUNGUP`` event (in particular no ``cancelled`` cause comes back), and an
      ``answer`` commanded by the core produces no ``ANSWERED`` event. Hanging up a leg cancels
      every timer pending for it, so nothing more is ever emitted for it.
    * Only the far end produces events: the party answering, refusing, hanging up
      (``HUNGUP(normal)`` after the script's ``hangup_after``) or sending DTMF.
    * The methods that simulate the far end by hand (:meth:`SimulatedSwitch.inject_incoming`,
      ``remote_answer``, ``remote_hangup``, ``remote_dtmf``, ``remote_hold``, ``remote_resume``,
      ``remote_transfer``) change the state and emit at once.

Incoming calls
    :meth:`SimulatedSwitch.inject_incoming` creates a ringing inbound leg and emits ``INCOMING``.
    The core ``accept``s it into a call, then ``answer``s it (or hangs it up). The caller's script
    (looked up by the *calling* number) is used only for ``hangup_after`` and ``dtmf``, whose timers
    start when the platform answers; its ``behaviour``, ``answer_after`` and ``ring`` are ignored.

Media model
    :meth:`SimulatedSwitch.hears` says what a leg hears: ``{"music"}`` when it is held or has music
    started, otherwise the ids of the other legs in its bridge that are answered, not held, not
    muted and allowed to be heard by it (``set_audibility``: a listening supervisor is heard by
    nobody, a whispering one by its agent only). A leg that is not answered hears nothing.

Strictness
    Commands are checked like a real switch would: unknown legs (``leg_unknown``), hung-up legs
    (``leg_hungup``), unanswered legs (``leg_not_answered``), redundant hold/mute/music/recording
    commands all raise :class:`~callbridge.ports.switch.SwitchError` and change nothing. After
    :meth:`SimulatedSwitch.stop` every pending timer is cancelled and commands raise
    ``switch_stopped`` until :meth:`SimulatedSwitch.start` is called again.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..domain.calls import Direction, HangupCause, LegState
from ..ports.clock import Clock, TimerHandle
from ..ports.switch import (
    DialRequest,
    SwitchError,
    SwitchEvent,
    SwitchEventKind,
    SwitchListener,
)

if TYPE_CHECKING:
    from ..ports.switch import Switch

log = logging.getLogger(__name__)

MUSIC = "music"
"""What :meth:`SimulatedSwitch.hears` reports for a leg hearing music on hold."""

DTMF_DIGITS = frozenset("0123456789*#ABCD")

Behaviour = Literal["answer", "busy", "no_answer", "reject", "fail"]
RecordingStatus = Literal["active", "paused", "stopped"]

_REFUSALS: dict[str, HangupCause] = {
    "busy": HangupCause.BUSY,
    "reject": HangupCause.REJECTED,
    "fail": HangupCause.FAILED,
}


def _check_digits(digits: str) -> str:
    if not digits or any(d not in DTMF_DIGITS for d in digits):
        raise SwitchError(
            f"DTMF digits {digits!r} must be 0-9, *, #, A-D", code="dtmf_invalid", digits=digits
        )
    return digits


# --------------------------------------------------------------------------- public models


class EndpointScript(BaseModel):
    """How a virtual endpoint behaves when dialled (JSON-friendly, immutable).

    ``behaviour``: ``answer``; ``busy`` / ``reject`` / ``fail`` (``HUNGUP`` with cause busy,
    rejected, failed after ``answer_after``); ``no_answer`` (rings until the dial times out).
    ``answer_after``: seconds until the outcome, ``None`` for the switch default. ``ring``: emit
    ``RINGING`` first. ``hangup_after``: the party hangs up that many seconds after answering.
    ``dtmf`` / ``dtmf_after``: digits the party sends that many seconds after answering.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    behaviour: Behaviour = "answer"
    answer_after: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    ring: bool = True
    hangup_after: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    dtmf: str | None = None
    dtmf_after: float = Field(default=0.0, ge=0, allow_inf_nan=False)

    @field_validator("dtmf")
    @classmethod
    def _valid_dtmf(cls, value: str | None) -> str | None:
        if value is not None and (not value or any(d not in DTMF_DIGITS for d in value)):
            raise ValueError("DTMF digits must be 0-9, *, #, A-D")
        return value


class LegSnapshot(BaseModel):
    """A leg as the switch sees it (for assertions, the API and the CLI).

    ``number`` is the far party: the dialled number for outbound legs, the caller for inbound.
    ``answered_at`` / ``ended_at`` are clock monotonic times.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    direction: Direction
    state: LegState
    number: str
    from_number: str
    to_number: str
    call_id: str | None
    tenant_id: str | None
    bridge_id: str | None
    held: bool
    muted: bool
    music: bool
    heard_by: tuple[str, ...] | None = None
    cause: HangupCause | None
    answered_at: float | None
    ended_at: float | None


class BridgeSnapshot(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    mixing: bool
    leg_ids: tuple[str, ...]


class RecordingSnapshot(BaseModel):
    """A recording; ``segments`` as in :meth:`SimulatedSwitch.recording_segments`."""

    model_config = ConfigDict(frozen=True)

    id: str
    call_id: str
    state: RecordingStatus
    segments: tuple[tuple[float, float], ...]


# --------------------------------------------------------------------------- internal state


@dataclass(eq=False, slots=True)
class _Leg:
    id: str
    direction: Direction
    number: str
    from_number: str
    to_number: str
    script: EndpointScript
    call_id: str | None = None
    tenant_id: str | None = None
    state: LegState = LegState.DIALING
    bridge_id: str | None = None
    held: bool = False
    muted: bool = False
    music: bool = False
    heard_by: frozenset[str] | None = None  # None: everybody in its bridge
    cause: HangupCause | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    dtmf_sent: list[str] = field(default_factory=list)
    party_held: bool = False  # the party put the call on hold from its phone
    transfer_to: str | None = None  # its TRANSFER_REQUESTED, until carried out or refused
    transfer_refusals: list[str] = field(default_factory=list)
    timers: list[TimerHandle] = field(default_factory=list)

    @property
    def live(self) -> bool:
        return self.state is not LegState.HUNGUP


@dataclass(eq=False, slots=True)
class _Bridge:
    id: str
    mixing: bool
    leg_ids: list[str] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class _Recording:
    id: str
    call_id: str
    state: RecordingStatus = "active"
    closed: list[tuple[float, float]] = field(default_factory=list)
    open_since: float | None = None


# --------------------------------------------------------------------------- the switch


class SimulatedSwitch:
    """The Switch port, simulated deterministically on a :class:`Clock` (see the module doc)."""

    def __init__(self, clock: Clock, default_answer_after: float = 0.0) -> None:
        if default_answer_after < 0:
            raise ValueError("default_answer_after must be >= 0")
        self._clock = clock
        self._default_answer_after = default_answer_after
        self._listener: SwitchListener | None = None
        self._running = True
        self._scripts: dict[str, EndpointScript] = {}
        self._legs: dict[str, _Leg] = {}
        self._bridges: dict[str, _Bridge] = {}
        self._recordings: dict[str, _Recording] = {}
        self._incoming_seq = itertools.count(1)

    # ----------------------------------------------------------------- scripts

    def set_script(self, number: str, script: EndpointScript) -> None:
        """Script the endpoint ``number`` (replacing any script it had)."""
        if not number:
            raise SwitchError("the number to script is empty", code="number_invalid")
        self._scripts[number] = script
        log.info("sim: script for %s set to %s", number, script.behaviour)

    def clear_script(self, number: str) -> None:
        """Back to the default behaviour for ``number`` (no error if it had no script)."""
        self._scripts.pop(number, None)

    def script_for(self, number: str) -> EndpointScript:
        """The script used for ``number``: its own, or the default (answer)."""
        return self._scripts.get(number) or EndpointScript()

    def scripts(self) -> dict[str, EndpointScript]:
        """The numbers that have a script of their own."""
        return dict(self._scripts)

    # ----------------------------------------------------------------- lifecycle

    def set_listener(self, listener: SwitchListener) -> None:
        self._listener = listener

    async def start(self) -> None:
        self._running = True
        log.info("sim: switch started")

    async def stop(self) -> None:
        self._running = False
        for leg in self._legs.values():
            self._cancel_timers(leg)
        log.info("sim: switch stopped, timers cancelled")

    # ----------------------------------------------------------------- commands: legs

    async def dial(self, request: DialRequest) -> None:
        self._check_running()
        if request.leg_id in self._legs:
            raise SwitchError(
                f"leg {request.leg_id!r} already exists", code="leg_exists", leg_id=request.leg_id
            )
        script = self.script_for(request.number)
        leg = _Leg(
            id=request.leg_id,
            direction=Direction.OUTBOUND,
            number=request.number,
            from_number=request.caller_id,
            to_number=request.number,
            script=script,
            call_id=request.call_id,
            tenant_id=request.tenant_id,
        )
        self._legs[leg.id] = leg
        log.info(
            "sim: dial leg %s (call %s) to %s: %s",
            leg.id,
            leg.call_id,
            leg.number,
            script.behaviour,
        )
        if script.ring:
            self._later(leg, 0.0, lambda: self._on_ring(leg))
        if script.behaviour != "no_answer":
            delay = (
                self._default_answer_after if script.answer_after is None else script.answer_after
            )
            self._later(leg, delay, lambda: self._on_outcome(leg))
        self._later(leg, request.timeout_s, lambda: self._on_timeout(leg))

    async def accept(self, leg_id: str, call_id: str, tenant_id: str) -> None:
        self._check_running()
        leg = self._live(leg_id)
        if leg.direction is not Direction.INBOUND:
            raise SwitchError(
                f"leg {leg_id} is not incoming", code="leg_not_inbound", leg_id=leg_id
            )
        if leg.call_id is not None:
            raise SwitchError(
                f"leg {leg_id} was already accepted into call {leg.call_id}",
                code="leg_already_accepted",
                leg_id=leg_id,
            )
        leg.call_id, leg.tenant_id = call_id, tenant_id
        log.info("sim: incoming leg %s accepted into call %s", leg_id, call_id)

    async def answer(self, leg_id: str) -> None:
        self._check_running()
        leg = self._live(leg_id)
        if leg.direction is not Direction.INBOUND:
            raise SwitchError(
                f"leg {leg_id} is not incoming", code="leg_not_inbound", leg_id=leg_id
            )
        if leg.state is LegState.ANSWERED:
            raise SwitchError(
                f"leg {leg_id} is already answered", code="leg_already_answered", leg_id=leg_id
            )
        if leg.call_id is None:
            raise SwitchError(
                f"leg {leg_id} must be accepted before it is answered",
                code="leg_not_accepted",
                leg_id=leg_id,
            )
        self._set_answered(leg)
        log.info("sim: incoming leg %s (call %s) answered by the platform", leg_id, leg.call_id)

    async def hangup(self, leg_id: str, cause: HangupCause) -> None:
        self._check_running()
        leg = self._live(leg_id)
        self._end(leg, cause)
        log.info("sim: leg %s (call %s) hung up by the core: %s", leg_id, leg.call_id, cause)

    # ----------------------------------------------------------------- commands: bridges

    async def bridge(self, bridge_id: str, leg_ids: Sequence[str], mixing: bool) -> None:
        self._check_running()
        wanted = list(dict.fromkeys(leg_ids))
        if not wanted:
            raise SwitchError("a bridge needs at least one leg", code="bridge_empty")
        for leg_id in wanted:
            leg = self._answered(leg_id)
            if leg.bridge_id is not None and leg.bridge_id != bridge_id:
                raise SwitchError(
                    f"leg {leg_id} is already in bridge {leg.bridge_id}",
                    code="leg_already_bridged",
                    leg_id=leg_id,
                    bridge_id=leg.bridge_id,
                )
        bridge = self._bridges.get(bridge_id)
        if bridge is None:
            bridge = self._bridges[bridge_id] = _Bridge(id=bridge_id, mixing=mixing)
        bridge.mixing = bridge.mixing or mixing
        for leg_id in wanted:
            if leg_id not in bridge.leg_ids:
                bridge.leg_ids.append(leg_id)
                self._legs[leg_id].bridge_id = bridge_id
        if len(bridge.leg_ids) > 2 and not bridge.mixing:
            bridge.mixing = True
            log.info("sim: bridge %s has more than two legs: now mixing", bridge_id)
        log.info("sim: bridge %s now connects %s", bridge_id, ", ".join(bridge.leg_ids))

    async def unbridge(self, bridge_id: str, leg_id: str) -> None:
        self._check_running()
        leg = self._leg(leg_id)
        bridge = self._bridges.get(bridge_id)
        if bridge is None:
            raise SwitchError(
                f"bridge {bridge_id!r} is unknown", code="bridge_unknown", bridge_id=bridge_id
            )
        if leg.bridge_id != bridge_id:
            raise SwitchError(
                f"leg {leg_id} is not in bridge {bridge_id}",
                code="leg_not_in_bridge",
                leg_id=leg_id,
                bridge_id=bridge_id,
            )
        self._leave_bridge(leg)
        log.info("sim: leg %s left bridge %s", leg_id, bridge_id)

    # ----------------------------------------------------------------- commands: audio

    async def hold(self, leg_id: str) -> None:
        self._check_running()
        leg = self._answered(leg_id)
        if leg.held:
            raise SwitchError(f"leg {leg_id} is already held", code="leg_already_held")
        leg.held = True
        log.info("sim: leg %s held", leg_id)

    async def unhold(self, leg_id: str) -> None:
        self._check_running()
        leg = self._answered(leg_id)
        if not leg.held:
            raise SwitchError(f"leg {leg_id} is not held", code="leg_not_held")
        leg.held = False
        log.info("sim: leg %s unheld", leg_id)

    async def mute(self, leg_id: str) -> None:
        self._check_running()
        leg = self._answered(leg_id)
        if leg.muted:
            raise SwitchError(f"leg {leg_id} is already muted", code="leg_already_muted")
        leg.muted = True
        log.info("sim: leg %s muted", leg_id)

    async def unmute(self, leg_id: str) -> None:
        self._check_running()
        leg = self._answered(leg_id)
        if not leg.muted:
            raise SwitchError(f"leg {leg_id} is not muted", code="leg_not_muted")
        leg.muted = False
        log.info("sim: leg %s unmuted", leg_id)

    async def set_audibility(self, leg_id: str, heard_by: Sequence[str] | None) -> None:
        self._check_running()
        leg = self._answered(leg_id)
        leg.heard_by = None if heard_by is None else frozenset(heard_by)
        log.info("sim: leg %s heard by %s", leg_id, "all" if heard_by is None else heard_by)

    async def start_music(self, leg_id: str) -> None:
        self._check_running()
        leg = self._answered(leg_id)
        if leg.music:
            raise SwitchError(f"leg {leg_id} already hears music", code="music_already_playing")
        leg.music = True
        log.info("sim: music started for leg %s", leg_id)

    async def stop_music(self, leg_id: str) -> None:
        self._check_running()
        leg = self._live(leg_id)
        if not leg.music:
            raise SwitchError(f"leg {leg_id} hears no music", code="music_not_playing")
        leg.music = False
        log.info("sim: music stopped for leg %s", leg_id)

    async def send_dtmf(self, leg_id: str, digits: str) -> None:
        self._check_running()
        leg = self._answered(leg_id)
        leg.dtmf_sent.append(_check_digits(digits))
        log.info("sim: %d DTMF digit(s) sent to leg %s", len(digits), leg_id)

    async def refuse_transfer(self, leg_id: str, code: str) -> None:
        self._check_running()
        leg = self._answered(leg_id)
        if leg.transfer_to is None:
            raise SwitchError(f"leg {leg_id} asked for no transfer", code="no_transfer_requested")
        leg.transfer_to = None
        leg.transfer_refusals.append(code)
        log.info("sim: transfer asked by leg %s refused: %s", leg_id, code)

    # ----------------------------------------------------------------- commands: recording

    async def record_start(self, recording_id: str, call_id: str) -> None:
        self._check_running()
        if recording_id in self._recordings:
            raise SwitchError(
                f"recording {recording_id!r} already exists",
                code="recording_exists",
                recording_id=recording_id,
            )
        if not any(leg.live and leg.call_id == call_id for leg in self._legs.values()):
            raise SwitchError(
                f"call {call_id!r} has no live leg to record", code="call_unknown", call_id=call_id
            )
        for rec in self._recordings.values():
            if rec.call_id == call_id and rec.state != "stopped":
                raise SwitchError(
                    f"call {call_id} is already recorded by {rec.id}",
                    code="recording_active",
                    recording_id=rec.id,
                )
        self._recordings[recording_id] = _Recording(
            id=recording_id, call_id=call_id, open_since=self._clock.monotonic()
        )
        log.info("sim: recording %s of call %s started", recording_id, call_id)

    async def record_pause(self, recording_id: str) -> None:
        self._check_running()
        rec = self._recording(recording_id)
        if rec.state == "paused":
            raise SwitchError(
                f"recording {recording_id} is already paused", code="recording_already_paused"
            )
        self._close_segment(rec)
        rec.state = "paused"
        log.info("sim: recording %s paused", recording_id)

    async def record_resume(self, recording_id: str) -> None:
        self._check_running()
        rec = self._recording(recording_id)
        if rec.state != "paused":
            raise SwitchError(
                f"recording {recording_id} is not paused", code="recording_not_paused"
            )
        rec.state, rec.open_since = "active", self._clock.monotonic()
        log.info("sim: recording %s resumed", recording_id)

    async def record_stop(self, recording_id: str) -> None:
        self._check_running()
        rec = self._recording(recording_id)
        self._close_segment(rec)
        rec.state = "stopped"
        log.info("sim: recording %s stopped", recording_id)

    # ----------------------------------------------------------------- the far end, by hand

    def inject_incoming(self, from_number: str, to_number: str) -> str:
        """A customer calls ``to_number`` from ``from_number``: emit INCOMING, return the leg id."""
        self._check_running()
        leg_id = f"sim-in-{next(self._incoming_seq)}"
        while leg_id in self._legs:
            leg_id = f"sim-in-{next(self._incoming_seq)}"
        leg = _Leg(
            id=leg_id,
            direction=Direction.INBOUND,
            number=from_number,
            from_number=from_number,
            to_number=to_number,
            script=self.script_for(from_number),
            state=LegState.RINGING,
        )
        self._legs[leg_id] = leg
        log.info("sim: incoming leg %s from %s to %s", leg_id, from_number, to_number)
        self._emit(
            SwitchEvent(
                SwitchEventKind.INCOMING, leg_id, from_number=from_number, to_number=to_number
            )
        )
        return leg_id

    def remote_answer(self, leg_id: str) -> None:
        """The dialled party answers now (pending ring / outcome / timeout timers are dropped)."""
        self._check_running()
        leg = self._live(leg_id)
        if leg.direction is not Direction.OUTBOUND:
            raise SwitchError(
                f"leg {leg_id} is incoming: the platform answers it",
                code="leg_not_outbound",
                leg_id=leg_id,
            )
        if leg.state is LegState.ANSWERED:
            raise SwitchError(
                f"leg {leg_id} is already answered", code="leg_already_answered", leg_id=leg_id
            )
        self._party_answers(leg)

    def remote_hangup(self, leg_id: str, cause: HangupCause = HangupCause.NORMAL) -> None:
        """The far end hangs up now: emit ``HUNGUP(cause)``."""
        self._check_running()
        self._party_hangs_up(self._live(leg_id), cause)

    def remote_dtmf(self, leg_id: str, digits: str) -> None:
        """The far end presses ``digits`` now: emit ``DTMF``."""
        self._check_running()
        leg = self._answered(leg_id)
        self._party_sends_dtmf(leg, _check_digits(digits))

    def remote_hold(self, leg_id: str) -> None:
        """The party puts the call on hold from its phone now: emit ``HELD``."""
        self._check_running()
        leg = self._answered(leg_id)
        if leg.party_held:
            raise SwitchError(f"leg {leg_id} is already on hold", code="leg_already_held")
        leg.party_held = True
        self._emit(SwitchEvent(SwitchEventKind.HELD, leg.id))

    def remote_resume(self, leg_id: str) -> None:
        """The party takes the call off hold now: emit ``RESUMED``."""
        self._check_running()
        leg = self._answered(leg_id)
        if not leg.party_held:
            raise SwitchError(f"leg {leg_id} is not on hold", code="leg_not_held")
        leg.party_held = False
        self._emit(SwitchEvent(SwitchEventKind.RESUMED, leg.id))

    def remote_transfer(self, leg_id: str, to_number: str) -> None:
        """The party presses blind transfer to ``to_number`` (a SIP REFER): emit
        ``TRANSFER_REQUESTED``. The core answers with ``hangup(transferred)`` or
        :meth:`refuse_transfer` (see :meth:`transfer_refusals`)."""
        self._check_running()
        leg = self._answered(leg_id)
        leg.transfer_to = to_number
        self._emit(SwitchEvent(SwitchEventKind.TRANSFER_REQUESTED, leg.id, to_number=to_number))

    # ----------------------------------------------------------------- observation

    def transfer_refusals(self, leg_id: str) -> list[str]:
        """The codes :meth:`refuse_transfer` was called with for the leg, oldest first."""
        return list(self._leg(leg_id).transfer_refusals)

    def hears(self, leg_id: str) -> frozenset[str]:
        """What the leg hears: ``{"music"}``, or the ids of the legs whose audio reaches it."""
        leg = self._leg(leg_id)
        if leg.state is not LegState.ANSWERED:
            return frozenset()
        if leg.held or leg.music:
            return frozenset({MUSIC})
        if leg.bridge_id is None:
            return frozenset()
        others = (self._legs[i] for i in self._bridges[leg.bridge_id].leg_ids if i != leg_id)
        return frozenset(
            o.id
            for o in others
            if self._audible(o) and (o.heard_by is None or leg_id in o.heard_by)
        )

    def legs(self) -> dict[str, LegSnapshot]:
        return {leg_id: self._snapshot(leg) for leg_id, leg in self._legs.items()}

    def leg_state(self, leg_id: str) -> LegSnapshot:
        return self._snapshot(self._leg(leg_id))

    def bridges(self) -> dict[str, BridgeSnapshot]:
        return {
            b.id: BridgeSnapshot(id=b.id, mixing=b.mixing, leg_ids=tuple(b.leg_ids))
            for b in self._bridges.values()
        }

    def dtmf_sent(self, leg_id: str) -> list[str]:
        """The digit strings sent to the leg with ``send_dtmf``, one entry per command."""
        return list(self._leg(leg_id).dtmf_sent)

    def recording_segments(self, recording_id: str) -> list[tuple[float, float]]:
        """The recorded stretches (monotonic start, end); a running stretch ends at "now"."""
        rec = self._recording_any(recording_id)
        segments = list(rec.closed)
        if rec.open_since is not None:
            segments.append((rec.open_since, self._clock.monotonic()))
        return segments

    def recording(self, recording_id: str) -> RecordingSnapshot:
        rec = self._recording_any(recording_id)
        return RecordingSnapshot(
            id=rec.id,
            call_id=rec.call_id,
            state=rec.state,
            segments=tuple(self.recording_segments(recording_id)),
        )

    @property
    def pending_timers(self) -> int:
        """How many leg timers are scheduled and not yet fired or cancelled."""
        return sum(len(leg.timers) for leg in self._legs.values())

    # ----------------------------------------------------------------- timer callbacks

    def _on_ring(self, leg: _Leg) -> None:
        if leg.state is LegState.DIALING:
            leg.state = LegState.RINGING
            log.info("sim: leg %s (call %s) ringing", leg.id, leg.call_id)
            self._emit(SwitchEvent(SwitchEventKind.RINGING, leg.id))

    def _on_outcome(self, leg: _Leg) -> None:
        if leg.state not in (LegState.DIALING, LegState.RINGING):
            return
        refusal = _REFUSALS.get(leg.script.behaviour)
        if refusal is None:
            self._party_answers(leg)
        else:
            self._party_hangs_up(leg, refusal)

    def _on_timeout(self, leg: _Leg) -> None:
        if leg.state in (LegState.DIALING, LegState.RINGING):
            self._party_hangs_up(leg, HangupCause.NO_ANSWER)

    # ----------------------------------------------------------------- far-end happenings

    def _party_answers(self, leg: _Leg) -> None:
        self._set_answered(leg)
        log.info("sim: leg %s (call %s) answered by %s", leg.id, leg.call_id, leg.number)
        self._emit(SwitchEvent(SwitchEventKind.ANSWERED, leg.id))

    def _party_hangs_up(self, leg: _Leg, cause: HangupCause) -> None:
        self._end(leg, cause)
        log.info("sim: leg %s (call %s) hung up by the party: %s", leg.id, leg.call_id, cause)
        self._emit(SwitchEvent(SwitchEventKind.HUNGUP, leg.id, cause=cause))

    def _party_sends_dtmf(self, leg: _Leg, digits: str) -> None:
        log.info("sim: leg %s (call %s) sent %d DTMF digit(s)", leg.id, leg.call_id, len(digits))
        self._emit(SwitchEvent(SwitchEventKind.DTMF, leg.id, digits=digits))

    # ----------------------------------------------------------------- helpers

    def _set_answered(self, leg: _Leg) -> None:
        """Answer the leg and start the party's own timers (hang up, DTMF) from now."""
        self._cancel_timers(leg)
        leg.state, leg.answered_at = LegState.ANSWERED, self._clock.monotonic()
        script = leg.script
        if script.dtmf is not None:
            digits = script.dtmf
            self._later(leg, script.dtmf_after, lambda: self._party_sends_dtmf(leg, digits))
        if script.hangup_after is not None:
            self._later(
                leg, script.hangup_after, lambda: self._party_hangs_up(leg, HangupCause.NORMAL)
            )

    def _end(self, leg: _Leg, cause: HangupCause) -> None:
        self._cancel_timers(leg)
        if leg.bridge_id is not None:
            self._leave_bridge(leg)
        leg.state, leg.cause, leg.ended_at = LegState.HUNGUP, cause, self._clock.monotonic()
        leg.music = False

    def _leave_bridge(self, leg: _Leg) -> None:
        assert leg.bridge_id is not None
        bridge = self._bridges[leg.bridge_id]
        bridge.leg_ids.remove(leg.id)
        leg.bridge_id = None
        if not bridge.leg_ids:
            del self._bridges[bridge.id]
            log.info("sim: bridge %s is empty: destroyed", bridge.id)

    def _later(self, leg: _Leg, delay: float, action: Callable[[], None]) -> None:
        handle: TimerHandle | None = None

        def fire() -> None:
            if handle in leg.timers:
                leg.timers.remove(handle)
            action()

        handle = self._clock.call_later(delay, fire)
        leg.timers.append(handle)

    @staticmethod
    def _cancel_timers(leg: _Leg) -> None:
        timers, leg.timers = leg.timers, []
        for timer in timers:
            timer.cancel()

    def _emit(self, event: SwitchEvent) -> None:
        if self._listener is None:
            log.info("sim: no listener, %s event for leg %s dropped", event.kind, event.leg_id)
            return
        self._listener(event)

    def _check_running(self) -> None:
        if not self._running:
            raise SwitchError("the switch is stopped", code="switch_stopped")

    @staticmethod
    def _audible(leg: _Leg) -> bool:
        return leg.state is LegState.ANSWERED and not leg.held and not leg.muted

    def _leg(self, leg_id: str) -> _Leg:
        try:
            return self._legs[leg_id]
        except KeyError:
            raise SwitchError(
                f"leg {leg_id!r} is unknown", code="leg_unknown", leg_id=leg_id
            ) from None

    def _live(self, leg_id: str) -> _Leg:
        leg = self._leg(leg_id)
        if not leg.live:
            raise SwitchError(f"leg {leg_id} has hung up", code="leg_hungup", leg_id=leg_id)
        return leg

    def _answered(self, leg_id: str) -> _Leg:
        leg = self._live(leg_id)
        if leg.state is not LegState.ANSWERED:
            raise SwitchError(
                f"leg {leg_id} is not answered ({leg.state})",
                code="leg_not_answered",
                leg_id=leg_id,
            )
        return leg

    def _recording_any(self, recording_id: str) -> _Recording:
        try:
            return self._recordings[recording_id]
        except KeyError:
            raise SwitchError(
                f"recording {recording_id!r} is unknown",
                code="recording_unknown",
                recording_id=recording_id,
            ) from None

    def _recording(self, recording_id: str) -> _Recording:
        """A recording that can still be commanded (not stopped)."""
        rec = self._recording_any(recording_id)
        if rec.state == "stopped":
            raise SwitchError(
                f"recording {recording_id} is stopped",
                code="recording_stopped",
                recording_id=recording_id,
            )
        return rec

    def _close_segment(self, rec: _Recording) -> None:
        if rec.open_since is not None:
            rec.closed.append((rec.open_since, self._clock.monotonic()))
            rec.open_since = None

    @staticmethod
    def _snapshot(leg: _Leg) -> LegSnapshot:
        return LegSnapshot(
            id=leg.id,
            direction=leg.direction,
            state=leg.state,
            number=leg.number,
            from_number=leg.from_number,
            to_number=leg.to_number,
            call_id=leg.call_id,
            tenant_id=leg.tenant_id,
            bridge_id=leg.bridge_id,
            held=leg.held,
            muted=leg.muted,
            music=leg.music,
            heard_by=None if leg.heard_by is None else tuple(sorted(leg.heard_by)),
            cause=leg.cause,
            answered_at=leg.answered_at,
            ended_at=leg.ended_at,
        )


if TYPE_CHECKING:

    def _conforms(switch: SimulatedSwitch) -> Switch:
        """Type-checks that SimulatedSwitch implements the Switch port."""
        return switch
