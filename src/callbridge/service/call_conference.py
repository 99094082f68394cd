"""More than two parties: add a party, kick, join two calls into a conference, and supervision
(a supervisor listening, whispering or barging into an agent's bridge).
"""

from __future__ import annotations

from ..domain.calls import (
    Bridge,
    Call,
    HangupCause,
    Leg,
    LegRole,
    LegState,
    PartyKind,
    Supervision,
    SupervisionMode,
)
from ..domain.errors import Conflict, Invalid, NotFound
from ..domain.events import call_event
from ..domain.tenancy import Permission
from .auth import Actor
from .call_base import Target, _clone, _Draft
from .call_dial import CallDialling


def parse_supervision_mode(mode: str) -> SupervisionMode:
    try:
        return SupervisionMode(mode)
    except ValueError:
        raise Invalid(
            f"supervision mode {mode!r} must be one of listen, whisper, barge",
            code="supervision_mode_invalid",
            mode=mode,
        ) from None


class CallConference(CallDialling):
    """Conference and supervision commands; a supervisor answering."""

    async def add_party(self, actor: Actor, tenant_id: str, call_id: str, target: str) -> Call:
        """Dial a third party into the call's bridge (it becomes a conference on answer)."""
        resolved = self.resolve(tenant_id, target)
        async with self._command(actor, tenant_id, call_id) as d:
            bridge = self._main_bridge(d.call)
            await self._dial(
                d,
                resolved,
                LegRole.CONFERENCE_MEMBER,
                caller_id=d.call.caller_id or d.call.from_number,
                connect_to=bridge.leg_ids[0],
            )
        return d.call

    @staticmethod
    def _main_bridge(call: Call) -> Bridge:
        bridges = sorted(call.bridges.values(), key=lambda b: -len(b.leg_ids))
        if not bridges:
            raise Conflict("the call has no connected parties", code="call_not_bridged")
        return bridges[0]

    async def kick(self, actor: Actor, tenant_id: str, call_id: str, leg_id: str) -> Call:
        async with self._command(actor, tenant_id, call_id) as d:
            leg = d.call.leg(leg_id)
            if not leg.live:
                raise Conflict("the leg has already hung up", code="leg_already_hungup")
            await self._hangup_leg(d, leg_id, HangupCause.KICKED)
            await self._cascade(d, HangupCause.NORMAL)
        return d.call

    async def join(self, actor: Actor, tenant_id: str, call_id: str, other_call_id: str) -> Call:
        """Join two calls that share a party (an agent with one active and one held call) into
        one three-party conference. The shared party keeps its leg of ``call_id``; its leg of the
        other call is hung up (cause ``joined``), and the other call ends, merged into this one.
        """
        actor.require(Permission.CALL_CONTROL)
        self._visible(actor, tenant_id, call_id)
        self._visible(actor, tenant_id, other_call_id)
        if call_id == other_call_id:
            raise Invalid("a call cannot be joined with itself", code="join_same_call")
        first, second = sorted([call_id, other_call_id])
        async with self._locks(first), self._locks(second):
            live_a, live_b = self.calls.get(call_id), self.calls.get(other_call_id)
            if live_a is None or live_b is None:  # ended while we waited for the locks
                raise NotFound("call", call_id if live_a is None else other_call_id)
            a = _Draft(_clone(live_a))
            b = _Draft(_clone(live_b))
            a.call.require_active()
            b.call.require_active()
            await self._merge(a, b)
            await self._commit(b)
            await self._commit(a)
        return a.call

    async def _merge(self, a: _Draft, b: _Draft) -> None:
        ca, cb, now = a.call, b.call, self.core.clock.now()
        ext_a = {leg.extension_id: leg for leg in ca.live_legs() if leg.extension_id}
        shared = [leg for leg in cb.live_legs() if leg.extension_id in ext_a]
        if not shared:
            raise Invalid("the two calls share no extension", code="calls_share_no_party")
        bridge_a = self._main_bridge(ca)
        movers = [leg for leg in cb.live_legs() if leg.id != shared[0].id]
        for leg in movers:
            if leg.state is not LegState.ANSWERED:
                raise Conflict(
                    f"leg {leg.id} of the other call is not answered", code="leg_not_answered"
                )
        for leg in [*ca.live_legs(), *movers]:
            if leg.hold.value == "held":
                (a if leg.id in ca.legs else b).emit(
                    (ca if leg.id in ca.legs else cb).unhold(leg.id)
                )
                await self.core.switch.unhold(leg.id)
        for leg in movers:
            if leg.bridge_id is not None:
                old = leg.bridge_id
                b.emit(cb.leave_bridge(leg.id))
                await self.core.switch.unbridge(old, leg.id)
        await self._hangup_leg(b, shared[0].id, HangupCause.JOINED)
        for leg in movers:
            del cb.legs[leg.id]
            b.emit([call_event("leg.moved", cb.id, leg_id=leg.id, to_call_id=ca.id)])
            leg.connect_to = None
            a.emit(ca.add_leg(leg))
            a.emit(ca.join_bridge(bridge_a.id, leg.id))
        await self.core.switch.bridge(bridge_a.id, list(ca.bridges[bridge_a.id].leg_ids), True)
        a.emit([call_event("call.joined", ca.id, other_call_id=cb.id)])
        b.emit(cb.end(HangupCause.JOINED, now))

    # ------------------------------------------------------------------ supervision

    async def supervise(
        self,
        actor: Actor,
        tenant_id: str,
        call_id: str,
        supervisor_extension_id: str,
        mode: str,
        agent_leg_id: str,
    ) -> Call:
        """Dial the supervisor's extension; once it answers it joins the agent's bridge in
        ``mode`` (listen, whisper or barge). Needs ``Call Monitor``."""
        actor.require(Permission.CALL_MONITOR)
        wanted = parse_supervision_mode(mode)
        extension = self.directory.extension(actor, tenant_id, supervisor_extension_id)
        async with self._command(actor, tenant_id, call_id, Permission.CALL_MONITOR) as d:
            call = d.call
            agent = call.leg(agent_leg_id)
            if (
                agent.state is not LegState.ANSWERED
                or agent.bridge_id is None
                or agent.kind is not PartyKind.EXTENSION
                or agent.supervision is not None
            ):
                raise Conflict(
                    f"leg {agent_leg_id} is not an agent talking in the call",
                    code="not_supervisable",
                    leg_id=agent_leg_id,
                )
            if any(leg.live and leg.extension_id == extension.id for leg in call.legs.values()):
                raise Conflict(
                    f"extension {extension.number} is already in the call",
                    code="supervisor_in_call",
                    extension_id=extension.id,
                )
            leg = await self._dial(
                d,
                Target(extension.number, extension=extension),
                LegRole.SUPERVISOR,
                caller_id=call.caller_id or call.from_number,
                connect_to=agent_leg_id,
            )
            leg.supervision = Supervision(mode=wanted, agent_leg_id=agent_leg_id)
        return d.call

    async def set_supervision_mode(
        self, actor: Actor, tenant_id: str, call_id: str, leg_id: str, mode: str
    ) -> Call:
        """Switch a joined supervisor between listen, whisper and barge."""
        actor.require(Permission.CALL_MONITOR)
        wanted = parse_supervision_mode(mode)
        async with self._command(actor, tenant_id, call_id, Permission.CALL_MONITOR) as d:
            events = d.call.change_supervision(leg_id, wanted)
            if events:
                supervision = d.call.leg(leg_id).supervision
                assert supervision is not None
                await self.core.switch.set_audibility(leg_id, supervision.heard_by())
                d.emit(events)
                await self._cascade(d, HangupCause.NORMAL)  # a barger left alone stops counting
        return d.call

    async def end_supervision(
        self, actor: Actor, tenant_id: str, call_id: str, leg_id: str
    ) -> Call:
        """Hang the supervisor leg up (dialling or joined); the call goes on."""
        async with self._command(actor, tenant_id, call_id, Permission.CALL_MONITOR) as d:
            leg = d.call.leg(leg_id)
            if leg.supervision is None:
                raise Conflict(f"leg {leg_id} is not a supervisor", code="not_supervisor")
            if not leg.live:
                raise Conflict("the leg has already hung up", code="leg_already_hungup")
            await self._hangup_leg(d, leg_id, HangupCause.NORMAL)
            await self._cascade(d, HangupCause.NORMAL)
        return d.call

    async def _supervisor_answered(self, draft: _Draft, leg: Leg, agent: Leg) -> None:
        """The supervisor picked up: join the agent's bridge, heard only as its mode allows."""
        call = draft.call
        assert leg.supervision is not None
        if agent.state is not LegState.ANSWERED or agent.bridge_id is None:
            await self._hangup_leg(draft, leg.id, HangupCause.NORMAL)  # nothing left to supervise
            return
        # audibility first: a listening supervisor must not be heard for a moment on joining
        await self.core.switch.set_audibility(leg.id, leg.supervision.heard_by())
        bridge = call.bridges[agent.bridge_id]
        draft.emit(call.join_bridge(bridge.id, leg.id))
        await self.core.switch.bridge(bridge.id, list(bridge.leg_ids), True)
        draft.emit(call.supervision_started(leg.id))
