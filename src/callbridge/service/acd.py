"""The queue distribution service: the sans-I/O ACD engine wired to calls, agents and the clock.

Theory of operation
-------------------
One :class:`~callbridge.domain.acd.AcdEngine` per tenant. Its *inputs* come from three places,
always synchronously on the event loop, so each input is atomic and the engine sees them in the
order they were committed:

* the call service's observer (:meth:`calls_committed`): a caller entering a queue (``arrive``),
  moved to another queue (``move``), hanging up while waiting or offered (``abandoned``), an
  agent's offer leg answered (``answered``), failing or declined (``missed``), a connected agent
  leg ending (``ended``);
* the agent service's listener (:meth:`agents_committed`): presence Ready, signed in and no leg
  of the agent's own (other than its offer) makes an agent available; anything else unavailable;
* the clock: one timer per engine at :meth:`AcdEngine.next_deadline`, re-armed after every input.

The *outputs* (commands and events) go, in order, to one owned worker task (:meth:`_run`) that
commits the events and carries out the commands through the call service (``_mutate``): ring
the agent in the customer's call (the customer hears the queue's music until the agent answers;
the call service's ``connect_to`` stops it and bridges), hang up an offer (``no_answer``),
overflow, call back. A command that finds its call gone does nothing: the observer has told the
engine already, or will.

Who decides what (see ``docs/acd.md``): the engine decides *who is offered which call* and keeps
ring timeouts and maximum waits; the agent service owns wrap-up and the missed-offer count and
its miss rule (the engine is configured with neither), so an agent is never counted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ..domain.acd import (
    AcdEngine,
    AgentProfile,
    AgentToAway,
    CallbackDue,
    CancelOffer,
    Command,
    Offer,
    Output,
    Overflow,
    QueueConfig,
)
from ..domain.acd import CallState as QueueCallState
from ..domain.agents import AgentState, PhoneState
from ..domain.calls import Call, CallOrigin, CallState, HangupCause, Leg
from ..domain.directory import PresenceType
from ..domain.errors import Conflict, DomainError
from ..domain.events import DomainEvent
from ..ports.clock import TimerHandle
from .acd_commands import (
    OfferLeg,
    callback_due,
    cancel_offers,
    drop_leg,
    overflow,
    ring,
    stop_stale_offers,
    waiting_leg,
)
from .acd_desk import QueueDesk
from .acd_mapping import agent_profile, is_acd_queue, memberships, queue_config, thresholds
from .agents import AgentService
from .auth import Actor, system_actor
from .calls import CallService
from .core import Core
from .directory import Directory
from .skills import SkillService

log = logging.getLogger(__name__)

WAITING = (QueueCallState.WAITING, QueueCallState.OFFERED)
REJECTED = (HangupCause.REJECTED, HangupCause.BUSY)


@dataclass(slots=True)
class _Item:
    tenant_id: str
    outputs: list[Output]
    done: asyncio.Future[None] | None = None
    drop_leg: tuple[str, str | None] | None = None  # a refused answer's leg (and queue)


class AcdService:
    def __init__(
        self,
        core: Core,
        directory: Directory,
        calls: CallService,
        agents: AgentService,
        skills: SkillService,
    ) -> None:
        self.core, self.directory, self.calls = core, directory, calls
        self.agents, self.skills = agents, skills
        self.engines: dict[str, AcdEngine] = {}
        self.legs: dict[str, OfferLeg] = {}  # agent leg id -> offer
        self._offer_legs: dict[tuple[str, str], str] = {}  # (engine call, agent) -> leg id
        self._aliases: dict[str, str] = {}  # callback call id -> engine call id
        self._wrapping: dict[str, str] = {}  # agent -> the call whose wrap-up is pending
        self.handled: dict[str, tuple[int, float]] = {}  # queue -> (calls, talk seconds)
        self.agent_totals: dict[str, tuple[int, float]] = {}  # agent -> (calls, talk seconds)
        self.desk = QueueDesk(self)
        self._configs: dict[str, QueueConfig] = {}
        self._profiles: dict[str, AgentProfile] = {}  # as the engine was last given them
        self._profile_cache: dict[str, AgentProfile] = {}
        self._tenant_index: dict[str, tuple[dict[str, dict[str, int]], dict[str, set[int]]]] = {}
        self._signature: tuple[int, ...] = ()
        self._held: tuple[object, ...] = ()
        self._timers: dict[str, tuple[float, TimerHandle]] = {}
        self._outbox: asyncio.Queue[_Item] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._started = False
        self._capture: list[DomainEvent] | None = None  # see calls_committing

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Build the engines from the directory, the agents' states and the calls still queued.

        Offers in flight did not survive: queued calls are re-arrived in arrival order (their
        ``created_at``), and agents are made available per their (reconciled) state.
        """
        queued = sorted(
            (c for c in self.calls.calls.values() if c.state is CallState.QUEUED),
            key=lambda c: (c.created_at, c.id),
        )
        for call in queued:
            await stop_stale_offers(self, call)
        now = self.now()
        self._started = True
        self._refresh(now, force=True)
        for call in queued:
            live = self.calls.calls.get(call.id)
            if live is not None:
                self._follow_call(live, now, arrived_at=live.created_at.timestamp())
        self.core.saved_listeners.append(self._config_saved)
        self._worker = asyncio.create_task(self._run(), name="callbridge-acd")

    async def stop(self) -> None:
        if self._worker is not None:
            if not self._worker.done():
                await self._outbox.join()
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        self._started = False
        if self._config_saved in self.core.saved_listeners:
            self.core.saved_listeners.remove(self._config_saved)
        for _, timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    async def settle(self) -> None:
        """Wait until every output so far has been carried out (tests, benchmarks)."""
        await self._outbox.join()

    @property
    def idle(self) -> bool:
        return self._outbox.empty()

    def now(self) -> float:
        return self.core.clock.now().timestamp()

    def actor(self, tenant_id: str) -> Actor:
        return system_actor(self.directory.tenants[tenant_id].telco_id)

    # ------------------------------------------------------------------ directory -> engine

    def _refresh(self, now: float, *, force: bool = False) -> None:
        """Follow queue, membership and skill changes: run soon after every configuration save
        (``Core.saved_listeners``); a cheap identity check of the documents decides."""
        d = self.directory
        # the directory replaces a document when it changes: compare the documents' ids, and
        # hold the documents so that no id can be reused by a new one
        docs = (*d.queues.values(), *self.skills.agent_skills.values(), *d.extensions.values())
        signature = tuple(map(id, docs))
        if signature == self._signature and not force:
            return
        self._signature, self._held = signature, docs
        self._tenant_index.clear()
        self._profile_cache.clear()
        for q in sorted(d.queues.values(), key=lambda q: q.id):
            if not is_acd_queue(q):
                continue
            config = queue_config(q)
            if self._configs.get(q.id) != config:
                self._configs[q.id] = config
                engine = self.engines.setdefault(q.tenant_id, AcdEngine())
                self._emit(q.tenant_id, engine.configure_queue(config, now))
        for ext in sorted(d.extensions.values(), key=lambda e: e.id):
            if ext.is_agent or ext.id in self._profiles:
                self._sync_agent(ext.tenant_id, ext.id, now)

    def _profile_of(self, tenant_id: str, extension_id: str) -> AgentProfile:
        """Cached until the directory changes (see :meth:`_refresh`)."""
        profile = self._profile_cache.get(extension_id)
        if profile is not None:
            return profile
        index = self._tenant_index.get(tenant_id)
        if index is None:
            queues = self.directory.queues_of(tenant_id)
            index = self._tenant_index[tenant_id] = (memberships(queues), thresholds(queues))
        skills = self.skills.agent_skills.get(extension_id)
        profile = agent_profile(extension_id, index[0].get(extension_id, {}), skills, index[1])
        self._profile_cache[extension_id] = profile
        return profile

    def _sync_agent(self, tenant_id: str, ext_id: str, now: float) -> None:
        """Make the engine's view of one agent match its presence, phone and profile."""
        engine = self.engines.get(tenant_id)
        if engine is None:
            return
        ext = self.directory.extensions.get(ext_id)
        state = self.agents.states.get(ext_id)
        slot = engine.agents.get(ext_id)
        profile = self._profile_of(tenant_id, ext_id) if ext is not None else None
        member = profile is not None and bool(profile.queues)
        ready = (
            ext is not None
            and ext.is_agent
            and state is not None
            and state.presence is PresenceType.READY
        )
        wrapping = ext_id in self._wrapping or (
            state is not None and state.phone is PhoneState.WRAPUP
        )
        busy = any(v.leg_id not in self.legs for v in self.agents.legs.legs_of(ext_id))
        if profile is not None and ready and member and not wrapping and not busy:
            if slot is None or not slot.ready or self._profiles.get(ext_id) != profile:
                self._profiles[ext_id] = profile
                self._emit(tenant_id, engine.agent_available(profile, now))
            return
        self._profiles.pop(ext_id, None)
        if slot is None:
            return
        sign_out = not (ext is not None and member and state is not None and state.signed_in)
        if slot.ready or (sign_out and not slot.signing_out):
            log.debug(
                "agent %s unavailable: ready=%s member=%s wrapping=%s busy=%s",
                ext_id, ready, member, wrapping, busy,
            )  # fmt: skip
            self._emit(tenant_id, engine.agent_unavailable(ext_id, now, sign_out=sign_out))

    def _config_saved(self) -> None:
        """A configuration change was saved: queues, members or skills may have changed."""
        if self._started:
            self._refresh(self.now())

    # ------------------------------------------------------------------ inputs: agents

    async def agents_committed(self, states: list[AgentState]) -> None:
        """The agent service's listener: presence or phone of these agents changed."""
        if not self._started:
            return
        now = self.now()
        for state in states:
            pending = self._wrapping.get(state.extension_id)
            if pending is not None and not (
                state.phone in (PhoneState.TALKING, PhoneState.HELD) and state.call_id == pending
            ):
                del self._wrapping[state.extension_id]  # its state shows the wrap-up (or not)
            self._sync_agent(state.tenant_id, state.extension_id, now)

    # ------------------------------------------------------------------ inputs: calls

    def calls_committing(self, changes: list[tuple[Call, list[DomainEvent]]]) -> None:
        """The call service's pre-commit hook: the engine follows each call as it is about to be
        committed, and the queue events this causes join that commit (right after the call's
        own events); the commands go to the worker, which waits for the call's lock."""
        if not self._started:
            return
        now = self.now()
        for call, events in changes:
            self._capture = []
            try:
                self._follow_call(call, now)
            except DomainError:  # a bug, not a race: the others still get their turn
                log.exception("call %s tenant %s: ACD input failed", call.id, call.tenant_id)
            finally:
                events.extend(self._capture)
                self._capture = None

    async def calls_committed(self, calls: list[Call]) -> None:
        """The call service's observer: agents whose legs changed (after the agent service's
        observer has indexed them) are made available or not."""
        if not self._started:
            return
        now = self.now()
        agents: set[tuple[str, str]] = set()
        for call in calls:
            for leg_id in call.legs:
                offer = self.legs.get(leg_id)
                if offer is not None and offer.ended:
                    # only now: until the agent service has seen the leg end, it is ours
                    del self.legs[leg_id]
            for leg in call.legs.values():
                if leg.extension_id is not None:
                    agents.add((call.tenant_id, leg.extension_id))
        for tenant_id, ext_id in sorted(agents):
            self._sync_agent(tenant_id, ext_id, now)

    def _follow_call(self, call: Call, now: float, *, arrived_at: float | None = None) -> None:
        engine = self.engines.get(call.tenant_id)
        if engine is None:
            return
        tenant = call.tenant_id
        key = self._aliases.get(call.id, call.id)
        for leg in call.legs.values():
            offer = self.legs.get(leg.id)
            if offer is not None:
                self._follow_offer(engine, offer, leg, now)
        qc = engine.calls.get(key)
        if call.ended:
            self._aliases.pop(call.id, None)
            if qc is not None and qc.state in WAITING and key == call.id and qc.callback is None:
                self._emit(tenant, engine.abandoned(key, now))
            return
        if key != call.id:
            return  # a callback's call: only its agent leg matters
        queue = self.directory.queues.get(call.queue_id or "")
        if call.state is CallState.QUEUED and queue is not None and is_acd_queue(queue):
            if qc is None:
                customer = waiting_leg(call)
                others = [
                    leg
                    for leg in call.live_legs()
                    if customer is None or (leg.id != customer.id and leg.id not in self.legs)
                ]
                if customer is not None and not others:
                    priority = self._did_priority(call)  # (#4)
                    self._input(tenant, lambda: engine.arrive(
                        call.id, queue.id, now, priority=priority, arrived_at=arrived_at
                    ))  # fmt: skip
            elif qc.queue_id != queue.id and qc.state in WAITING:
                self._input(tenant, lambda: engine.move(call.id, queue.id, now))
        elif (
            qc is not None
            and qc.state in WAITING
            and qc.callback is None
            and not any(  # a refused late answer bridged it: the caller goes back to waiting
                (o := self.legs.get(g.id)) is not None and o.cancelled for g in call.live_legs()
            )
        ):
            # left the queue some other way (a transfer on the call API was answered, ...)
            self._input(tenant, lambda: engine.remove(call.id, now, reason="left"))

    def _follow_offer(self, engine: AcdEngine, offer: OfferLeg, leg: Leg, now: float) -> None:
        tenant, key, agent = offer.tenant_id, offer.call_id, offer.agent_id
        qc = engine.calls.get(key)
        if offer.ended:
            return  # reported already; forgotten when its commit is observed
        if offer.cancelled:
            if not leg.live:
                offer.ended = True
            return
        mine = qc is not None and qc.offers.get(agent) == offer.serial
        if leg.answered_at is not None and not offer.answered:  # (and maybe gone already)
            offer.answered = True
            try:
                if not mine:
                    raise Conflict("the offer was withdrawn", code="offer_not_found")
                self._emit(tenant, engine.answered(key, agent, now))
            except DomainError as exc:  # lost a race (answered elsewhere, timed out)
                log.info("call %s agent %s answered too late: %s", key, agent, exc.message)
                offer.answered = False
                if leg.live:  # hang up this very leg (a newer offer may ring the agent now)
                    offer.cancelled = True
                    queue_id = qc.queue_id if qc is not None and key in self.calls.calls else None
                    self._outbox.put_nowait(_Item(tenant, [], drop_leg=(leg.id, queue_id)))
                    return
            qc = engine.calls.get(key)
        if leg.live:
            return
        offer.ended = True  # forgotten once committed (see calls_committed)
        if self._offer_legs.get((key, agent)) == leg.id:
            del self._offer_legs[(key, agent)]
        if qc is None or (qc.agent_id != agent and agent not in qc.offers):
            return
        if offer.answered and qc.state is QueueCallState.CONNECTED and qc.agent_id == agent:
            queue = self.directory.queues.get(qc.queue_id)
            if queue is not None and queue.wrapup_s > 0 and key not in self._aliases.values():
                self._wrapping[agent] = key
                self._emit(tenant, engine.agent_unavailable(agent, now))
            talk = now - qc.answered_at
            count, seconds = self.handled.get(qc.queue_id, (0, 0.0))
            self.handled[qc.queue_id] = (count + 1, seconds + talk)
            count, seconds = self.agent_totals.get(agent, (0, 0.0))
            self.agent_totals[agent] = (count + 1, seconds + talk)
            self._emit(tenant, engine.ended(key, now))
        elif not offer.answered and mine:
            rejected = leg.cause in REJECTED
            self._emit(tenant, engine.missed(key, agent, now, rejected=rejected))

    def _did_priority(self, call: Call) -> int:
        """(#4) An inbound caller who came in through a DID of the call's tenant enters the
        queue with the DID's priority (0 otherwise). The DID is the call's To number, the very
        lookup ``CallPump._route`` made, so it also holds after an overflow or a restart."""
        if call.origin is not CallOrigin.INBOUND:
            return 0
        did = self.directory.did_for(call.to_number)
        return did.priority if did is not None and did.tenant_id == call.tenant_id else 0

    def _input(self, tenant_id: str, step: Callable[[], list[Output]]) -> None:
        try:
            self._emit(tenant_id, step())
        except DomainError as exc:
            log.warning("tenant %s: ACD input refused: %s", tenant_id, exc.message)

    # ------------------------------------------------------------------ outputs

    def _emit(
        self, tenant_id: str, outputs: list[Output], done: asyncio.Future[None] | None = None
    ) -> None:
        if self._capture is not None:  # inside a call's commit: its events join it
            self._capture.extend(
                o for o in outputs if isinstance(o, DomainEvent) and not o.type.startswith("agent.")
            )
            outputs = [o for o in outputs if not isinstance(o, DomainEvent)]
        if outputs or done is not None:
            self._outbox.put_nowait(_Item(tenant_id, outputs, done))
        self._arm(tenant_id)

    def _arm(self, tenant_id: str) -> None:
        engine = self.engines.get(tenant_id)
        if engine is None or not self._started:
            return
        deadline = engine.next_deadline()
        armed = self._timers.get(tenant_id)
        if armed is not None and armed[0] == deadline:
            return
        if armed is not None:
            armed[1].cancel()
            del self._timers[tenant_id]
        if deadline is None:
            return
        delay = max(0.0, deadline - self.now())
        handle = self.core.clock.call_later(delay, lambda: self._tick(tenant_id))
        self._timers[tenant_id] = (deadline, handle)

    def _tick(self, tenant_id: str) -> None:
        self._timers.pop(tenant_id, None)
        engine = self.engines.get(tenant_id)
        if engine is None or not self._started:
            return
        self._emit(tenant_id, engine.tick(self.now()))

    async def _run(self) -> None:
        while True:
            item = await self._outbox.get()
            try:
                if item.drop_leg is not None:
                    await drop_leg(self, *item.drop_leg)
                await self._carry_out(item.tenant_id, item.outputs)
            except Exception:
                log.exception("tenant %s: carrying out ACD outputs failed", item.tenant_id)
            finally:
                if item.done is not None and not item.done.done():
                    item.done.set_result(None)
                self._outbox.task_done()

    async def _carry_out(self, tenant_id: str, outputs: list[Output]) -> None:
        events = [
            o for o in outputs if isinstance(o, DomainEvent) and not o.type.startswith("agent.")
        ]
        if events:
            batch = self.core.batch()
            batch.events.extend((tenant_id, e) for e in events)
            await self.core.commit(batch)
        for group in _grouped([o for o in outputs if not isinstance(o, DomainEvent)]):
            log.debug("tenant %s: %s", tenant_id, group)
            try:
                await self._command(tenant_id, group)
            except Exception:
                log.exception("tenant %s: ACD command %s failed", tenant_id, group)

    async def _command(self, tenant_id: str, group: list[Command]) -> None:
        cmd = group[0]
        if isinstance(cmd, Offer):
            await ring(self, tenant_id, [c for c in group if isinstance(c, Offer)])
        elif isinstance(cmd, CancelOffer):
            await cancel_offers(self, tenant_id, [c for c in group if isinstance(c, CancelOffer)])
        elif isinstance(cmd, Overflow):
            await overflow(self, tenant_id, cmd)
        elif isinstance(cmd, CallbackDue):
            await callback_due(self, tenant_id, cmd)
        elif isinstance(cmd, AgentToAway):
            await self.agents.set_state(self.actor(tenant_id), tenant_id, cmd.agent_id, cmd.option)

    # ------------------------------------------------------------------ bookkeeping for commands

    def remember(self, offer: OfferLeg) -> None:
        self.legs[offer.leg_id] = offer
        self._offer_legs[(offer.call_id, offer.agent_id)] = offer.leg_id

    def connected(self, tenant_id: str, call_id: str, agent_id: str) -> bool:
        """The engine has ``call_id`` connected to ``agent_id`` through the offer's leg."""
        engine = self.engines.get(tenant_id)
        qc = None if engine is None else engine.calls.get(call_id)
        leg_id = self._offer_legs.get((call_id, agent_id))
        offer = None if leg_id is None else self.legs.get(leg_id)
        return (
            qc is not None
            and qc.state is QueueCallState.CONNECTED
            and qc.agent_id == agent_id
            and offer is not None
            and offer.answered
        )

    def forget_offer(self, call_id: str, agent_id: str) -> str | None:
        """The leg of an offer the engine ended: no longer followed as an offer."""
        leg_id = self._offer_legs.pop((call_id, agent_id), None)
        offer = None if leg_id is None else self.legs.get(leg_id)
        if offer is not None:
            offer.cancelled = True  # followed until it has gone: still the agent's offer leg
        return leg_id

    def alias(self, call_id: str, engine_call_id: str) -> None:
        self._aliases[call_id] = engine_call_id

    async def run(self, tenant_id: str, outputs: list[Output]) -> None:
        """Hand outputs of an API action to the worker and wait until they are carried out."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._emit(tenant_id, outputs, done)
        await done


def _grouped(commands: list[Command]) -> list[list[Command]]:
    """Consecutive offers (or cancellations) of one call are carried out in one commit."""
    groups: list[list[Command]] = []
    for cmd in commands:
        last = groups[-1][0] if groups else None
        if (
            isinstance(cmd, Offer | CancelOffer)
            and type(last) is type(cmd)
            and last.call_id == cmd.call_id
        ):
            groups[-1].append(cmd)
        else:
            groups.append([cmd])
    return groups
