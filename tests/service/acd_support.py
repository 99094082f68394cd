"""Helpers for the ACD service tests: queues with members, customers, what a client sees."""

from __future__ import annotations

from typing import Any

from tests.support import World

from callbridge.domain.calls import Call
from callbridge.domain.events import StoredEvent


async def setup_queue(
    w: World, strategy: str = "longest_idle", members: tuple[str, ...] = ("101", "102"), **kw: Any
) -> None:
    """Queue 300 with these members (priority 1 unless ``priorities``), each signed in Ready."""
    priorities: dict[str, int] = kw.pop("priorities", {})
    members_doc = [{"extension_id": w.ext[n], "priority": priorities.get(n, 1)} for n in members]
    await w.c.directory.update_queue(
        w.admin, w.tenant, w.queue, {"strategy": strategy, "members": members_doc, **kw}
    )
    for n in members:
        await w.c.agents.sign_in(w.admin, w.tenant, w.ext[n])
    await w.settle()


async def arrive(w: World, number: str = "19735550000", to: str = "300") -> str:
    call_id = await w.c.calls.simulate_inbound(w.admin, w.tenant, number, to)
    await w.settle()
    return call_id


def call(w: World, call_id: str) -> Call:
    return w.c.calls.calls[call_id]


def agent_leg(w: World, call_id: str, number: str) -> str:
    """The live leg ringing or talking to ``number`` in the call."""
    legs = [g for g in call(w, call_id).live_legs() if g.number == number]
    assert len(legs) == 1, legs
    return legs[0].id


def ringing(w: World) -> dict[str, str]:
    """Agent number -> call id of every agent leg ringing now."""
    out = {}
    for c in w.c.calls.calls.values():
        for g in c.live_legs():
            if g.extension_id is not None and g.state != "answered":
                out[g.number] = c.id
    return out


async def seen(w: World, after: int = 0) -> list[StoredEvent]:
    return await w.c.core.storage.events(w.tenant, after, 100_000)


def view(events: list[StoredEvent], w: World) -> list[tuple[str, Any]]:
    """The ACD-relevant events a client sees, in order, reduced to (type, detail)."""
    numbers = {v: k for k, v in w.ext.items()}
    out: list[tuple[str, Any]] = []
    for e in events:
        d = e.data
        if e.type == "queue.offered":
            out.append((e.type, numbers[d["agent_id"]]))
        elif e.type in ("queue.entered", "queue.position_changed") and e.category == "queue":
            out.append((e.type, d["position"]))
        elif e.type in ("queue.answered", "queue.abandoned", "queue.callback_requested"):
            out.append((e.type, numbers.get(d.get("agent_id", ""))))
        elif e.type in ("queue.overflowed", "queue.left"):
            out.append((e.type, d.get("reason")))
        elif e.type == "leg.ringing" and d.get("number") in w.ext:
            out.append(("ringing", d["number"]))
        elif e.type == "bridge.created":
            out.append(("bridged", None))
        elif e.type == "call.ended":
            out.append(("call.ended", d.get("cause")))
        elif e.type == "agent.phone_state_changed":
            out.append((f"agent {d['number']}", d["state"]))
        elif e.type == "agent.offer_missed":
            out.append((f"agent {d['number']} missed", d["consecutive_missed"]))
        elif e.type == "agent.presence_changed":
            out.append((f"agent {d['number']}", d["presence"]["name"]))
    return out
