"""The engine's invariants, checked from its records (used by the property tests and the bench).

1. An agent has at most one outstanding offer: a reserved agent names one call, and that call is
   offered and holds the agent's offer; every offer of an offered call points at a reserved agent
   that names it back. A waiting call holds no offer.
2. An agent is busy only with a live call: a busy agent names a connected call connected to it,
   and every connected call's agent is busy with it. Idle and wrap-up agents name no call.
3. Every waiting or offered call is in its queue's line exactly once, and the line is in customer
   order; nothing else is in a line.
4. The idle index holds exactly the ready, idle members of each queue.
5. Work-conserving: no call is waiting while an idle, ready member of its queue has its skills.
   (A call with an offer in flight is not waiting.)
"""

from __future__ import annotations

from .engine import AcdEngine
from .tables import AgentState, CallState


def violations(engine: AcdEngine) -> list[str]:
    found: list[str] = []
    calls, agents = engine.calls, engine.agents
    for agent in agents.values():
        aid, call = agent.agent_id, calls.get(agent.call_id or "")
        if agent.state is AgentState.RESERVED:
            if call is None or call.state is not CallState.OFFERED or aid not in call.offers:
                found.append(f"agent {aid} is reserved without a live offer")
        elif agent.state is AgentState.BUSY:
            if call is None or call.state is not CallState.CONNECTED or call.agent_id != aid:
                found.append(f"agent {aid} is busy without a live call")
        elif agent.call_id is not None:
            found.append(f"agent {aid} is {agent.state} but names call {agent.call_id}")
    in_line: dict[str, int] = {}
    for qid, queue in engine.queues.items():
        if queue.line != sorted(queue.line):
            found.append(f"queue {qid}: line out of order")
        waiting = [k for k in queue.line if (c := calls.get(k[2])) and c.state is CallState.WAITING]
        if queue.waiting != waiting:
            found.append(f"queue {qid}: waiting index {[k[2] for k in queue.waiting]}")
        for key in queue.line:
            in_line[key[2]] = in_line.get(key[2], 0) + 1
            call = calls.get(key[2])
            if call is None or call.queue_id != qid or call.line_key != key:
                found.append(f"queue {qid}: stray {key[2]} in line")
    for call in calls.values():
        cid = call.call_id
        if call.state is CallState.OFFERED:
            if not call.offers:
                found.append(f"call {cid} is offered to nobody")
            for aid in call.offers:
                held = agents.get(aid)
                if held is None or held.state is not AgentState.RESERVED or held.call_id != cid:
                    found.append(f"call {cid} has a dead offer to {aid}")
        elif call.offers:
            found.append(f"call {cid} is {call.state} with offers {sorted(call.offers)}")
        if call.state is CallState.CONNECTED:
            busy = agents.get(call.agent_id or "")
            if busy is None or busy.state is not AgentState.BUSY or busy.call_id != cid:
                found.append(f"call {cid} is connected to no busy agent")
            if cid in in_line:
                found.append(f"connected call {cid} is still in line")
        elif call.state in (CallState.WAITING, CallState.OFFERED):
            if in_line.get(cid) != 1:
                found.append(f"call {cid} is in line {in_line.get(cid, 0)} times")
        else:
            found.append(f"call {cid} is kept in end state {call.state}")
    idle: dict[str, set[str]] = {qid: set() for qid in engine.queues}
    for agent in agents.values():
        if agent.available:
            for qid in agent.queues:
                if qid in idle:
                    idle[qid].add(agent.agent_id)
    for qid, expected in idle.items():
        members = {a.agent_id for a in agents.values() if qid in a.queues}
        if engine.members(qid) != members:
            found.append(f"queue {qid}: member index {sorted(engine.members(qid))}")
        if engine.idle_agents(qid) != expected:
            found.append(f"queue {qid}: idle index {sorted(engine.idle_agents(qid))}")
        if not expected:
            continue
        for key in engine.queues[qid].line:
            call = calls[key[2]]
            if call.state is not CallState.WAITING:
                continue
            able = sorted(a for a in expected if all(s in agents[a].skills for s in call.need))
            if able:
                found.append(f"call {call.call_id} waits while {able} idle in {qid}")
    return found
