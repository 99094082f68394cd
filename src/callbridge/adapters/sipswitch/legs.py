"""What the SIP switch keeps per leg (one SIP dialog + one media-engine leg)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from aiosipua.message import SipRequest, SipResponse

from ...media.port import Codec, MediaAddress
from ...ports.clock import TimerHandle
from ...sip.client import ClientTransaction
from ...sip.dialogs import Dialog, uri_of
from ...sip.sdp import Direction, RemoteMedia, SdpSession
from ...sip.source import Source

__all__ = ["Fork", "HoldReinvite", "Leg", "LegState", "Refer", "user_part"]


class HoldReinvite(StrEnum):
    """Which legs a hold by the core re-INVITEs with ``a=sendonly`` (``sendrecv`` on unhold)."""

    PHONES = "phones"  # legs of registered phones only (default); trunks just hear the music
    ALL = "all"  # every answered leg
    OFF = "off"  # none: the hold happens in the media only


class LegState(StrEnum):
    RINGING = "ringing"
    ANSWERED = "answered"
    ENDED = "ended"


@dataclass(eq=False)
class Refer:
    """An accepted REFER (RFC 3515): its implicit subscription until the final NOTIFY."""

    to_number: str
    notified_final: bool = False


@dataclass(eq=False)
class Fork:
    """One INVITE of an outgoing leg: one per registered binding (parallel forking), or the
    trunk's. The first 2xx wins; the others are CANCELled (a late 2xx is ACKed and BYEd)."""

    invite: SipRequest
    destination: Source
    transaction: ClientTransaction | None = None
    status: int | None = None  # the final response's, once it came


@dataclass(eq=False)
class Leg:
    leg_id: str
    outgoing: bool
    session: SdpSession
    call_id: str | None = None
    tenant_id: str | None = None
    state: LegState = LegState.RINGING
    destination: Source | None = None
    dialog: Dialog | None = None
    address: MediaAddress | None = None
    phone: bool = False  # a registered phone's leg: hold re-INVITEs go to phones only
    incoming_key: tuple[str, str] | None = None  # (Call-ID, From tag) in SipSwitch._incoming
    # outgoing
    forks: list[Fork] = field(default_factory=list)
    winner: Fork | None = None
    ring_timer: TimerHandle | None = None
    ring_timed_out: bool = False
    provisional_seen: bool = False
    ringing_sent: bool = False
    auth_tried: bool = False
    # incoming
    request: SipRequest | None = None
    offer: RemoteMedia | None = None
    # our 2xx to an INVITE (the initial one or a re-INVITE), resent until its ACK
    ok: SipResponse | None = None
    ok_request: SipRequest | None = None
    ok_timer: TimerHandle | None = None
    ok_interval: float = 0.0
    ok_deadline: float = 0.0
    # in-dialog offer/answer
    remote: tuple[str, int, Codec, int | None] | None = None  # the last set_remote
    peer_hold: bool = False  # the peer's last offer was sendonly/inactive/c=0.0.0.0
    wanted: Direction = "sendrecv"  # ours: sendonly while the core holds the leg
    sent: Direction = "sendrecv"  # ours, as the last completed offer/answer said it
    reinvite_out: bool = False  # a re-INVITE of ours is pending
    reinvite_in: bool = False  # one of theirs is being answered or awaits its ACK
    late_offer: bool = False  # our 2xx to their re-INVITE carried the offer; the ACK answers
    retry_timer: TimerHandle | None = None  # 491: our re-INVITE is retried (RFC 3261 §14.1)
    refer: Refer | None = None
    timers: list[TimerHandle] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        return self.state is LegState.ENDED

    def cancel_timers(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()
        for pending in (self.ring_timer, self.ok_timer, self.retry_timer):
            if pending is not None:
                pending.cancel()
        self.ring_timer = self.ok_timer = self.retry_timer = None


def user_part(value: str) -> str:
    """The user part of a From/To/Refer-To value (``"A" <sip:1001@host>;tag=x`` -> ``1001``)."""
    uri = uri_of(value)
    scheme, _, rest = uri.partition(":")
    if not rest:
        rest = scheme
    user, at, _ = rest.partition("@")
    return user.split(";")[0] if at else ""
