"""Agents: sign-in, presence, and the phone and queue state that follow the agent's legs.

Theory of operation
-------------------
Presence changes are commands (:meth:`AgentService.set_state`, :meth:`sign_in`, :meth:`sign_out`).
Phone and queue state are never set by a client: the call service tells the agent service about
every call it commits (:meth:`CallService.add_observer`), :class:`AgentLegs` indexes the agents'
legs, and each touched agent's state walks the phone table to what its legs show. A leg ending
after an answer on a queue call with a wrap-up duration leaves the phone in ``wrapup`` until the
duration runs out (a timer on the Clock) or the agent says ``Ready``.

Offers: a leg ringing on an agent's extension in a call that belongs to a queue is that queue's
offer. If it still rings after the queue's ring timeout (a Clock timer), or the agent's side ends
it unanswered (declined, busy, no answer), it is *missed*: ``consecutive_missed`` grows and an
``agent.offer_missed`` event is logged; when the queue's ``max_consecutive_misses`` is reached, a
ready agent is moved to the queue's ``missed_presence`` away option.

Every change of one agent runs under that agent's lock on a copy of its state, is committed
(document + events, one transaction) and only then replaces the cached state. Timers and the tasks
they start are owned here and cancelled by :meth:`stop`.

Restart: :meth:`start` loads the saved states after the call service has ended the calls the
switch lost, and reconciles: an agent shown ringing, talking or held without a live leg goes
idle; an expired wrap-up ends; a pending one is re-armed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from datetime import datetime, timedelta
from typing import Any

from ..domain.agents import AgentState, PhoneState
from ..domain.calls import Call
from ..domain.directory import AgentPolicy, Extension, PresenceType, Queue
from ..domain.errors import Conflict, Invalid, PermissionDenied
from ..domain.events import DomainEvent, EventCategory
from ..domain.tenancy import Permission
from ..ports.clock import TimerHandle
from ..ports.storage import Put
from .agent_legs import AgentLegs, EndedLeg, LegView
from .auth import Actor
from .core import Core, KeyedLocks
from .directory import Directory
from .queue_rules import check_miss_rule

log = logging.getLogger(__name__)

READY = "Ready"
DEFAULT_SIGN_OUT = "Sign Out"

_Change = tuple[Extension, AgentState, list[DomainEvent]]
# extension id, its ended legs, its lead leg, when the call showed it
_Seen = tuple[str, list[EndedLeg], LegView | None, datetime]

#: Told about the agent states of every commit, after they are cached (the ACD follows presence
#: and wrap-up this way). Its errors are logged, never passed to the command.
AgentListener = Callable[[list[AgentState]], Awaitable[None]]


class AgentService:
    def __init__(self, core: Core, directory: Directory) -> None:
        self.core = core
        self.directory = directory
        self.states: dict[str, AgentState] = {}  # by extension id
        self.policies: dict[str, AgentPolicy] = {}  # by tenant id
        self.legs = AgentLegs(self._is_agent)
        self._locks = KeyedLocks()
        self._wrapup_timers: dict[str, TimerHandle] = {}  # extension id -> timer
        self._ring_timers: dict[str, TimerHandle] = {}  # leg id -> timer
        self._missed_legs: set[str] = set()  # offers already counted as missed
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = False
        # what the committed calls showed, per agent, in commit order (see calls_committed)
        self._inbox: asyncio.Queue[list[_Seen]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._listeners: list[AgentListener] = []

    def add_listener(self, listener: AgentListener) -> None:
        self._listeners.append(listener)

    # ------------------------------------------------------------------ lifecycle

    async def start(self, live_calls: Callable[[], Iterable[Call]]) -> None:
        """Load saved states and reconcile them with the calls that are live now."""
        self.states = {a.extension_id: a for a in await self.core.load("agent_states", AgentState)}
        policies = await self.core.load("agent_policies", AgentPolicy)
        self.policies = {p.tenant_id: p for p in policies}
        # no await from here until _started: every call committed later is observed
        self.legs.clear()
        for call in live_calls():
            self.legs.update(call)
        self._started = True
        for ext_id in sorted(self.states):
            async with self._locks(ext_id):
                await self._reconcile(ext_id)
        self._worker = asyncio.create_task(self._run(), name="callbridge-agent-phones")

    async def stop(self) -> None:
        """Finish following what the calls already showed; cancel timers and their work."""
        if self._worker is not None:
            if not self._worker.done():
                await self._inbox.join()
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        self._started = False
        for timer in [*self._wrapup_timers.values(), *self._ring_timers.values()]:
            timer.cancel()
        self._wrapup_timers.clear()
        self._ring_timers.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def settle(self) -> None:
        """Wait until what the calls showed so far is followed and fired timers' work is done."""
        while True:
            await self._inbox.join()
            if not self._tasks:
                return
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        if not self._started:
            work.close()
            return
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("agent task %s failed", task.get_name(), exc_info=task.exception())

    # ------------------------------------------------------------------ reads

    def _is_agent(self, extension_id: str) -> bool:
        ext = self.directory.extensions.get(extension_id)
        return ext is not None and ext.is_agent

    def state(self, actor: Actor, tenant_id: str, extension_id: str) -> AgentState:
        actor.require(Permission.AGENT_CONTROL)
        return self._state(self.directory.extension(actor, tenant_id, extension_id))

    def states_of(self, actor: Actor, tenant_id: str) -> list[tuple[Extension, AgentState]]:
        actor.require(Permission.AGENT_CONTROL)
        self.directory.tenant(actor, tenant_id)
        return [(e, self._state(e)) for e in self.directory.extensions_of(tenant_id) if e.is_agent]

    def _state(self, ext: Extension) -> AgentState:
        state = self.states.get(ext.id)
        if state is None or state.tenant_id != ext.tenant_id:
            now = self.core.clock.now()
            state = AgentState(
                tenant_id=ext.tenant_id, extension_id=ext.id, presence_since=now, phone_since=now
            )
        return state

    # ------------------------------------------------------------------ presence commands

    def _agent_ext(self, actor: Actor, tenant_id: str, extension_id: str) -> Extension:
        actor.require(Permission.AGENT_CONTROL)
        ext = self.directory.extension(actor, tenant_id, extension_id)
        agent_self = actor.principal.extension_id
        if (
            not actor.is_telco
            and agent_self not in (None, ext.id)
            and not actor.has(Permission.TENANT_EDIT)
        ):
            raise PermissionDenied("an agent may only change its own state")
        if not ext.is_agent:
            raise Invalid(f"extension {ext.number} is not an agent", code="extension_not_agent")
        return ext

    async def set_state(
        self, actor: Actor, tenant_id: str, extension_id: str, name: str
    ) -> AgentState:
        """``Ready``, or an away or sign-out option by name. ``Ready`` during wrap-up ends it."""
        ext = self._agent_ext(actor, tenant_id, extension_id)
        kind, resolved = self.directory.resolve_presence(tenant_id, name)
        async with self._locks(ext.id):
            state = self._state(ext).model_copy()
            now = self.core.clock.now()
            events: list[DomainEvent] = []
            if kind is PresenceType.READY and state.phone is PhoneState.WRAPUP:
                events += state.end_wrapup(now)
                if state.presence is not PresenceType.READY:
                    events += state.set_presence(kind, resolved, now)
            else:
                events += state.set_presence(kind, resolved, now)
            return await self._commit(ext, state, events)

    async def sign_in(
        self, actor: Actor, tenant_id: str, extension_id: str, name: str = READY
    ) -> AgentState:
        """Sign in as ready (default) or straight into an away option."""
        ext = self._agent_ext(actor, tenant_id, extension_id)
        kind, resolved = self.directory.resolve_presence(tenant_id, name)
        if kind is PresenceType.SIGN_OUT:
            raise Invalid(f"{name!r} is a sign-out option", code="presence_not_sign_in")
        async with self._locks(ext.id):
            state = self._state(ext).model_copy()
            if state.signed_in:
                raise Conflict("the agent is already signed in", code="agent_already_signed_in")
            events = state.set_presence(kind, resolved, self.core.clock.now())
            return await self._commit(ext, state, events)

    async def sign_out(
        self, actor: Actor, tenant_id: str, extension_id: str, name: str | None = None
    ) -> AgentState:
        """Sign out with a sign-out option (default: the tenant's first, else ``Sign Out``)."""
        ext = self._agent_ext(actor, tenant_id, extension_id)
        if name is None:
            options = [
                o
                for o in self.directory.presence_options_of(tenant_id)
                if o.type is PresenceType.SIGN_OUT
            ]
            resolved = options[0].name if options else DEFAULT_SIGN_OUT
        else:
            kind, resolved = self.directory.resolve_presence(tenant_id, name)
            if kind is not PresenceType.SIGN_OUT:
                raise Invalid(f"{name!r} is not a sign-out option", code="presence_not_sign_out")
        async with self._locks(ext.id):
            state = self._state(ext).model_copy()
            events = state.set_presence(PresenceType.SIGN_OUT, resolved, self.core.clock.now())
            return await self._commit(ext, state, events)

    # ------------------------------------------------------------------ the commit path

    async def _commit(
        self, ext: Extension, state: AgentState, events: list[DomainEvent]
    ) -> AgentState:
        await self._commit_many([(ext, state, events)])
        return state

    async def _commit_many(self, changes: list[_Change]) -> None:
        """Write the changed agents in one transaction; then cache them and (re)arm timers."""
        # a change without an event (the phone moved to another call in the same state) is saved
        changes = [c for c in changes if c[2] or c[1] != self.states.get(c[0].id)]
        batch = self.core.batch()
        for ext, state, events in changes:
            for e in events:
                e.data["tenant_id"] = ext.tenant_id
                e.data["number"] = ext.number
            doc = state.model_dump(mode="json")
            batch.puts.append(Put("agent_states", ext.id, ext.tenant_id, doc))
            batch.events.extend((ext.tenant_id, e) for e in events)
        if not batch:
            return
        await self.core.commit(batch)
        for ext, state, _ in changes:
            self.states[ext.id] = state
            self._arm_wrapup(state)
        for listener in self._listeners:
            try:
                await listener([state for _, state, _ in changes])
            except Exception:
                log.exception("agent listener failed")

    # ------------------------------------------------------------------ following the legs

    async def calls_committed(self, calls: list[Call]) -> None:
        """The call service's observer. It only takes note (in commit order) of what each touched
        agent's legs show: the agent states follow in :meth:`_run`, so the call path never waits
        for the agents' commits."""
        if not self._started:
            return
        touched: dict[str, list[EndedLeg]] = {}
        for call in calls:
            for ext_id, ended in self.legs.update(call).items():
                touched.setdefault(ext_id, []).extend(ended)
        if touched:
            now = self.core.clock.now()
            seen = [(e, ended, self.legs.observed(e), now) for e, ended in sorted(touched.items())]
            self._inbox.put_nowait(seen)

    async def _run(self) -> None:
        """Follow the agents' legs: whatever piled up is applied in order and committed at once."""
        while True:
            items = [await self._inbox.get()]
            while not self._inbox.empty() and len(items) < 256:
                items.append(self._inbox.get_nowait())
            try:
                await self._follow_all([seen for item in items for seen in item])
            except Exception:
                log.exception("following the agents' phones failed")
            finally:
                for _ in items:
                    self._inbox.task_done()

    async def _follow_all(self, seen: list[_Seen]) -> None:
        async with contextlib.AsyncExitStack() as held:
            for ext_id in sorted({s[0] for s in seen}):
                await held.enter_async_context(self._locks(ext_id))
            drafts: dict[str, _Change] = {}
            for ext_id, ended, lead, at in seen:
                change = self._follow(ext_id, ended, lead, at, drafts.get(ext_id))
                if change is not None:
                    drafts[ext_id] = change
            await self._commit_many(list(drafts.values()))

    def _follow(
        self,
        ext_id: str,
        ended: list[EndedLeg],
        lead: LegView | None,
        now: datetime,
        draft: _Change | None,
    ) -> _Change | None:
        """Walk the agent's state (its draft, when several notes are applied together) to what
        one note showed: ``lead`` is the leg that decided the phone state then."""
        ext = self.directory.extensions.get(ext_id)
        if ext is None or not ext.is_agent:
            return None
        if draft is not None:
            _, state, events = draft
        else:
            state, events = self._state(ext).model_copy(), []
        for gone in ended:
            self._cancel_ring(gone.view.leg_id)
        # a ringing offer the agent's side ended unanswered is missed (unless counted already)
        missed = False
        for gone in ended:
            leg_id = gone.view.leg_id
            if gone.answered or gone.view.queue_id is None:
                self._missed_legs.discard(leg_id)
                continue
            if leg_id in self._missed_legs:
                self._missed_legs.discard(leg_id)
                missed = True
            elif gone.not_taken:
                missed = True
                events += self._miss(ext, state, gone.view.queue_id, gone.view.call_id)
        if lead is not None:
            if state.phone is PhoneState.WRAPUP:  # on the phone again: after-call work is over
                events += state.end_wrapup(now)
            events += state.follow(
                lead.phone,
                now,
                call_id=lead.call_id,
                missed=missed,
                queue_call=lead.queue_id is not None,
            )
            events += state.set_queue(lead.queue_id, now)
            for view in self.legs.legs_of(ext_id):
                if view.queue_id is not None:  # only queue offers ring out (the rest: many)
                    self._watch_offer(ext, view.leg_id, now)
        else:
            finished = [g for g in ended if g.answered]
            wrapup_s = 0
            if finished and finished[-1].view.queue_id is not None:
                queue = self.directory.queues.get(finished[-1].view.queue_id)
                wrapup_s = queue.wrapup_s if queue is not None else 0
            events += state.follow(PhoneState.IDLE, now, wrapup_seconds=wrapup_s, missed=missed)
            if state.phone is not PhoneState.WRAPUP:
                events += state.set_queue(None, now)
        return ext, state, events

    # ------------------------------------------------------------------ offers and misses

    def _watch_offer(self, ext: Extension, leg_id: str, seen_at: datetime) -> None:
        """Arm the ring timeout of a queue offer first seen ringing at ``seen_at``."""
        view = self.legs.leg(ext.id, leg_id)
        if view is None or view.queue_id is None:
            return
        if view.phone is not PhoneState.RINGING:
            self._cancel_ring(leg_id)
            return
        if leg_id in self._ring_timers or leg_id in self._missed_legs:
            return
        queue = self.directory.queues.get(view.queue_id)
        if queue is None:
            return
        late = (self.core.clock.now() - seen_at).total_seconds()
        self._ring_timers[leg_id] = self.core.clock.call_later(
            max(0.0, queue.ring_timeout_s - late),
            lambda: self._spawn(f"agent-ring-timeout-{leg_id}", self._ring_timeout(ext, leg_id)),
        )

    def _cancel_ring(self, leg_id: str) -> None:
        timer = self._ring_timers.pop(leg_id, None)
        if timer is not None:
            timer.cancel()

    async def _ring_timeout(self, ext: Extension, leg_id: str) -> None:
        self._ring_timers.pop(leg_id, None)
        async with self._locks(ext.id):
            view = self.legs.leg(ext.id, leg_id)
            if view is None or view.phone is not PhoneState.RINGING or view.queue_id is None:
                return
            self._missed_legs.add(leg_id)
            state = self._state(ext).model_copy()
            events = self._miss(ext, state, view.queue_id, view.call_id)
            await self._commit(ext, state, events)

    def _miss(
        self, ext: Extension, state: AgentState, queue_id: str, call_id: str
    ) -> list[DomainEvent]:
        """Count a missed offer on ``state``; apply the queue's miss rule."""
        events = state.miss_offer(queue_id, call_id)
        queue = self.directory.queues.get(queue_id)
        rule: Queue | AgentPolicy = self._policy(ext.tenant_id)
        if queue is not None and queue.max_consecutive_misses > 0:
            rule = queue
        if (
            rule.max_consecutive_misses == 0
            or rule.missed_presence is None
            or state.consecutive_missed < rule.max_consecutive_misses
            or state.presence is not PresenceType.READY
        ):
            return events
        try:
            kind, name = self.directory.resolve_presence(ext.tenant_id, rule.missed_presence)
        except Invalid:
            log.warning(
                "tenant %s queue %s: missed_presence %r no longer exists",
                ext.tenant_id,
                queue_id,
                rule.missed_presence,
            )
            return events
        if kind is not PresenceType.AWAY:
            return events
        now = self.core.clock.now()
        return events + state.set_presence(kind, name, now, reason="missed_offers")

    # ------------------------------------------------------------------ the tenant's policy

    def _policy(self, tenant_id: str) -> AgentPolicy:
        return self.policies.get(tenant_id) or AgentPolicy(tenant_id=tenant_id)

    def policy(self, actor: Actor, tenant_id: str) -> AgentPolicy:
        actor.require(Permission.TENANTS_VIEW)
        self.directory.tenant(actor, tenant_id)
        return self._policy(tenant_id)

    async def set_policy(
        self, actor: Actor, tenant_id: str, max_consecutive_misses: int, missed_presence: str | None
    ) -> AgentPolicy:
        actor.require(Permission.TENANT_EDIT)
        self.directory.tenant(actor, tenant_id)
        policy = AgentPolicy(
            tenant_id=tenant_id,
            max_consecutive_misses=max_consecutive_misses,
            missed_presence=missed_presence,
        )
        check_miss_rule(
            self.directory, tenant_id, policy.max_consecutive_misses, policy.missed_presence
        )
        event = DomainEvent(
            type="agent_policy.updated",
            category=EventCategory.CONFIG,
            data={"policy": policy.model_dump(mode="json")},
        )
        await self.core.save(tenant_id, put=[("agent_policies", tenant_id, policy)], events=[event])
        self.policies[tenant_id] = policy
        return policy

    # ------------------------------------------------------------------ wrap-up

    def _arm_wrapup(self, state: AgentState) -> None:
        ext_id = state.extension_id
        timer = self._wrapup_timers.pop(ext_id, None)
        if timer is not None:
            timer.cancel()
        if state.phone is not PhoneState.WRAPUP or state.wrapup_until is None:
            return
        delay = max(0.0, (state.wrapup_until - self.core.clock.now()).total_seconds())
        self._wrapup_timers[ext_id] = self.core.clock.call_later(
            delay, lambda: self._spawn(f"agent-wrapup-{ext_id}", self._wrapup_over(ext_id))
        )

    async def _wrapup_over(self, ext_id: str) -> None:
        self._wrapup_timers.pop(ext_id, None)
        async with self._locks(ext_id):
            await self._end_expired_wrapup(ext_id)

    async def _end_expired_wrapup(self, ext_id: str) -> None:
        ext = self.directory.extensions.get(ext_id)
        state = self.states.get(ext_id)
        if ext is None or state is None or state.phone is not PhoneState.WRAPUP:
            return
        now = self.core.clock.now()
        if state.wrapup_until is not None and state.wrapup_until - now > timedelta(0):
            self._arm_wrapup(state)  # extended meanwhile
            return
        draft = state.model_copy()
        await self._commit(ext, draft, draft.end_wrapup(now))

    # ------------------------------------------------------------------ restart

    async def _reconcile(self, ext_id: str) -> None:
        ext = self.directory.extensions.get(ext_id)
        state = self.states.get(ext_id)
        if ext is None or state is None:
            self.states.pop(ext_id, None)
            return
        if state.phone is PhoneState.WRAPUP and self.legs.observed(ext_id) is None:
            await self._end_expired_wrapup(ext_id)
            return
        draft = state.model_copy()
        now = self.core.clock.now()
        lead = self.legs.observed(ext_id)
        if lead is None:
            events = draft.follow(PhoneState.IDLE, now)
            if draft.phone is not PhoneState.WRAPUP:
                events += draft.set_queue(None, now)
        else:
            events = draft.follow(lead.phone, now, call_id=lead.call_id)
            events += draft.set_queue(lead.queue_id, now)
        if events:
            log.warning(
                "tenant %s agent %s: phone %s had no live call after the restart; now %s",
                ext.tenant_id,
                ext.number,
                state.phone,
                draft.phone,
            )
        await self._commit(ext, draft, events)
