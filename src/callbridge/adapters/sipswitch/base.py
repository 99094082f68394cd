"""The SIP switch's shared state and helpers; the concerns are mixins on :class:`SwitchBase`.

See :mod:`callbridge.adapters.sipswitch` for the theory of operation.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiosipua.message import SipRequest, SipResponse

from ...domain.calls import HangupCause
from ...media.port import MediaEngine, MediaError
from ...ports.clock import Clock
from ...ports.switch import SwitchError, SwitchEvent, SwitchEventKind, SwitchListener
from ...sip.causes import reason_header, response_for_cause
from ...sip.client import SipClient
from ...sip.dialogs import Dialog, DialogKey, DialogState
from ...sip.endpoint import SipEndpoint, start_task
from ...sip.registrar import Registrar
from ...sip.source import Source
from .legs import HoldReinvite, Leg, LegState

log = logging.getLogger("callbridge.adapters.sipswitch")

_IN_ORDER_WAIT_S = 2.0

UsernameFor = Callable[[str, str], str | None]
"""``username_for(tenant_id, extension_number)``: the extension's SIP username, or None."""


class SwitchBase(abc.ABC):
    """State shared by the mixins, and the helpers they all use."""

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
        hold_reinvite: HoldReinvite = HoldReinvite.PHONES,
        trunk_username: str = "",
        trunk_password: str = "",
        public_host: str = "",
    ) -> None:
        self.endpoint = endpoint
        self.client = client
        self.media = media
        self.registrar = registrar
        self.clock = clock
        self.trunk = trunk
        self.username_for = username_for
        self.recordings_dir = recordings_dir
        #: which legs a hold re-INVITEs with ``a=sendonly`` (and ``sendrecv`` on unhold)
        self.hold_reinvite = hold_reinvite
        self.trunk_username = trunk_username
        self.trunk_password = trunk_password
        #: the address put in Contact (and given to the client for Via) when bound to 0.0.0.0
        self.public_host = public_host
        self._listener: SwitchListener | None = None
        self._legs: dict[str, Leg] = {}
        self._by_dialog: dict[DialogKey, Leg] = {}
        self._incoming: dict[tuple[str, str], Leg] = {}  # (call-id, From tag) until answered
        self._recordings: dict[str, list[str]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._running = False

    # --- hooks the mixins implement ----------------------------------------------------------

    @abc.abstractmethod
    def _kick_reinvite(self, leg: Leg) -> None:
        """Send a re-INVITE if the leg's wanted direction differs from the negotiated one."""

    @abc.abstractmethod
    async def _on_reinvite(self, request: SipRequest, source: Source) -> SipResponse | None:
        """An in-dialog INVITE (the INVITE handler passes those on)."""

    @abc.abstractmethod
    def _send_ok(self, leg: Leg, request: SipRequest, ok: SipResponse) -> None:
        """Send a 2xx to an INVITE and resend it until its ACK."""

    @abc.abstractmethod
    def _final_notify(self, leg: Leg, cause: HangupCause) -> SipRequest | None:
        """The last NOTIFY of a pending REFER, to send before the BYE (None without one)."""

    # --- helpers -------------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = start_task(coro)
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

    def _emit_later(self, leg: Leg, event: SwitchEvent) -> None:
        def fire() -> None:
            if self._legs.get(leg.leg_id) is leg:
                if event.kind is SwitchEventKind.HUNGUP:
                    self._forget(leg)
                self._emit(event)

        leg.timers.append(self.clock.call_later(0, fire))

    def _check_running(self) -> None:
        if not self._running:
            raise SwitchError("the SIP switch is not running", code="switch_stopped")

    def _leg(self, leg_id: str) -> Leg:
        self._check_running()
        leg = self._legs.get(leg_id)
        if leg is None or leg.ended:
            raise SwitchError(f"no such leg: {leg_id}", code="leg_unknown")
        return leg

    def _answered(self, leg_id: str) -> Leg:
        leg = self._leg(leg_id)
        if leg.state is not LegState.ANSWERED:
            raise SwitchError(f"leg {leg_id} is not answered", code="leg_not_answered")
        return leg

    @property
    def advertised_host(self) -> str:
        """The host peers reach us at: ``public_host`` if set, else the bound address."""
        return self.public_host or self.endpoint.host

    def _contact(self, transport: str) -> str:
        host = self.advertised_host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        suffix = ";transport=tcp" if transport == "TCP" else ""
        return f"<sip:callbridge@{host}:{self.endpoint.port}{suffix}>"

    def _forget(self, leg: Leg) -> None:
        """Drop every trace of a leg (its media is released by a task)."""
        leg.state = LegState.ENDED
        leg.cancel_timers()
        if self._legs.get(leg.leg_id) is leg:
            del self._legs[leg.leg_id]
        if leg.dialog is not None and self._by_dialog.get(leg.dialog.key) is leg:
            del self._by_dialog[leg.dialog.key]
            if leg.dialog.state is not DialogState.TERMINATED:
                leg.dialog.terminate()
        key = leg.incoming_key  # by key: a scan of every ringing leg grew quadratically
        if key is not None and self._incoming.get(key) is leg:
            del self._incoming[key]
        if leg.address is not None:
            leg.address = None
            self._spawn(self._release(leg.leg_id))

    def _fail(self, leg: Leg, cause: HangupCause = HangupCause.FAILED) -> None:
        """The far end is gone or unusable: BYE (if confirmed), forget, emit ``HUNGUP``."""
        if leg.ended:
            return
        if leg.dialog is not None:
            self._bye(leg.dialog, leg, cause)
        self._forget(leg)
        self._emit(SwitchEvent(SwitchEventKind.HUNGUP, leg.leg_id, cause))

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

    def _cancel_forks(self, leg: Leg) -> asyncio.Task[Any] | None:
        """CANCEL every INVITE of the leg still pending (sent once a provisional came)."""
        pending = [
            fork.transaction
            for fork in leg.forks
            if fork.transaction is not None and fork.status is None and fork is not leg.winner
        ]
        if not pending:
            return None

        async def cancel_all() -> None:
            for tx in pending:
                await self.client.cancel(tx)

        return self._spawn(cancel_all())

    def _bye(
        self,
        dialog: Dialog,
        leg: Leg,
        cause: HangupCause,
        first: SipRequest | None = None,
        *,
        destination: Source | None = None,
    ) -> asyncio.Task[Any] | None:
        """Build the BYE now (the dialog is terminated at once) and send it from a task,
        after ``first`` (a final NOTIFY) when given; to ``destination`` (default: the leg's)."""
        target = destination or leg.destination
        if dialog.state is not DialogState.CONFIRMED or target is None:
            return None
        bye = dialog.new_request("BYE", extra_headers={"Reason": reason_header(cause)})
        dialog.terminate()
        return self._spawn(self._send_in_order([r for r in (first, bye) if r], leg, target))

    async def _send_in_order(
        self, requests: list[SipRequest], leg: Leg, destination: Source | None = None
    ) -> None:
        """Send in-dialog requests one after the other: each waits for the previous one's final
        response, but at most ``_IN_ORDER_WAIT_S`` (a phone that never answers a NOTIFY must not
        hold the BYE back for 64*T1)."""
        target = destination or leg.destination
        assert target is not None
        for index, request in enumerate(requests):
            tx = await self.client.request(request, target)
            if index < len(requests) - 1:
                await self._at_most(tx.final_future, _IN_ORDER_WAIT_S)
            else:
                response: SipResponse = await tx.final()
                log.debug("%s on leg %s: %d", request.method, leg.leg_id, response.status_code)

    async def _at_most(self, future: asyncio.Future[Any], seconds: float) -> None:
        """Wait until ``future`` is done or ``seconds`` passed on the clock (not cancelling it)."""
        expired: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timer = self.clock.call_later(
            seconds, lambda: None if expired.done() else expired.set_result(None)
        )
        try:
            await asyncio.wait({future, expired}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()

    async def _end(self, leg: Leg, cause: HangupCause) -> Awaitable[Any] | None:
        """End a leg without an event; returns what to await for the peer's answer, if any."""
        if leg.ended:
            return None
        pending: Awaitable[Any] | None = None
        dialog = leg.dialog
        if dialog is not None and dialog.state is DialogState.CONFIRMED:
            pending = self._bye(dialog, leg, cause, self._final_notify(leg, cause))
        elif leg.outgoing:
            pending = self._cancel_forks(leg)
        elif leg.request is not None and dialog is not None and leg.destination is not None:
            status, reason = response_for_cause(cause)
            self.endpoint.reply(
                leg.request, dialog.respond(leg.request, status, reason), leg.destination
            )
        self._forget(leg)
        return pending
