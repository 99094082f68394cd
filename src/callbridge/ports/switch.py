"""The switch port: what a telephony switch (simulated or real SIP/RTP) must do for the core.

The service layer commands the switch with ``async`` methods that return once the switch has
accepted the command (or raise :class:`SwitchError`). Asynchronous happenings (a leg rings, answers,
fails, hangs up, sends DTMF, a new call comes in) are reported as :class:`SwitchEvent` values to the
single listener set with :meth:`Switch.set_listener`; the listener must not block.

Leg ids are chosen by the core for legs it dials (``DialRequest.leg_id``) and by the switch for
incoming calls (``SwitchEvent.leg_id`` of an ``INCOMING`` event), which the core then ``accept``s
into a call or ``reject``s.

A party can also act from its phone: ``HELD``/``RESUMED`` (it put the call on hold or resumed;
the core holds/unholds the other parties of its bridge) and ``TRANSFER_REQUESTED`` (a blind
transfer of its peer to ``to_number``; the core transfers through its normal path and hangs the
requesting leg up with cause ``transferred``, or calls :meth:`Switch.refuse_transfer`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from ..domain.calls import HangupCause
from ..domain.errors import DomainError


class SwitchError(DomainError):
    code = "switch_error"


class SwitchEventKind(StrEnum):
    INCOMING = "incoming"  # a new call from outside: from_number -> to_number
    RINGING = "ringing"
    ANSWERED = "answered"
    HUNGUP = "hungup"  # the party ended, or the attempt failed (see cause)
    DTMF = "dtmf"  # digits received from the party
    HELD = "held"  # the party put the call on hold from its phone (SIP: sendonly/inactive)
    RESUMED = "resumed"  # ... and took it off hold again
    TRANSFER_REQUESTED = "transfer_requested"  # the party asks to transfer its peer: to_number


@dataclass(frozen=True, slots=True)
class SwitchEvent:
    kind: SwitchEventKind
    leg_id: str
    cause: HangupCause | None = None
    digits: str | None = None
    from_number: str | None = None
    to_number: str | None = None


@dataclass(frozen=True, slots=True)
class DialRequest:
    """Dial one party. ``number`` is an extension number or an external number."""

    leg_id: str
    call_id: str
    tenant_id: str
    number: str
    external: bool
    caller_id: str
    timeout_s: float = 30.0


SwitchListener = Callable[[SwitchEvent], None]


class Switch(Protocol):
    def set_listener(self, listener: SwitchListener) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def dial(self, request: DialRequest) -> None: ...

    async def accept(self, leg_id: str, call_id: str, tenant_id: str) -> None:
        """Take an incoming leg into a call (it keeps ringing until answered or hung up)."""
        ...

    async def answer(self, leg_id: str) -> None:
        """Answer an incoming leg on behalf of the platform (queues, IVR)."""
        ...

    async def hangup(self, leg_id: str, cause: HangupCause) -> None: ...

    async def bridge(self, bridge_id: str, leg_ids: Sequence[str], mixing: bool) -> None:
        """Connect legs' audio. Called again with more legs to extend an existing bridge."""
        ...

    async def unbridge(self, bridge_id: str, leg_id: str) -> None: ...

    async def hold(self, leg_id: str) -> None:
        """The leg hears music; its own audio no longer reaches its bridge."""
        ...

    async def unhold(self, leg_id: str) -> None: ...

    async def mute(self, leg_id: str) -> None:
        """The leg's audio no longer reaches the others; it still hears them."""
        ...

    async def unmute(self, leg_id: str) -> None: ...

    async def set_audibility(self, leg_id: str, heard_by: Sequence[str] | None) -> None:
        """Who in the leg's bridge hears it (supervision): ``None`` everybody (the default),
        else only the listed legs (``[]``: nobody -- listen; ``[agent]``: whisper). The leg
        itself still hears everybody. The setting stays with the leg across bridges."""
        ...

    async def start_music(self, leg_id: str) -> None:
        """Music to a leg outside any bridge (parked, queued)."""
        ...

    async def stop_music(self, leg_id: str) -> None: ...

    async def record_start(self, recording_id: str, call_id: str) -> None: ...

    async def record_pause(self, recording_id: str) -> None: ...

    async def record_resume(self, recording_id: str) -> None: ...

    async def record_stop(self, recording_id: str) -> None: ...

    async def send_dtmf(self, leg_id: str, digits: str) -> None: ...

    async def refuse_transfer(self, leg_id: str, code: str) -> None:
        """The core did not carry out the leg's ``TRANSFER_REQUESTED`` (``code``: the domain
        error's code); the leg stays in its call. A transfer that *is* carried out ends with
        ``hangup(leg_id, HangupCause.TRANSFERRED)`` instead."""
        ...


@runtime_checkable
class ScriptableSwitch(Protocol):
    """A switch whose endpoints can be scripted: the simulated switch."""

    def set_script(self, number: str, script: Any) -> None: ...

    def clear_script(self, number: str) -> None: ...

    def scripts(self) -> Mapping[str, Any]: ...

    def inject_incoming(self, from_number: str, to_number: str) -> str: ...
