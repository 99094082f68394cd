"""CCS event frames: the core's event log rendered for the ``/6/v2/sock`` WebSocket.

The vendor's event sheet is not public, so every payload here is project-defined (docs/ccs.md,
"Events"), in the spec's style: snake_case keys, uuids as strings, extension numbers under
``extension``, agent states in the 4.15 shape ``{"type": "ready", "name": "Ready"}``, phone states
as 4.15 prints them (``"Idle"``, ``"Talking"`` …) and durations as ``H:MM:SS``.

Every frame starts with the same envelope, in this order::

    {"event": "call" | "agent" | "inbound_queue", "type": <what happened>, "cursor": "<n>",
     "tenant_uuid": …, "datetime": "2021-10-07T07:22:21", "time_z": "UTC",
     "call_id": …, "calling_number": …, "called_number": …,   (call and inbound-queue frames)
     …payload}

Theory of operation: :data:`TABLE` maps each (category, core type) to a CCS ``type`` and a
function building the payload from the stored event's data (plus names from the directory).
A core type of a delivered category that is not in the table (a future one) is still sent, in a
generic form: its type with ``.`` made ``_`` and its data as it is, so a client never silently
misses an event. Configuration events (category ``config``) are never rendered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from ...domain.agents import PHONE_DISPLAY, PhoneState, clock_duration
from ...domain.events import EventCategory, StoredEvent
from ...service.directory import Directory

#: the ``event`` field of each category's frames (None: not sent on the socket)
CATEGORY_NAME: dict[EventCategory, str | None] = {
    EventCategory.CALL: "call",
    EventCategory.AGENT: "agent",
    EventCategory.QUEUE: "inbound_queue",
    EventCategory.CONFIG: None,
}

Data = dict[str, Any]
Build = Callable[["Lookup", StoredEvent], Data]


@dataclass(frozen=True, slots=True)
class Lookup:
    """Names of the tenant's extensions and queues, read when a frame is rendered."""

    directory: Directory
    tenant_id: str

    def extension(self, extension_id: object) -> Data:
        ext = self.directory.extensions.get(str(extension_id)) if extension_id else None
        number = ext.number if ext is not None and ext.tenant_id == self.tenant_id else ""
        return {"extension_uuid": extension_id or "", "extension": number}

    def queue(self, queue_id: object) -> Data:
        queue = self.directory.queues.get(str(queue_id)) if queue_id else None
        if queue is None or queue.tenant_id != self.tenant_id:
            return {"queue_uuid": queue_id or "", "queue": "", "queue_extension": ""}
        return {
            "queue_uuid": queue.id,
            "queue": queue.name,
            "queue_extension": queue.extension or "",
        }


# ------------------------------------------------------------------------------------ calls


def _party(d: Data) -> Data:
    party: Data = {"leg_id": d.get("leg_id", "")}
    if "number" in d:
        party["number"] = d["number"] or ""
    if "kind" in d:
        party["kind"] = str(d["kind"])
        party["direction"] = str(d["direction"])
        party["extension_uuid"] = d.get("extension_id") or ""
    return {"party": party}


def _call_created(lk: Lookup, e: StoredEvent) -> Data:
    d = e.data
    return {
        "calling_number": d.get("from_number", ""),
        "called_number": d.get("to_number", ""),
        "caller_id": d.get("caller_id") or "",
        "origin": "dial" if d.get("origin") == "originate" else str(d.get("origin", "")),
    }


def _call_state(lk: Lookup, e: StoredEvent) -> Data:
    return {"state": str(e.data.get("state", "")), "previous": str(e.data.get("previous", ""))}


def _call_ended(lk: Lookup, e: StoredEvent) -> Data:
    return {"cause": str(e.data.get("cause", ""))}


def _leg(lk: Lookup, e: StoredEvent) -> Data:
    return _party(e.data)


def _leg_hungup(lk: Lookup, e: StoredEvent) -> Data:
    return {**_party(e.data), "cause": str(e.data.get("cause", ""))}


def _leg_target(lk: Lookup, e: StoredEvent) -> Data:
    out = {**_party(e.data), "target": str(e.data.get("target", ""))}
    if "code" in e.data:
        out["reason"] = str(e.data["code"])
    return out


def _leg_moved(lk: Lookup, e: StoredEvent) -> Data:
    return {**_party(e.data), "to_call_id": str(e.data.get("to_call_id", ""))}


def _leg_parked(lk: Lookup, e: StoredEvent) -> Data:
    return {**_party(e.data), "slot": str(e.data.get("slot") or "")}


def _joined(lk: Lookup, e: StoredEvent) -> Data:
    return {"other_call_id": str(e.data.get("other_call_id", ""))}


def _bridge(lk: Lookup, e: StoredEvent) -> Data:
    out: Data = {"bridge_id": str(e.data.get("bridge_id", ""))}
    if "kind" in e.data:
        out["kind"] = str(e.data["kind"])
    if "leg_ids" in e.data:
        out["leg_ids"] = [str(i) for i in e.data["leg_ids"]]
    if "leg_id" in e.data:
        out["leg_id"] = str(e.data["leg_id"])
    return out


def _recording(lk: Lookup, e: StoredEvent) -> Data:
    out: Data = {"recording_id": str(e.data.get("recording_id", ""))}
    if "by" in e.data:
        out["by"] = str(e.data["by"] or "")
    return out


def _dtmf(lk: Lookup, e: StoredEvent) -> Data:
    return {**_party(e.data), "digits": str(e.data.get("digits", ""))}


def _call_queued(lk: Lookup, e: StoredEvent) -> Data:
    return {**_party(e.data), **lk.queue(e.data.get("queue_id"))}


def _supervision(lk: Lookup, e: StoredEvent) -> Data:
    d = e.data
    out: Data = _party(d)
    for key in ("mode", "previous", "cause", "agent_leg_id"):
        if key in d:
            out[key] = str(d[key])
    if "supervisor_extension_id" in d:
        out["supervisor"] = lk.extension(d["supervisor_extension_id"])
    return out


# ----------------------------------------------------------------------------------- agents


def _presence(value: object) -> Data:
    """A presence in the 4.15 shape ``{"type": "ready", "name": "Ready"}``."""
    if isinstance(value, dict):
        return {"type": str(value.get("type", "")), "name": str(value.get("name", ""))}
    return {"type": "", "name": ""}


def _agent(lk: Lookup, e: StoredEvent) -> Data:
    ext_id = e.data.get("extension_id") or e.data.get("agent_id")
    out = lk.extension(ext_id)
    if e.data.get("number"):
        out["extension"] = str(e.data["number"])
    return out


def _agent_state(lk: Lookup, e: StoredEvent) -> Data:
    out: Data = {
        **_agent(lk, e),
        "agent_state": {"state": _presence(e.data.get("presence"))},
        "previous": {"state": _presence(e.data.get("previous"))},
    }
    if e.data.get("reason"):
        out["reason"] = str(e.data["reason"])
    return out


def _signed_in(lk: Lookup, e: StoredEvent) -> Data:
    return {**_agent(lk, e), "agent_state": {"state": _presence(e.data.get("presence"))}}


def _signed_out(lk: Lookup, e: StoredEvent) -> Data:
    out: Data = {
        **_agent(lk, e),
        "agent_state": {"state": {"type": "sign_out", "name": str(e.data.get("name", ""))}},
    }
    if e.data.get("reason"):
        out["reason"] = str(e.data["reason"])
    return out


def _phone_name(value: object) -> str:
    try:
        return PHONE_DISPLAY[PhoneState(str(value))]
    except ValueError:
        return str(value)


def _phone_state(lk: Lookup, e: StoredEvent) -> Data:
    return {
        **_agent(lk, e),
        "phone_state": {"state": _phone_name(e.data.get("state"))},
        "previous": {"state": _phone_name(e.data.get("previous"))},
        "call_id": str(e.data.get("call_id") or ""),
    }


def _queue_state(lk: Lookup, e: StoredEvent) -> Data:
    now, before = lk.queue(e.data.get("queue_id")), lk.queue(e.data.get("previous"))
    return {
        **_agent(lk, e),
        "queue_state": {"queue_uuid": now["queue_uuid"], "queue": now["queue"]},
        "previous": {"queue_uuid": before["queue_uuid"], "queue": before["queue"]},
    }


def _offer_missed(lk: Lookup, e: StoredEvent) -> Data:
    return {
        **_agent(lk, e),
        **lk.queue(e.data.get("queue_id")),
        "call_id": str(e.data.get("call_id") or ""),
        "consecutive_missed": int(e.data.get("consecutive_missed", 0)),
    }


def _wrapup(lk: Lookup, e: StoredEvent) -> Data:
    return {**_agent(lk, e), **lk.queue(e.data.get("queue_id"))}


# ----------------------------------------------------------------------------- inbound queues


def _queue_call(lk: Lookup, e: StoredEvent) -> Data:
    return {"call_id": e.call_id or "", **lk.queue(e.data.get("queue_id"))}


def _position(lk: Lookup, e: StoredEvent) -> Data:
    return {**_queue_call(lk, e), "position": str(e.data.get("position", ""))}


def _offered(lk: Lookup, e: StoredEvent) -> Data:
    return {**_queue_call(lk, e), "agent": lk.extension(e.data.get("agent_id"))}


def _wait(value: object) -> str:
    return clock_duration(float(value)) if isinstance(value, (int, float)) else "0:00:00"


def _answered(lk: Lookup, e: StoredEvent) -> Data:
    return {
        **_offered(lk, e),
        "wait": _wait(e.data.get("wait_seconds")),
        "within_service_level": bool(e.data.get("within_service_level", False)),
    }


def _abandoned(lk: Lookup, e: StoredEvent) -> Data:
    return {
        **_position(lk, e),
        "wait": _wait(e.data.get("wait_seconds")),
    }


def _destination(value: object) -> Data:
    if not isinstance(value, dict):
        return {}
    return {"destination": {str(k): "" if v is None else str(v) for k, v in value.items()}}


def _left(lk: Lookup, e: StoredEvent) -> Data:
    out: Data = {**_queue_call(lk, e), "reason": str(e.data.get("reason", ""))}
    if "to_queue" in e.data:
        target = lk.queue(e.data["to_queue"])
        out["to_queue_uuid"], out["to_queue"] = target["queue_uuid"], target["queue"]
    return {**out, **_destination(e.data.get("destination"))}


def _priority(lk: Lookup, e: StoredEvent) -> Data:
    return {
        **_position(lk, e),
        "priority": str(e.data.get("priority", "")),
        "previous": str(e.data.get("previous", "")),
    }


def _callback(lk: Lookup, e: StoredEvent) -> Data:
    return {**_position(lk, e), "number": str(e.data.get("number", ""))}


#: (category, core type) -> (CCS type, payload builder): every event type the core emits
TABLE: dict[tuple[EventCategory, str], tuple[str, Build]] = {
    # calls (Call Events)
    (EventCategory.CALL, "call.created"): ("created", _call_created),
    (EventCategory.CALL, "call.state_changed"): ("state_changed", _call_state),
    (EventCategory.CALL, "call.ended"): ("ended", _call_ended),
    (EventCategory.CALL, "call.joined"): ("joined", _joined),
    (EventCategory.CALL, "queue.entered"): ("queued", _call_queued),
    (EventCategory.CALL, "leg.created"): ("party_added", _leg),
    (EventCategory.CALL, "leg.ringing"): ("ringing", _leg),
    (EventCategory.CALL, "leg.answered"): ("answered", _leg),
    (EventCategory.CALL, "leg.hungup"): ("party_left", _leg_hungup),
    (EventCategory.CALL, "leg.held"): ("held", _leg),
    (EventCategory.CALL, "leg.unheld"): ("resumed", _leg),
    (EventCategory.CALL, "leg.party_held"): ("party_held", _leg),
    (EventCategory.CALL, "leg.party_resumed"): ("party_resumed", _leg),
    (EventCategory.CALL, "leg.muted"): ("muted", _leg),
    (EventCategory.CALL, "leg.unmuted"): ("unmuted", _leg),
    (EventCategory.CALL, "leg.transferring"): ("transferring", _leg_target),
    (EventCategory.CALL, "leg.transfer_refused"): ("transfer_refused", _leg_target),
    (EventCategory.CALL, "leg.moved"): ("party_moved", _leg_moved),
    (EventCategory.CALL, "leg.parked"): ("parked", _leg_parked),
    (EventCategory.CALL, "leg.unparked"): ("unparked", _leg_parked),
    (EventCategory.CALL, "bridge.created"): ("bridged", _bridge),
    (EventCategory.CALL, "bridge.joined"): ("bridge_joined", _bridge),
    (EventCategory.CALL, "bridge.left"): ("bridge_left", _bridge),
    (EventCategory.CALL, "bridge.became_conference"): ("conference", _bridge),
    (EventCategory.CALL, "bridge.destroyed"): ("unbridged", _bridge),
    (EventCategory.CALL, "recording.started"): ("recording_started", _recording),
    (EventCategory.CALL, "recording.suppressed"): ("suppression_started", _recording),
    (EventCategory.CALL, "recording.unsuppressed"): ("suppression_stopped", _recording),
    (EventCategory.CALL, "recording.stopped"): ("recording_stopped", _recording),
    (EventCategory.CALL, "dtmf.received"): ("dtmf_received", _dtmf),
    (EventCategory.CALL, "dtmf.sent"): ("dtmf_sent", _dtmf),
    (EventCategory.CALL, "supervision.started"): ("supervision_started", _supervision),
    (EventCategory.CALL, "supervision.mode_changed"): ("supervision_changed", _supervision),
    (EventCategory.CALL, "supervision.ended"): ("supervision_ended", _supervision),
    # agent presence (Agent Events)
    (EventCategory.AGENT, "agent.presence_changed"): ("agent_state", _agent_state),
    (EventCategory.AGENT, "agent.signed_in"): ("signed_in", _signed_in),
    (EventCategory.AGENT, "agent.signed_out"): ("signed_out", _signed_out),
    (EventCategory.AGENT, "agent.phone_state_changed"): ("phone_state", _phone_state),
    (EventCategory.AGENT, "agent.queue_state_changed"): ("queue_state", _queue_state),
    (EventCategory.AGENT, "agent.offer_missed"): ("offer_missed", _offer_missed),
    (EventCategory.AGENT, "agent.wrapup_started"): ("wrapup_started", _wrapup),
    (EventCategory.AGENT, "agent.wrapup_ended"): ("wrapup_ended", _wrapup),
    # inbound queues (Inbound Queue Events)
    (EventCategory.QUEUE, "queue.entered"): ("entered", _position),
    (EventCategory.QUEUE, "queue.position_changed"): ("position_changed", _position),
    (EventCategory.QUEUE, "queue.offered"): ("offered", _offered),
    (EventCategory.QUEUE, "queue.answered"): ("answered", _answered),
    (EventCategory.QUEUE, "queue.abandoned"): ("abandoned", _abandoned),
    (EventCategory.QUEUE, "queue.left"): ("left", _left),
    (EventCategory.QUEUE, "queue.overflowed"): ("overflowed", _left),
    (EventCategory.QUEUE, "queue.priority_changed"): ("priority_changed", _priority),
    (EventCategory.QUEUE, "queue.callback_requested"): ("callback_requested", _callback),
}


def _generic(lk: Lookup, e: StoredEvent) -> Data:
    return dict(e.data)


def cursor_of(event: StoredEvent) -> str:
    """The resume cursor of an event: its position in the tenant's log, as a string."""
    return str(event.seq)


def render(
    directory: Directory, event: StoredEvent, numbers: tuple[str, str] | None = None
) -> Data | None:
    """The CCS frame of ``event``, or None for an event the socket does not carry.

    ``numbers`` (calling, called) go on call and inbound-queue frames after the call id."""
    name = CATEGORY_NAME[event.category]
    if name is None:
        return None
    ccs_type, build = TABLE.get(
        (event.category, event.type), (event.type.replace(".", "_"), _generic)
    )
    frame: Data = {
        "event": name,
        "type": ccs_type,
        "cursor": cursor_of(event),
        "tenant_uuid": event.tenant_id,
        "datetime": event.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "time_z": "UTC",
    }
    if event.category in (EventCategory.CALL, EventCategory.QUEUE) and event.call_id is not None:
        frame["call_id"] = event.call_id
        if numbers is not None:
            frame["calling_number"], frame["called_number"] = numbers
    payload = build(Lookup(directory, event.tenant_id), event)
    for key, value in payload.items():
        frame.setdefault(key, value)
    return frame
