"""Outgoing legs: INVITE a registered phone or the trunk, ring, answer, fail, digest retry."""

from __future__ import annotations

import os

from aiosipua.message import SipRequest, SipResponse

from ...domain.calls import HangupCause
from ...ports.switch import DialRequest, SwitchError, SwitchEvent, SwitchEventKind
from ...sip.causes import cause_of_response
from ...sip.client import ClientTransaction, build_ack_for_2xx
from ...sip.dialogs import Dialog, build_invite
from ...sip.digest import answer_challenges
from ...sip.responses import new_tag
from ...sip.sdp import SdpError, SdpSession, choose, is_hold_address, parse_remote
from ...sip.source import Source
from .base import SwitchBase, log
from .legs import Fork, Leg, LegState


def _best_failure(statuses: list[int]) -> int:
    """The final status to report when every fork failed (after RFC 3261 §16.7): a 6xx, else
    busy, else another 4xx that is not a timeout or a CANCEL's 487, else the first one."""
    ranked = [
        [s for s in statuses if s >= 600],
        [s for s in statuses if s == 486],
        [s for s in statuses if 400 <= s < 500 and s not in (408, 487)],
        statuses,
    ]
    return next(group[0] for group in ranked if group)


class OutgoingMixin(SwitchBase):
    def _targets(self, request: DialRequest) -> list[tuple[str, Source]]:
        """Where to send the INVITE(s): the trunk, or every live binding of the extension."""
        if request.external:
            if self.trunk is None:
                return []
            return [(f"sip:{request.number}@{self.trunk.host}:{self.trunk.port}", self.trunk)]
        username = self.username_for(request.tenant_id, request.number)
        if username is None:
            return []
        return [(b.contact, b.source) for b in self.registrar.contacts(username)]

    async def dial(self, request: DialRequest) -> None:
        self._check_running()
        if request.leg_id in self._legs:
            raise SwitchError(f"leg {request.leg_id} exists", code="leg_exists")
        leg = Leg(
            request.leg_id,
            outgoing=True,
            session=SdpSession(int.from_bytes(os.urandom(4), "big")),
            call_id=request.call_id,
            tenant_id=request.tenant_id,
            phone=not request.external,
        )
        self._legs[leg.leg_id] = leg
        targets = self._targets(request)
        if not targets:
            log.info("sip switch: nowhere to send %s (leg %s)", request.number, request.leg_id)
            self._emit_later(
                leg, SwitchEvent(SwitchEventKind.HUNGUP, leg.leg_id, HangupCause.FAILED)
            )
            return
        leg.destination = targets[0][1]
        try:
            leg.address = await self._media(self.media.allocate(leg.leg_id))
        except SwitchError:
            self._forget(leg)
            raise
        host = self.advertised_host
        sdp = leg.session.next_offer(leg.address)  # one offer: whichever fork answers gets it
        from_tag, call_id = new_tag(), f"{os.urandom(12).hex()}@{host}"
        for uri, destination in targets:
            invite = build_invite(
                request_uri=uri,
                from_uri=f"sip:{request.caller_id or 'anonymous'}@{host}",
                from_tag=from_tag,
                to_uri=f"sip:{request.number}@{destination.host}",
                call_id=call_id,
                contact=self._contact(destination.transport),
                sdp=sdp,
            )
            leg.forks.append(Fork(invite, destination))
        leg.ring_timer = self.clock.call_later(request.timeout_s, lambda: self._ring_timeout(leg))
        for fork in leg.forks:
            self._spawn(self._run_fork(leg, fork))

    def _ring_timeout(self, leg: Leg) -> None:
        leg.ring_timer = None
        if leg.state is not LegState.RINGING:
            return
        leg.ring_timed_out = True
        self._cancel_forks(leg)

    def _on_provisional(self, leg: Leg, response: SipResponse) -> None:
        leg.provisional_seen = True
        if (
            response.status_code in (180, 183)
            and not leg.ringing_sent
            and leg.state is LegState.RINGING
            and not leg.ring_timed_out
        ):
            leg.ringing_sent = True
            self._emit(SwitchEvent(SwitchEventKind.RINGING, leg.leg_id))

    def _authorized(self, invite: SipRequest, challenge: SipResponse) -> SipRequest | None:
        """The INVITE again with credentials for ``challenge`` (401/407), CSeq + 1, or None
        without trunk credentials or an answerable challenge (RFC 3261 §22.2)."""
        if not self.trunk_username or not self.trunk_password:
            return None
        status = challenge.status_code
        name = "www-authenticate" if status == 401 else "proxy-authenticate"
        credentials = answer_challenges(
            challenge.headers.get(name),
            self.trunk_username,
            self.trunk_password,
            "INVITE",
            invite.uri,
        )
        if credentials is None:
            return None
        retry = SipRequest(method="INVITE", uri=invite.uri)
        retry.headers = invite.headers.copy()
        retry.headers.remove("via")  # the client stamps a new one (a new transaction)
        cseq = (invite.headers.get_first("cseq") or "1 INVITE").split()[0]
        retry.headers.set_single("CSeq", f"{int(cseq) + 1} INVITE")
        retry.headers.set_single(
            "Authorization" if status == 401 else "Proxy-Authorization", credentials
        )
        retry.body = invite.body
        return retry

    async def _run_fork(self, leg: Leg, fork: Fork) -> None:
        invite = fork.invite
        while True:
            tx = await self.client.invite(invite, fork.destination)
            fork.transaction = tx
            tx.on_provisional = lambda response: self._on_provisional(leg, response)
            if leg.ended or leg.ring_timed_out or leg.winner is not None:
                await self.client.cancel(tx)
            final = await tx.final()
            status = final.status_code
            if status in (401, 407) and not leg.auth_tried and not leg.ended:
                leg.auth_tried = True  # one retry: a second challenge is a rejection
                retry = self._authorized(invite, final)
                if retry is not None and not leg.ring_timed_out:
                    invite = fork.invite = retry
                    continue
            break
        fork.status = status
        if 200 <= status < 300:
            if leg.winner is None and not leg.ended and not leg.ring_timed_out:
                leg.winner = fork
                self._cancel_forks(leg)  # first 2xx wins; the other phones stop ringing
                await self._outgoing_answered(leg, fork, tx, invite, final)
            else:
                await self._late_2xx(leg, fork, tx, invite, final)
            return
        if leg.ended or any(f.status is None for f in leg.forks):
            return  # the core hung up (CANCEL) or already heard; or other forks still ring
        statuses = [f.status for f in leg.forks if f.status is not None and f.status >= 300]
        worst = _best_failure(statuses)
        synthetic = worst in (408, 503) and not leg.provisional_seen
        cause = cause_of_response(worst, ring_timed_out=leg.ring_timed_out, synthetic=synthetic)
        if worst in (401, 407):  # no credentials, an unanswerable or a second challenge
            cause = HangupCause.REJECTED
        self._forget(leg)
        self._emit(SwitchEvent(SwitchEventKind.HUNGUP, leg.leg_id, cause))

    async def _late_2xx(
        self, leg: Leg, fork: Fork, tx: ClientTransaction, invite: SipRequest, ok: SipResponse
    ) -> None:
        """A 2xx nobody wants (another fork won, or it crossed our CANCEL): ACK it, BYE it."""
        await self.client.ack(tx, build_ack_for_2xx(invite, ok))
        try:
            dialog = Dialog.from_uac(invite, ok)
        except ValueError as exc:
            log.warning("sip switch: leg %s: unusable late 2xx: %s", leg.leg_id, exc)
        else:
            self._bye(dialog, leg, HangupCause.NORMAL, destination=fork.destination)
        if leg.winner is None and not leg.ended:  # crossed our ring-timeout CANCEL
            self._forget(leg)
            self._emit(SwitchEvent(SwitchEventKind.HUNGUP, leg.leg_id, HangupCause.NO_ANSWER))

    async def _outgoing_answered(
        self, leg: Leg, fork: Fork, tx: ClientTransaction, invite: SipRequest, ok: SipResponse
    ) -> None:
        if leg.ring_timer is not None:  # answered: the ring timer must not fire any more
            leg.ring_timer.cancel()
            leg.ring_timer = None
        leg.destination = fork.destination
        await self.client.ack(tx, build_ack_for_2xx(invite, ok))
        try:
            dialog = Dialog.from_uac(invite, ok)
        except ValueError as exc:  # a 2xx without a To tag: no dialog to talk in
            log.warning("sip switch: leg %s answered unusably: %s", leg.leg_id, exc)
            self._fail(leg)
            return
        leg.dialog = dialog
        if leg.ended:  # the core hung up while the 2xx was on its way
            self._bye(dialog, leg, HangupCause.NORMAL)
            return
        self._by_dialog[dialog.key] = leg
        remote = parse_remote(ok.body or b"")
        chosen = choose(remote) if not isinstance(remote, SdpError) else remote
        failure: object = None
        if isinstance(remote, SdpError) or isinstance(chosen, SdpError):
            failure = chosen
        elif is_hold_address(remote.host):
            failure = "the answer has no media address (c=0.0.0.0)"
        else:
            codec, dtmf_pt = chosen
            try:
                await self._media(
                    self.media.set_remote(leg.leg_id, remote.host, remote.port, codec, dtmf_pt)
                )
                leg.remote = (remote.host, remote.port, codec, dtmf_pt)
            except SwitchError as exc:
                failure = exc
        if leg.ended:  # the core hung up meanwhile (its hangup BYEd the confirmed dialog)
            return
        if failure is not None:
            log.warning("sip switch: leg %s answered but unusable: %s", leg.leg_id, failure)
            self._fail(leg)
            return
        leg.state = LegState.ANSWERED
        self._emit(SwitchEvent(SwitchEventKind.ANSWERED, leg.leg_id))
        self._kick_reinvite(leg)  # the core may have asked for hold meanwhile (it cannot yet)
