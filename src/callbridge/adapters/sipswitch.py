"""The SIP switch: a B2BUA implementing :class:`~callbridge.ports.switch.Switch` over real SIP/RTP.

Theory of operation
-------------------
Every leg is one SIP dialog plus one media-engine leg (``media.allocate(leg_id)``); the engine
relays, mixes, plays music and records, so ``bridge``/``hold``/``mute``/``music``/``record``/
``send_dtmf`` map 1:1 onto :class:`~callbridge.media.port.MediaEngine` calls.

Outgoing legs (:meth:`SipSwitch.dial`)
    An extension number goes to the live registrar bindings of the extension's SIP username
    (``username_for(tenant_id, number)``): the INVITE's Request-URI is the binding's contact and it
    is sent to ``binding.source`` (the address the REGISTER came from, which is right behind NAT),
    over that transport. Only the most recently refreshed binding is called (no forking yet). An
    external number goes to ``trunk`` (``sip:<number>@<trunk host:port>``). The INVITE carries our
    SDP offer for the leg's media address. ``180``/``183`` -> ``RINGING`` (once); ``2xx`` -> ACK,
    the dialog is confirmed, ``media.set_remote`` from the answer, ``ANSWERED``; a final ``>= 300``
    -> ``HUNGUP`` with :func:`~callbridge.sip.causes.cause_of_response` (a 408/503 without any
    provisional before it counts as synthetic: ``failed``). The ring timer
    (``DialRequest.timeout_s``) CANCELs the INVITE and the 487 becomes ``HUNGUP(no_answer)``; a 2xx
    that crosses the CANCEL is ACKed and BYEd. No usable target (no binding, no trunk, unknown
    username) -> ``HUNGUP(failed)``, scheduled on the clock at delay 0 like the simulated switch.

Incoming legs (INVITE handler)
    ``100 Trying`` at once; the SDP offer is read (an unreadable one gets 400/488, no common
    codec 488, no SDP at all 488: late offers are not supported yet), then ``INCOMING`` is emitted
    with the user parts of ``From``/``To``. :meth:`SipSwitch.accept` sends ``180``;
    :meth:`SipSwitch.answer` sends ``200`` with our SDP answer and confirms the dialog. Over
    UDP the 200 is retransmitted (T1 doubling up to T2) until the ACK arrives (RFC 3261
    §13.3.1.4); without an ACK after 64*T1 the leg is BYEd and ``HUNGUP(failed)`` is
    emitted. A CANCEL before the answer gets 200, the INVITE 487 and the core
    ``HUNGUP(cancelled)``.

Far-end hangups
    A BYE in a dialog gets 200 and becomes ``HUNGUP`` with the cause of its ``Reason`` header
    (:func:`~callbridge.sip.causes.cause_of_reason`), ``normal`` without one.

Event rules (the same as :mod:`callbridge.adapters.simswitch`)
    Commands never call the listener synchronously; a ``hangup`` or ``answer`` commanded by the
    core produces no event back; after a leg is hung up nothing more is emitted for it. The core's
    ``hangup`` sends BYE (confirmed, with a Q.850 ``Reason``), CANCEL (outgoing, ringing) or the
    final response of :func:`~callbridge.sip.causes.response_for_cause` (incoming, unanswered).

Not in this slice: re-INVITEs from peers (answered 488; a hold from a phone is not followed),
sending re-INVITEs for hold, digest retry towards the trunk (401/407 -> ``rejected``), forking
to several bindings, REFER, PRACK/100rel, and routing incoming trunk calls to a tenant (the
``INCOMING`` event carries the numbers; the core routes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from aiosipua.message import SipRequest, SipResponse

from ..domain.calls import HangupCause
from ..media.port import MediaAddress, MediaEngine, MediaError
from ..ports.clock import Clock, TimerHandle
from ..ports.switch import (
    DialRequest,
    SwitchError,
    SwitchEvent,
    SwitchEventKind,
    SwitchListener,
)
from ..sip.causes import cause_of_reason, cause_of_response, reason_header, response_for_cause
from ..sip.client import ClientTransaction, SipClient, build_ack_for_2xx
from ..sip.dialogs import Dialog, DialogKey, DialogState, build_invite, incoming_key, uri_of
from ..sip.endpoint import SipEndpoint
from ..sip.registrar import Registrar
from ..sip.responses import header_tag, make_response, new_tag
from ..sip.sdp import RemoteMedia, SdpError, SdpSession, choose, parse_remote
from ..sip.source import Source

__all__ = ["SipSwitch", "UsernameFor", "user_part"]

log = logging.getLogger(__name__)

UsernameFor = Callable[[str, str], str | None]
"""``username_for(tenant_id, extension_number)``: the extension's SIP username, or None."""

_BYE_WAIT_S = 2.0  # how long stop() waits for the BYEs' responses


class _State(StrEnum):
    RINGING = "ringing"
    ANSWERED = "answered"
    ENDED = "ended"


@dataclass(eq=False)
class _Leg:
    leg_id: str
    outgoing: bool
    session: SdpSession
    call_id: str | None = None
    tenant_id: str | None = None
    state: _State = _State.RINGING
    destination: Source | None = None
    dialog: Dialog | None = None
    address: MediaAddress | None = None
    # outgoing
    invite: SipRequest | None = None
    transaction: ClientTransaction | None = None
    ring_timer: TimerHandle | None = None
    ring_timed_out: bool = False
    provisional_seen: bool = False
    ringing_sent: bool = False
    # incoming
    request: SipRequest | None = None
    incoming_key: tuple[str, str] | None = None  # (call-id, From tag) in SipSwitch._incoming
    offer: RemoteMedia | None = None
    ok: SipResponse | None = None
    ok_timer: TimerHandle | None = None
    ok_interval: float = 0.0
    ok_deadline: float = 0.0
    timers: list[TimerHandle] = field(default_factory=list)


def _ended(leg: _Leg) -> bool:
    return leg.state is _State.ENDED


def user_part(value: str) -> str:
    """The user part of a From/To header value (``"A" <sip:1001@host>;tag=x`` -> ``1001``)."""
    uri = uri_of(value)
    scheme, _, rest = uri.partition(":")
    if not rest:
        rest = scheme
    user, at, _ = rest.partition("@")
    return user.split(";")[0] if at else ""


class SipSwitch:
    """A B2BUA on :class:`SipEndpoint` + :class:`SipClient` + a :class:`MediaEngine`.

    ``recordings_dir`` is where ``record_start`` writes ``<recording_id>.wav`` (recording is
    refused without it).
    """

    def __init__(
        self,
        endpoint: SipEndpoint,
        client: SipClient,
        media: MediaEngine,
        registrar: Registrar,
        clock: Clock,
        *,
        trunk: Source | None,
        username_for: UsernameFor,
        recordings_dir: Path | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.client = client
        self.media = media
        self.registrar = registrar
        self.clock = clock
        self.trunk = trunk
        self.username_for = username_for
        self.recordings_dir = recordings_dir
        self._listener: SwitchListener | None = None
        self._legs: dict[str, _Leg] = {}
        self._by_dialog: dict[DialogKey, _Leg] = {}
        self._incoming: dict[tuple[str, str], _Leg] = {}  # (call-id, From tag) until answered
        self._recordings: dict[str, list[str]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._running = False

    # --- lifecycle -----------------------------------------------------------------------------

    def set_listener(self, listener: SwitchListener) -> None:
        self._listener = listener

    async def start(self) -> None:
        if self._running:
            return
        self._running = True
        self.media.on_dtmf = self._on_dtmf
        self.endpoint.register("INVITE", self._on_invite)
        self.endpoint.register("ACK", self._on_ack)
        self.endpoint.register("BYE", self._on_bye)
        self.endpoint.register("CANCEL", self._on_cancel)

    async def stop(self) -> None:
        """BYE every confirmed dialog, CANCEL/refuse ringing ones, release all media."""
        if not self._running:
            return
        self._running = False
        for method in ("INVITE", "ACK", "BYE", "CANCEL"):
            self.endpoint.unregister(method)
        if self.media.on_dtmf == self._on_dtmf:
            self.media.on_dtmf = None
        finals: list[Awaitable[Any]] = []
        for leg in list(self._legs.values()):
            pending = await self._end(leg, HangupCause.SHUTDOWN)
            if pending is not None:
                finals.append(pending)
        if finals:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_BYE_WAIT_S):
                    await asyncio.gather(*finals, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._legs.clear()
        self._by_dialog.clear()
        self._incoming.clear()

    # --- helpers -------------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("sip switch task failed", exc_info=task.exception())

    def _emit(self, event: SwitchEvent) -> None:
        if self._listener is None:
            return
        try:
            self._listener(event)
        except Exception:
            log.exception("switch listener failed on %s", event)

    def _emit_later(self, leg: _Leg, event: SwitchEvent) -> None:
        def fire() -> None:
            if self._legs.get(leg.leg_id) is leg:
                if event.kind is SwitchEventKind.HUNGUP:
                    self._forget(leg)
                self._emit(event)

        leg.timers.append(self.clock.call_later(0, fire))

    def _check_running(self) -> None:
        if not self._running:
            raise SwitchError("the SIP switch is not running", code="switch_stopped")

    def _leg(self, leg_id: str) -> _Leg:
        self._check_running()
        leg = self._legs.get(leg_id)
        if leg is None or leg.state is _State.ENDED:
            raise SwitchError(f"no such leg: {leg_id}", code="leg_unknown")
        return leg

    def _contact(self, transport: str) -> str:
        host = self.endpoint.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        suffix = ";transport=tcp" if transport == "TCP" else ""
        return f"<sip:callbridge@{host}:{self.endpoint.port}{suffix}>"

    def _forget(self, leg: _Leg) -> None:
        """Drop every trace of a leg (its media is released by a task)."""
        leg.state = _State.ENDED
        for timer in leg.timers:
            timer.cancel()
        leg.timers.clear()
        for pending in (leg.ring_timer, leg.ok_timer):
            if pending is not None:
                pending.cancel()
        leg.ring_timer = leg.ok_timer = None
        if self._legs.get(leg.leg_id) is leg:
            del self._legs[leg.leg_id]
        if leg.dialog is not None and self._by_dialog.get(leg.dialog.key) is leg:
            del self._by_dialog[leg.dialog.key]
            if leg.dialog.state is not DialogState.TERMINATED:
                leg.dialog.terminate()
        self._drop_incoming(leg)
        if leg.address is not None:
            leg.address = None
            self._spawn(self._release(leg.leg_id))

    def _drop_incoming(self, leg: _Leg) -> None:
        key = leg.incoming_key
        if key is not None and self._incoming.get(key) is leg:
            del self._incoming[key]

    async def _release(self, leg_id: str) -> None:
        try:
            await self.media.release(leg_id)
        except MediaError:
            log.debug("media release of %s failed", leg_id, exc_info=True)

    async def _media(self, call: Awaitable[Any]) -> Any:
        try:
            return await call
        except MediaError as exc:
            raise SwitchError(str(exc), code="media_error") from exc

    # --- dial ----------------------------------------------------------------------------------

    def _target(self, request: DialRequest) -> tuple[str, Source] | None:
        if request.external:
            if self.trunk is None:
                return None
            return f"sip:{request.number}@{self.trunk.host}:{self.trunk.port}", self.trunk
        username = self.username_for(request.tenant_id, request.number)
        if username is None:
            return None
        bindings = self.registrar.contacts(username)
        if not bindings:
            return None
        return bindings[0].contact, bindings[0].source

    async def dial(self, request: DialRequest) -> None:
        self._check_running()
        if request.leg_id in self._legs:
            raise SwitchError(f"leg {request.leg_id} exists", code="leg_exists")
        leg = _Leg(
            request.leg_id,
            outgoing=True,
            session=SdpSession(int.from_bytes(os.urandom(4), "big")),
            call_id=request.call_id,
            tenant_id=request.tenant_id,
        )
        self._legs[leg.leg_id] = leg
        target = self._target(request)
        if target is None:
            log.info("sip switch: nowhere to send %s (leg %s)", request.number, request.leg_id)
            self._emit_later(
                leg, SwitchEvent(SwitchEventKind.HUNGUP, leg.leg_id, HangupCause.FAILED)
            )
            return
        uri, destination = target
        leg.destination = destination
        try:
            leg.address = await self._media(self.media.allocate(leg.leg_id))
        except SwitchError:
            self._forget(leg)
            raise
        host = self.endpoint.host
        invite = build_invite(
            request_uri=uri,
            from_uri=f"sip:{request.caller_id or 'anonymous'}@{host}",
            from_tag=new_tag(),
            to_uri=f"sip:{request.number}@{destination.host}",
            call_id=f"{os.urandom(12).hex()}@{host}",
            contact=self._contact(destination.transport),
            sdp=leg.session.next_offer(leg.address),
        )
        leg.invite = invite
        leg.ring_timer = self.clock.call_later(request.timeout_s, lambda: self._ring_timeout(leg))
        self._spawn(self._run_outgoing(leg, invite, destination))

    def _ring_timeout(self, leg: _Leg) -> None:
        leg.ring_timer = None
        if leg.state is not _State.RINGING:
            return
        leg.ring_timed_out = True
        if leg.transaction is not None:
            self._spawn(self.client.cancel(leg.transaction))

    def _on_provisional(self, leg: _Leg, response: SipResponse) -> None:
        leg.provisional_seen = True
        if (
            response.status_code in (180, 183)
            and not leg.ringing_sent
            and leg.state is _State.RINGING
            and not leg.ring_timed_out
        ):
            leg.ringing_sent = True
            self._emit(SwitchEvent(SwitchEventKind.RINGING, leg.leg_id))

    async def _run_outgoing(self, leg: _Leg, invite: SipRequest, destination: Source) -> None:
        tx = await self.client.invite(invite, destination)
        leg.transaction = tx
        tx.on_provisional = lambda response: self._on_provisional(leg, response)
        if leg.state is _State.ENDED or leg.ring_timed_out:
            await self.client.cancel(tx)
        final = await tx.final()
        status = final.status_code
        if 200 <= status < 300:
            await self._outgoing_answered(leg, tx, invite, final)
            return
        if leg.state is _State.ENDED:
            return  # the core hung up (CANCEL): no event
        synthetic = status in (408, 503) and not leg.provisional_seen
        cause = cause_of_response(status, ring_timed_out=leg.ring_timed_out, synthetic=synthetic)
        self._forget(leg)
        self._emit(SwitchEvent(SwitchEventKind.HUNGUP, leg.leg_id, cause))

    async def _outgoing_answered(
        self, leg: _Leg, tx: ClientTransaction, invite: SipRequest, ok: SipResponse
    ) -> None:
        if leg.ring_timer is not None:  # answered: the ring timer must not fire any more
            leg.ring_timer.cancel()
            leg.ring_timer = None
        await self.client.ack(tx, build_ack_for_2xx(invite, ok))
        dialog = Dialog.from_uac(invite, ok)
        leg.dialog = dialog
        if leg.state is _State.ENDED or leg.ring_timed_out:
            # the answer crossed our CANCEL (or the core's hangup): end it at once
            self._bye(dialog, leg, HangupCause.NORMAL)
            if leg.state is not _State.ENDED:
                self._forget(leg)
                self._emit(SwitchEvent(SwitchEventKind.HUNGUP, leg.leg_id, HangupCause.NO_ANSWER))
            return
        self._by_dialog[dialog.key] = leg
        remote = parse_remote(ok.body or b"")
        chosen = choose(remote) if not isinstance(remote, SdpError) else remote
        failure: object = None
        if isinstance(remote, SdpError) or isinstance(chosen, SdpError):
            failure = chosen
        else:
            codec, dtmf_pt = chosen
            try:
                await self._media(
                    self.media.set_remote(leg.leg_id, remote.host, remote.port, codec, dtmf_pt)
                )
            except SwitchError as exc:
                failure = exc
        if _ended(leg):  # the core hung up meanwhile (its hangup BYEd the confirmed dialog)
            return
        if failure is not None:
            log.warning("sip switch: leg %s answered but unusable: %s", leg.leg_id, failure)
            self._bye(dialog, leg, HangupCause.FAILED)
            self._forget(leg)
            self._emit(SwitchEvent(SwitchEventKind.HUNGUP, leg.leg_id, HangupCause.FAILED))
            return
        leg.state = _State.ANSWERED
        self._emit(SwitchEvent(SwitchEventKind.ANSWERED, leg.leg_id))

    def _bye(self, dialog: Dialog, leg: _Leg, cause: HangupCause) -> asyncio.Task[Any] | None:
        """Build the BYE now (the dialog is terminated at once) and send it from a task."""
        if dialog.state is DialogState.TERMINATED or leg.destination is None:
            return None
        bye = dialog.new_request("BYE", extra_headers={"Reason": reason_header(cause)})
        dialog.terminate()
        return self._spawn(self._send_bye(bye, leg.destination, leg.leg_id))

    async def _send_bye(self, bye: SipRequest, destination: Source, leg_id: str) -> None:
        tx = await self.client.request(bye, destination)
        response = await tx.final()
        log.debug("BYE on leg %s: %d", leg_id, response.status_code)

    # --- incoming ------------------------------------------------------------------------------

    async def _on_invite(self, request: SipRequest, source: Source) -> SipResponse | None:
        if incoming_key(request) is not None:
            # a re-INVITE: not supported yet (the dialog stays as it is)
            return make_response(request, 488, "Not Acceptable Here")
        sender = request.headers.get_first("from") or ""
        from_tag = header_tag(sender)
        call_id = (request.headers.get_first("call-id") or "").strip()
        if from_tag is None or not call_id:
            return make_response(request, 400, "Missing From tag or Call-ID")
        if (call_id, from_tag) in self._incoming:
            return None  # a retransmission the endpoint did not absorb
        self.endpoint.reply(request, make_response(request, 100), source)
        if not request.body:
            return make_response(request, 488, "Not Acceptable Here")  # no late offer yet
        offer = parse_remote(request.body)
        if isinstance(offer, SdpError):
            return make_response(request, offer.status, offer.reason[:100])
        chosen = choose(offer)
        if isinstance(chosen, SdpError):
            return make_response(request, 488, "Not Acceptable Here")
        leg_id = f"sip-{os.urandom(8).hex()}"
        contact = self._contact(source.transport)
        try:
            dialog = Dialog.from_uas(request, local_tag=new_tag(), contact=contact)
        except ValueError as exc:
            return make_response(request, 400, str(exc)[:100])
        leg = _Leg(
            leg_id,
            outgoing=False,
            session=SdpSession(int.from_bytes(os.urandom(4), "big")),
            destination=source,
            dialog=dialog,
            request=request,
            incoming_key=(call_id, from_tag),
            offer=offer,
        )
        self._legs[leg_id] = leg
        self._incoming[(call_id, from_tag)] = leg
        self._by_dialog[dialog.key] = leg
        self._emit(
            SwitchEvent(
                SwitchEventKind.INCOMING,
                leg_id,
                from_number=user_part(sender),
                to_number=user_part(request.headers.get_first("to") or ""),
            )
        )
        return None

    def _incoming_leg(self, leg_id: str) -> tuple[_Leg, SipRequest, Dialog, Source]:
        leg = self._leg(leg_id)
        if leg.outgoing or leg.request is None or leg.dialog is None or leg.destination is None:
            raise SwitchError(f"leg {leg_id} is not an incoming leg", code="leg_not_incoming")
        return leg, leg.request, leg.dialog, leg.destination

    async def accept(self, leg_id: str, call_id: str, tenant_id: str) -> None:
        leg, request, dialog, source = self._incoming_leg(leg_id)
        if leg.state is not _State.RINGING:
            raise SwitchError(f"leg {leg_id} is already answered", code="leg_answered")
        leg.call_id, leg.tenant_id = call_id, tenant_id
        self.endpoint.reply(request, dialog.respond(request, 180), source)

    async def answer(self, leg_id: str) -> None:
        leg, request, dialog, source = self._incoming_leg(leg_id)
        if leg.state is not _State.RINGING or leg.offer is None:
            raise SwitchError(f"leg {leg_id} is already answered", code="leg_answered")
        offer = leg.offer
        leg.address = await self._media(self.media.allocate(leg_id))
        result = leg.session.answer(offer, leg.address)
        if isinstance(result, SdpError):  # checked on arrival; kept for safety
            raise SwitchError(result.reason, code="sdp_error")
        sdp, codec, dtmf_pt = result
        await self._media(self.media.set_remote(leg_id, offer.host, offer.port, codec, dtmf_pt))
        if leg.state is not _State.RINGING:
            return  # CANCELled while we allocated
        ok = dialog.respond(request, 200, body=sdp, content_type="application/sdp")
        leg.ok = ok
        self.endpoint.reply(request, ok, source)
        dialog.confirm()
        leg.state = _State.ANSWERED
        self._drop_incoming(leg)
        leg.ok_deadline = self.clock.monotonic() + 64 * self.client.t1
        leg.ok_interval = self.client.t1
        leg.ok_timer = self.clock.call_later(leg.ok_interval, lambda: self._resend_ok(leg))

    def _resend_ok(self, leg: _Leg) -> None:
        leg.ok_timer = None
        if leg.state is not _State.ANSWERED or leg.ok is None or leg.request is None:
            return
        if self.clock.monotonic() >= leg.ok_deadline:
            log.warning("sip switch: no ACK for the 200 on leg %s", leg.leg_id)
            if leg.dialog is not None:
                self._bye(leg.dialog, leg, HangupCause.FAILED)
            self._forget(leg)
            self._emit(SwitchEvent(SwitchEventKind.HUNGUP, leg.leg_id, HangupCause.FAILED))
            return
        if leg.destination is not None and leg.destination.transport == "UDP":
            self.endpoint.reply(leg.request, leg.ok, leg.destination)
        leg.ok_interval = min(2 * leg.ok_interval, self.client.t2)
        leg.ok_timer = self.clock.call_later(leg.ok_interval, lambda: self._resend_ok(leg))

    async def _on_ack(self, request: SipRequest, source: Source) -> None:
        key = incoming_key(request)
        leg = self._by_dialog.get(key) if key is not None else None
        if leg is not None and leg.ok_timer is not None:
            leg.ok_timer.cancel()
            leg.ok_timer = None
            leg.ok = None
        return None

    async def _on_bye(self, request: SipRequest, source: Source) -> SipResponse:
        key = incoming_key(request)
        leg = self._by_dialog.get(key) if key is not None else None
        if leg is None or leg.dialog is None:
            return make_response(request, 481, "Call/Transaction Does Not Exist")
        refusal = leg.dialog.refusal(request)
        if refusal is not None:
            return make_response(request, refusal)
        response = leg.dialog.respond(request, 200)
        reason = request.headers.get_first("reason")
        cause = (cause_of_reason(reason) if reason else None) or HangupCause.NORMAL
        leg.dialog.terminate()
        was_ringing = leg.state is _State.RINGING
        if was_ringing and not leg.outgoing and leg.request is not None:
            # BYE before our 200: the INVITE gets 487 (RFC 3261 §15.1.2)
            self.endpoint.reply(leg.request, make_response(leg.request, 487), source)
        self._forget(leg)
        self._emit(SwitchEvent(SwitchEventKind.HUNGUP, leg.leg_id, cause))
        return response

    async def _on_cancel(self, request: SipRequest, source: Source) -> SipResponse:
        sender = request.headers.get_first("from") or ""
        from_tag = header_tag(sender)
        call_id = (request.headers.get_first("call-id") or "").strip()
        leg = self._incoming.get((call_id, from_tag or ""))
        if leg is None:
            return make_response(request, 481, "Call/Transaction Does Not Exist")
        ok = make_response(request, 200)
        if leg.state is _State.RINGING and leg.request is not None and leg.dialog is not None:
            invite = leg.request
            self.endpoint.reply(invite, leg.dialog.respond(invite, 487), source)
            self._forget(leg)
            self._emit(SwitchEvent(SwitchEventKind.HUNGUP, leg.leg_id, HangupCause.CANCELLED))
        return ok

    # --- hangup --------------------------------------------------------------------------------

    async def hangup(self, leg_id: str, cause: HangupCause) -> None:
        leg = self._leg(leg_id)
        await self._end(leg, cause)

    async def _end(self, leg: _Leg, cause: HangupCause) -> Awaitable[Any] | None:
        """End a leg without an event; returns what to await for the peer's answer, if any."""
        if leg.state is _State.ENDED:
            return None
        pending: Awaitable[Any] | None = None
        dialog = leg.dialog
        if dialog is not None and dialog.state is DialogState.CONFIRMED:
            pending = self._bye(dialog, leg, cause)
        elif leg.outgoing:
            tx = leg.transaction
            if tx is not None:
                pending = self._spawn(self.client.cancel(tx))
        elif leg.request is not None and dialog is not None and leg.destination is not None:
            status, reason = response_for_cause(cause)
            self.endpoint.reply(
                leg.request, dialog.respond(leg.request, status, reason), leg.destination
            )
        self._forget(leg)
        return pending

    # --- media ---------------------------------------------------------------------------------

    def _on_dtmf(self, leg_id: str, digit: str) -> None:
        leg = self._legs.get(leg_id)
        if leg is not None and leg.state is _State.ANSWERED:
            self._emit(SwitchEvent(SwitchEventKind.DTMF, leg_id, digits=digit))

    def _answered(self, leg_id: str) -> _Leg:
        leg = self._leg(leg_id)
        if leg.state is not _State.ANSWERED:
            raise SwitchError(f"leg {leg_id} is not answered", code="leg_not_answered")
        return leg

    async def bridge(self, bridge_id: str, leg_ids: Sequence[str], mixing: bool) -> None:
        for leg_id in leg_ids:
            self._answered(leg_id)
        await self._media(self.media.connect(bridge_id, list(leg_ids)))

    async def unbridge(self, bridge_id: str, leg_id: str) -> None:
        self._leg(leg_id)
        await self._media(self.media.disconnect(bridge_id, leg_id))

    async def hold(self, leg_id: str) -> None:
        self._answered(leg_id)
        await self._media(self.media.hold(leg_id))

    async def unhold(self, leg_id: str) -> None:
        self._answered(leg_id)
        await self._media(self.media.unhold(leg_id))

    async def mute(self, leg_id: str) -> None:
        self._answered(leg_id)
        await self._media(self.media.mute(leg_id))

    async def unmute(self, leg_id: str) -> None:
        self._answered(leg_id)
        await self._media(self.media.unmute(leg_id))

    async def start_music(self, leg_id: str) -> None:
        self._answered(leg_id)
        await self._media(self.media.start_music(leg_id))

    async def stop_music(self, leg_id: str) -> None:
        self._answered(leg_id)
        await self._media(self.media.stop_music(leg_id))

    async def record_start(self, recording_id: str, call_id: str) -> None:
        self._check_running()
        if self.recordings_dir is None:
            raise SwitchError("no recordings directory configured", code="recording_unavailable")
        legs = [
            leg.leg_id
            for leg in self._legs.values()
            if leg.call_id == call_id and leg.state is _State.ANSWERED
        ]
        if not legs:
            raise SwitchError(f"call {call_id} has no answered leg", code="leg_not_answered")
        path = self.recordings_dir / f"{recording_id}.wav"
        await self._media(self.media.record_start(recording_id, legs, path))
        self._recordings[recording_id] = legs

    async def record_pause(self, recording_id: str) -> None:
        self._check_running()
        await self._media(self.media.record_pause(recording_id))

    async def record_resume(self, recording_id: str) -> None:
        self._check_running()
        await self._media(self.media.record_resume(recording_id))

    async def record_stop(self, recording_id: str) -> None:
        self._check_running()
        await self._media(self.media.record_stop(recording_id))
        self._recordings.pop(recording_id, None)

    async def send_dtmf(self, leg_id: str, digits: str) -> None:
        self._answered(leg_id)
        await self._media(self.media.send_dtmf(leg_id, digits))
