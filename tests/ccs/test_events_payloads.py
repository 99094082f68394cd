"""The CCS event payloads (project-defined, docs/ccs.md "Events"): one golden frame per event type.

:data:`SAMPLES` holds, for every (category, core type) of :data:`events.TABLE`, data in the shape
the core emits it; :func:`test_samples_have_the_data_the_core_emits` checks that against the
events of a real scenario, so the goldens stay faithful to the core.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from tests.ccs.sock_harness import assert_golden_lines
from tests.ccs.world import EXT, OTHER, OTHER_TENANT, OWN_TENANT, QUEUE, CcsWorld

from callbridge.api.ccs.events import TABLE, render
from callbridge.domain.events import EventCategory, StoredEvent
from callbridge.service.auth import system_actor

C, A, Q = EventCategory.CALL, EventCategory.AGENT, EventCategory.QUEUE
CALL = "0BS9DD02LEMUI"
LEG = "00000000-0000-4000-8000-000000000010"
LEG2 = "00000000-0000-4000-8000-000000000011"
BRIDGE = "00000000-0000-4000-8000-000000000012"
REC = "00000000-0000-4000-8000-000000000020"
E112, E114 = EXT["112"], EXT["114"]
Q386, Q3878 = QUEUE["Q386"], QUEUE["Q3878"]
AGENT_ID: dict[str, Any] = {"tenant_id": OWN_TENANT, "number": "112", "extension_id": E112}
READY = {"type": "ready", "name": "Ready"}
COFFEE = {"type": "away", "name": "Coffee Break"}

#: (category, core type) -> data as the core emits it
SAMPLES: dict[tuple[EventCategory, str], dict[str, Any]] = {
    (C, "call.created"): {
        "origin": "originate",
        "from_number": "112",
        "to_number": "19735552106",
        "caller_id": "2677318044",
    },
    (C, "call.state_changed"): {"state": "answered", "previous": "ringing"},
    (C, "call.ended"): {"cause": "killed"},
    (C, "call.joined"): {"other_call_id": "0BS9DD02LEMUJ"},
    (C, "queue.entered"): {"queue_id": Q386, "leg_id": "sim-in-1"},
    (C, "leg.created"): {
        "leg_id": LEG,
        "kind": "extension",
        "direction": "outbound",
        "number": "112",
        "extension_id": E112,
    },
    (C, "leg.ringing"): {"leg_id": LEG, "number": "112"},
    (C, "leg.answered"): {"leg_id": LEG2, "number": "19735552106"},
    (C, "leg.hungup"): {"leg_id": LEG2, "number": "19735552106", "cause": "normal"},
    (C, "leg.held"): {"leg_id": LEG},
    (C, "leg.unheld"): {"leg_id": LEG},
    (C, "leg.party_held"): {"leg_id": LEG2},
    (C, "leg.party_resumed"): {"leg_id": LEG2},
    (C, "leg.muted"): {"leg_id": LEG},
    (C, "leg.unmuted"): {"leg_id": LEG},
    (C, "leg.transferring"): {"leg_id": LEG2, "target": "113"},
    (C, "leg.transfer_refused"): {"leg_id": LEG, "target": "999", "code": "number_unknown"},
    (C, "leg.moved"): {"leg_id": LEG2, "to_call_id": "0BS9DD02LEMUJ"},
    (C, "leg.parked"): {"leg_id": LEG2, "slot": "701"},
    (C, "leg.unparked"): {"leg_id": LEG2, "slot": "701"},
    (C, "bridge.created"): {"bridge_id": BRIDGE, "kind": "two_party", "leg_ids": [LEG, LEG2]},
    (C, "bridge.joined"): {"bridge_id": BRIDGE, "leg_id": LEG2},
    (C, "bridge.left"): {"bridge_id": BRIDGE, "leg_id": LEG},
    (C, "bridge.became_conference"): {"bridge_id": BRIDGE},
    (C, "bridge.destroyed"): {"bridge_id": BRIDGE},
    (C, "recording.started"): {"recording_id": REC},
    (C, "recording.suppressed"): {"recording_id": REC, "by": "system"},
    (C, "recording.unsuppressed"): {"recording_id": REC, "by": "system"},
    (C, "recording.stopped"): {"recording_id": REC},
    (C, "dtmf.received"): {"leg_id": LEG2, "digits": "12#"},
    (C, "dtmf.sent"): {"leg_id": LEG2, "digits": "5"},
    (C, "supervision.started"): {
        "leg_id": "sup-1",
        "mode": "listen",
        "supervisor_extension_id": E114,
        "agent_leg_id": LEG,
    },
    (C, "supervision.mode_changed"): {
        "leg_id": "sup-1",
        "mode": "whisper",
        "previous": "listen",
        "agent_leg_id": LEG,
    },
    (C, "supervision.ended"): {"leg_id": "sup-1", "cause": "normal"},
    (A, "agent.presence_changed"): {**AGENT_ID, "presence": COFFEE, "previous": READY},
    (A, "agent.signed_in"): {**AGENT_ID, "presence": READY},
    (A, "agent.signed_out"): {**AGENT_ID, "name": "Holiday In Bahamas"},
    (A, "agent.phone_state_changed"): {
        **AGENT_ID,
        "state": "talking",
        "previous": "ringing",
        "call_id": CALL,
    },
    (A, "agent.queue_state_changed"): {**AGENT_ID, "queue_id": Q386, "previous": None},
    (A, "agent.offer_missed"): {
        **AGENT_ID,
        "queue_id": Q386,
        "call_id": CALL,
        "consecutive_missed": 2,
    },
    (A, "agent.wrapup_started"): {"agent_id": E114, "queue_id": Q386, "until": 30.0},
    (A, "agent.wrapup_ended"): {"agent_id": E114, "queue_id": None},
    (Q, "queue.entered"): {"queue_id": Q386, "position": 1},
    (Q, "queue.position_changed"): {"queue_id": Q386, "position": 1},
    (Q, "queue.offered"): {"queue_id": Q386, "agent_id": E114},
    (Q, "queue.answered"): {
        "queue_id": Q386,
        "agent_id": E114,
        "wait_seconds": 65.5,
        "within_service_level": False,
    },
    (Q, "queue.abandoned"): {"queue_id": Q3878, "wait_seconds": 12.0, "position": 1},
    (Q, "queue.left"): {"queue_id": Q386, "reason": "moved", "to_queue": Q3878},
    (Q, "queue.overflowed"): {
        "queue_id": Q386,
        "reason": "max_wait",
        "destination": {"kind": "extension", "target": "120"},
    },
    (Q, "queue.priority_changed"): {"queue_id": Q386, "priority": 5, "previous": 0, "position": 1},
    (Q, "queue.callback_requested"): {"queue_id": Q386, "number": "19735552106", "position": 2},
}

WHEN = datetime(2021, 10, 7, 7, 22, 21, tzinfo=UTC)
NUMBERS = ("112", "19735552106")  # the calling and called numbers of the sample call
INBOUND = ("19735550123", "386")  # those of the sample queue call


def _stored(key: tuple[EventCategory, str], seq: int = 57) -> StoredEvent:
    category, type_ = key
    call_id = None if category is A else CALL
    return StoredEvent(OWN_TENANT, seq, type_, category, WHEN, call_id, dict(SAMPLES[key]))


def test_every_mapped_type_has_a_sample() -> None:
    assert set(SAMPLES) == set(TABLE)


@pytest.mark.parametrize("key", list(TABLE), ids=[f"{k[0]}:{k[1]}" for k in TABLE])
async def test_each_event_type_has_its_golden_frame(
    ccs: CcsWorld, key: tuple[EventCategory, str]
) -> None:
    numbers = {A: None, C: NUMBERS, Q: INBOUND}[key[0]]
    frame = render(ccs.c.directory, _stored(key), numbers)
    assert frame is not None
    head = ["event", "type", "cursor", "tenant_uuid", "datetime", "time_z"]
    if key[0] is not A:
        head += ["call_id", "calling_number", "called_number"]
    assert list(frame)[: len(head)] == head
    assert frame["type"] == TABLE[key][0]
    assert frame["cursor"] == "57" and frame["tenant_uuid"] == OWN_TENANT
    assert frame["datetime"] == "2021-10-07T07:22:21" and frame["time_z"] == "UTC"
    if key[0] is not A:
        assert (frame["call_id"], frame["calling_number"], frame["called_number"]) == (
            CALL,
            *(numbers or ()),
        )
    assert_golden_lines(f"event_{frame['event']}_{frame['type']}", [orjson.dumps(frame).decode()])


def test_the_event_field_names_the_category() -> None:
    names = {"call": C, "agent": A, "inbound_queue": Q}
    for key, (ccs_type, _) in TABLE.items():
        assert ccs_type and " " not in ccs_type
        assert key[0] in names.values()
    assert len({(k[0], v[0]) for k, v in TABLE.items()}) == len(TABLE), "a CCS type used twice"


def test_configuration_events_are_never_rendered(ccs: CcsWorld) -> None:
    event = StoredEvent(
        OWN_TENANT, 9, "presence_option.created", EventCategory.CONFIG, WHEN, None, {"x": 1}
    )
    assert render(ccs.c.directory, event) is None


def test_an_unknown_type_of_a_delivered_category_is_sent_in_a_generic_form(
    ccs: CcsWorld,
) -> None:
    event = StoredEvent(
        OWN_TENANT, 58, "call.teleported", C, WHEN, CALL, {"leg_id": LEG, "to": "Mars"}
    )
    frame = render(ccs.c.directory, event)
    assert frame is not None
    line = orjson.dumps(frame).decode()
    assert_golden_lines("event_call_generic", [line])
    assert frame["type"] == "call_teleported" and frame["to"] == "Mars"


def test_names_of_another_tenant_are_not_looked_up(ccs: CcsWorld) -> None:
    """An id of another tenant in an event (it cannot happen, but) never yields its name."""
    event = StoredEvent(
        OWN_TENANT,
        59,
        "queue.offered",
        Q,
        WHEN,
        CALL,
        {"queue_id": OTHER["queue"], "agent_id": OTHER["ext_112"]},
    )
    frame = render(ccs.c.directory, event)
    assert frame is not None
    assert frame["queue"] == "" and frame["agent"]["extension"] == ""
    assert OTHER_TENANT not in orjson.dumps(frame).decode()


# ------------------------------------------------------------------ faithful to the core


async def run_scenario(ccs: CcsWorld) -> None:
    """Agents change state, a click-to-call is held, recorded, suppressed and killed, an
    inbound call is queued and answered, another is queued and abandoned."""
    c, s, t = ccs.c, system_actor(), OWN_TENANT
    await c.agents.set_state(s, t, EXT["113"], "Coffee Break")
    call = await c.calls.originate(s, t, EXT["112"], "19735552106", outbound_queue_id=None)
    await ccs.settle(1)
    leg = next(iter(c.calls.get(s, t, call.id).legs))
    await c.calls.hold(s, t, call.id, leg)
    await c.calls.unhold(s, t, call.id, leg)
    await c.calls.mute(s, t, call.id, leg)
    await c.calls.unmute(s, t, call.id, leg)
    await c.calls.start_recording(s, t, call.id)
    await c.calls.suppress_recording(s, t, call.id)
    await c.calls.unsuppress_recording(s, t, call.id)
    await c.calls.send_dtmf(s, t, call.id, leg, "5")
    await ccs.settle(1)
    await c.calls.kill(s, t, call.id)
    await ccs.settle(1)
    await c.calls.simulate_inbound(s, t, "19735550123", "386")
    await ccs.settle(5)
    await c.calls.simulate_inbound(s, t, "19735550124", "387")
    await ccs.settle(3)
    waiting = next(
        leg_id
        for leg_id, snap in ccs.sim.legs().items()
        if snap.state != "hungup" and snap.number == "19735550124"
    )
    ccs.sim.remote_hangup(waiting)
    await ccs.settle(1)
    await c.agents.sign_out(s, t, EXT["113"])
    await c.agents.sign_in(s, t, EXT["113"])
    await ccs.settle(1)


async def test_samples_have_the_data_the_core_emits(ccs: CcsWorld) -> None:
    start = await ccs.c.core.storage.last_seq(OWN_TENANT)
    await run_scenario(ccs)
    emitted = await ccs.c.core.storage.events(OWN_TENANT, start, 1000)
    seen = set()
    for event in emitted:
        key = (event.category, event.type)
        if event.category is EventCategory.CONFIG:
            continue
        assert key in TABLE, f"{key} is not mapped"
        seen.add(key)
        optional = {"reason", "until", "call_id", "destination", "to_queue", "previous"}
        sample = set(SAMPLES[key])
        assert set(event.data) - optional <= sample, (key, sorted(event.data), sorted(sample))
    # the scenario covers the common types of each category
    for key in [
        (C, "call.created"),
        (C, "leg.held"),
        (C, "recording.suppressed"),
        (C, "call.ended"),
        (A, "agent.presence_changed"),
        (A, "agent.phone_state_changed"),
        (A, "agent.signed_in"),
        (Q, "queue.entered"),
        (Q, "queue.answered"),
        (Q, "queue.abandoned"),
    ]:
        assert key in seen, key
