"""The simulated switch, driven by a FakeClock: behaviours, timings, media model, recording."""

from __future__ import annotations

import asyncio
import logging

import pytest
from pydantic import ValidationError

from callbridge.adapters.clock import FakeClock, SystemClock
from callbridge.adapters.simswitch import MUSIC, EndpointScript, SimulatedSwitch
from callbridge.domain.calls import Direction, HangupCause, LegState
from callbridge.ports.switch import DialRequest, SwitchError, SwitchEvent, SwitchEventKind

K = SwitchEventKind


class Recorder:
    def __init__(self) -> None:
        self.events: list[SwitchEvent] = []

    def __call__(self, event: SwitchEvent) -> None:
        self.events.append(event)

    def kinds(self, leg_id: str | None = None) -> list[SwitchEventKind]:
        return [e.kind for e in self.events if leg_id is None or e.leg_id == leg_id]

    def take(self) -> list[SwitchEvent]:
        events, self.events = self.events, []
        return events


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def sw(clock: FakeClock, rec: Recorder) -> SimulatedSwitch:
    switch = SimulatedSwitch(clock)
    switch.set_listener(rec)
    return switch


def req(
    leg_id: str, number: str = "201", *, call_id: str = "c1", timeout: float = 30.0
) -> DialRequest:
    return DialRequest(
        leg_id=leg_id,
        call_id=call_id,
        tenant_id="t1",
        number=number,
        external=len(number) > 6,
        caller_id="100",
        timeout_s=timeout,
    )


async def answered(sw: SimulatedSwitch, clock: FakeClock, *legs: str, call_id: str = "c1") -> None:
    """Dial each leg (default script) and let it answer."""
    for i, leg_id in enumerate(legs):
        await sw.dial(req(leg_id, f"20{i}", call_id=call_id))
    clock.advance(0)


def code_of(exc: pytest.ExceptionInfo[SwitchError]) -> str:
    return exc.value.code


# --------------------------------------------------------------------------- scripts


def test_script_defaults_and_json_round_trip() -> None:
    s = EndpointScript()
    assert (s.behaviour, s.answer_after, s.ring, s.hangup_after, s.dtmf, s.dtmf_after) == (
        "answer",
        None,
        True,
        None,
        None,
        0.0,
    )
    busy = EndpointScript(behaviour="busy", answer_after=2, ring=False)
    assert EndpointScript.model_validate_json(busy.model_dump_json()) == busy
    assert busy.model_dump(mode="json")["behaviour"] == "busy"


@pytest.mark.parametrize(
    "bad",
    [
        {"behaviour": "explode"},
        {"answer_after": -1},
        {"hangup_after": -0.5},
        {"dtmf_after": -1},
        {"dtmf": ""},
        {"dtmf": "12x"},
        {"answer_after": float("inf")},
        {"unknown_field": 1},
    ],
)
def test_script_validation(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        EndpointScript.model_validate(bad)


def test_script_is_frozen() -> None:
    s = EndpointScript()
    with pytest.raises(ValidationError):
        s.behaviour = "busy"  # type: ignore[misc]


def test_set_clear_and_list_scripts(sw: SimulatedSwitch) -> None:
    busy = EndpointScript(behaviour="busy")
    sw.set_script("201", busy)
    assert sw.script_for("201") == busy
    assert sw.script_for("202") == EndpointScript()
    assert sw.scripts() == {"201": busy}
    sw.scripts().clear()  # a copy
    assert sw.scripts() == {"201": busy}
    sw.clear_script("201")
    sw.clear_script("201")  # no error
    assert sw.scripts() == {}
    assert sw.script_for("201") == EndpointScript()
    with pytest.raises(SwitchError) as exc:
        sw.set_script("", busy)
    assert code_of(exc) == "number_invalid"


def test_negative_default_answer_after_is_refused(clock: FakeClock) -> None:
    with pytest.raises(ValueError):
        SimulatedSwitch(clock, default_answer_after=-1)


# --------------------------------------------------------------------------- dialling


async def test_unknown_number_rings_then_answers_at_once(
    sw: SimulatedSwitch, clock: FakeClock, rec: Recorder
) -> None:
    await sw.dial(req("l1", "+4930123456"))
    assert rec.events == []  # nothing synchronously from a command
    assert sw.leg_state("l1").state is LegState.DIALING
    clock.advance(0)
    assert rec.take() == [
        SwitchEvent(K.RINGING, "l1"),
        SwitchEvent(K.ANSWERED, "l1"),
    ]
    snap = sw.leg_state("l1")
    assert snap.state is LegState.ANSWERED
    assert (snap.call_id, snap.tenant_id, snap.number) == ("c1", "t1", "+4930123456")
    assert (snap.from_number, snap.to_number) == ("100", "+4930123456")
    assert snap.direction is Direction.OUTBOUND
    assert snap.answered_at == 0.0
    assert sw.pending_timers == 0  # the dial timeout was dropped on answer


async def test_default_answer_after_applies_to_unscripted_numbers(
    clock: FakeClock, rec: Recorder
) -> None:
    sw = SimulatedSwitch(clock, default_answer_after=3.0)
    sw.set_listener(rec)
    await sw.dial(req("l1"))
    clock.advance(0)
    assert rec.take() == [SwitchEvent(K.RINGING, "l1")]
    assert sw.leg_state("l1").state is LegState.RINGING
    clock.advance(2.9)
    assert rec.events == []
    clock.advance(0.1)
    assert rec.take() == [SwitchEvent(K.ANSWERED, "l1")]
    assert sw.leg_state("l1").answered_at == pytest.approx(3.0)


async def test_script_answer_after_overrides_default(clock: FakeClock, rec: Recorder) -> None:
    sw = SimulatedSwitch(clock, default_answer_after=10.0)
    sw.set_listener(rec)
    sw.set_script("201", EndpointScript(answer_after=1.5))
    await sw.dial(req("l1", "201"))
    clock.advance(1.5)
    assert rec.kinds() == [K.RINGING, K.ANSWERED]


async def test_no_ring_answers_without_ringing(
    sw: SimulatedSwitch, clock: FakeClock, rec: Recorder
) -> None:
    sw.set_script("201", EndpointScript(ring=False, answer_after=2))
    await sw.dial(req("l1", "201"))
    clock.advance(1)
    assert rec.events == []
    assert sw.leg_state("l1").state is LegState.DIALING
    clock.advance(1)
    assert rec.take() == [SwitchEvent(K.ANSWERED, "l1")]


@pytest.mark.parametrize(
    ("behaviour", "cause"),
    [("busy", HangupCause.BUSY), ("reject", HangupCause.REJECTED), ("fail", HangupCause.FAILED)],
)
async def test_refusals_hang_up_with_their_cause_after_answer_after(
    sw: SimulatedSwitch, clock: FakeClock, rec: Recorder, behaviour: str, cause: HangupCause
) -> None:
    sw.set_script("201", EndpointScript.model_validate({"behaviour": behaviour, "answer_after": 4}))
    await sw.dial(req("l1", "201"))
    clock.advance(3.99)
    assert rec.take() == [SwitchEvent(K.RINGING, "l1")]
    clock.advance(0.01)
    assert rec.take() == [SwitchEvent(K.HUNGUP, "l1", cause=cause)]
    snap = sw.leg_state("l1")
    assert (snap.state, snap.cause) == (LegState.HUNGUP, cause)
    assert snap.ended_at == pytest.approx(4)
    assert sw.pending_timers == 0
    clock.advance(100)
    assert rec.events == []


async def test_busy_without_ringing_is_immediate(
    sw: SimulatedSwitch, clock: FakeClock, rec: Recorder
) -> None:
    sw.set_script("201", EndpointScript(behaviour="busy", ring=False))
    await sw.dial(req("l1", "201"))
    clock.advance(0)
    assert rec.take() == [SwitchEvent(K.HUNGUP, "l1", cause=HangupCause.BUSY)]


async def test_no_answer_rings_until_the_dial_timeout(
    sw: SimulatedSwitch, clock: FakeClock, rec: Recorder
) -> None:
    sw.set_script("201", EndpointScript(behaviour="no_answer"))
    await sw.dial(req("l1", "201", timeout=20))
    clock.advance(19.9)
    assert rec.take() == [SwitchEvent(K.RINGING, "l1")]
    clock.advance(0.1)
    assert rec.take() == [SwitchEvent(K.HUNGUP, "l1", cause=HangupCause.NO_ANSWER)]
    assert sw.leg_state("l1").cause is HangupCause.NO_ANSWER


async def test_answer_later_than_the_timeout_is_no_answer(
    sw: SimulatedSwitch, clock: FakeClock, rec: Recorder
) -> None:
    sw.set_script("201", EndpointScript(answer_after=40))
    await sw.dial(req("l1", "201", timeout=30))
    clock.advance(60)
    assert rec.take() == [
        SwitchEvent(K.RINGING, "l1"),
        SwitchEvent(K.HUNGUP, "l1", cause=HangupCause.NO_ANSWER),
    ]


async def test_answer_exactly_at_the_timeout_wins(
    sw: SimulatedSwitch, clock: FakeClock, rec: Recorder
) -> None:
    sw.set_script("201", EndpointScript(answer_after=30))
    await sw.dial(req("l1", "201", timeout=30))
    clock.advance(30)
    assert rec.kinds() == [K.RINGING, K.ANSWERED]


async def test_party_hangs_up_after_hangup_after(
    sw: SimulatedSwitch, clock: FakeClock, rec: Recorder
) -> None:
    sw.set_script("201", EndpointScript(answer_after=2, hangup_after=5))
    await sw.dial(req("l1", "201"))
    clock.advance(6.9)
    assert rec.kinds() == [K.RINGING, K.ANSWERED]
    rec.take()
    clock.advance(0.1)  # 2 + 5
    assert rec.take() == [SwitchEvent(K.HUNGUP, "l1", cause=HangupCause.NORMAL)]


async def test_party_sends_dtmf_after_answering(
    sw: SimulatedSwitch, clock: FakeClock, rec: Recorder
) -> None:
    sw.set_script("201", EndpointScript(answer_after=1, dtmf="12#", dtmf_after=3, hangup_after=10))
    await sw.dial(req("l1", "201"))
    clock.advance(3.9)
    assert rec.kinds() == [K.RINGING, K.ANSWERED]
    rec.take()
    clock.advance(0.1)
    assert rec.take() == [SwitchEvent(K.DTMF, "l1", digits="12#")]
    clock.advance(7)
    assert rec.take() == [SwitchEvent(K.HUNGUP, "l1", cause=HangupCause.NORMAL)]


async def test_dtmf_due_after_the_hangup_is_never_sent(
    sw: SimulatedSwitch, clock: FakeClock, rec: Recorder
) -> None:
    sw.set_script("201", EndpointScript(dtmf="5", dtmf_after=10, hangup_after=2))
    await sw.dial(req("l1", "201"))
    clock.advance(20)
    assert rec.kinds() == [K.RINGING, K.ANSWERED, K.HUNGUP]


async def test_dial_same_leg_twice_is_refused(sw: SimulatedSwitch, clock: FakeClock) -> None:
    await sw.dial(req("l1"))
    with pytest.raises(SwitchError) as exc:
        await sw.dial(req("l1", "202"))
    assert code_of(exc) == "leg_exists"
    assert sw.leg_state("l1").number == "201"


# --------------------------------------------------------------------------- hangup by the core


async def test_core_hangup_of_a_ringing_leg_cancels_its_timers(
    sw: SimulatedSwitch, clock: FakeClock, rec: Recorder
) -> None:
    sw.set_script("201", EndpointScript(answer_after=5, hangup_after=1, dtmf="1"))
    await sw.dial(req("l1", "201"))
    clock.advance(1)
    assert rec.take() == [SwitchEvent(K.RINGING, "l1")]
    assert sw.pending_timers == 2  # outcome and timeout
    await sw.hangup("l1", HangupCause.CANCELLED)
    assert sw.pending_timers == 0
    assert clock.pending == 0
    clock.advance(100)
    assert rec.events == []  # no ANSWERED, and no HUNGUP(cancelled) echoed back
    snap = sw.leg_state("l1")
    assert (snap.state, snap.cause, snap.ended_at) == (
        LegState.HUNGUP,
        HangupCause.CANCELLED,
        1.0,
    )


async def test_core_hangup_before_ringing_emits_nothing(
    sw: SimulatedSwitch, clock: FakeClock, rec: Recorder
) -> None:
    await sw.dial(req("l1"))
    await sw.hangup("l1", HangupCause.CANCELLED)
    clock.advance(60)
    assert rec.events == []


async def test_core_hangup_of_an_answered_leg_leaves_its_bridge_silently(
    sw: SimulatedSwitch, clock: FakeClock, rec: Recorder
) -> None:
    sw.set_script("200", EndpointScript(hangup_after=10))  # "a": its timer must be dropped
    await answered(sw, clock, "a", "b", "c")
    rec.take()
    await sw.bridge("br", ["a", "b", "c"], mixing=True)
    await sw.hangup("a", HangupCause.NORMAL)
    assert sw.leg_state("a").state is LegState.HUNGUP
    assert sw.leg_state("a").bridge_id is None
    assert sw.bridges()["br"].leg_ids == ("b", "c")
    assert sw.hears("b") == {"c"}
    assert sw.hears("a") == frozenset()
    clock.advance(60)
    assert rec.events == []


async def test_last_leg_leaving_destroys_the_bridge(sw: SimulatedSwitch, clock: FakeClock) -> None:
    await answered(sw, clock, "a", "b")
    await sw.bridge("br", ["a", "b"], mixing=False)
    await sw.hangup("a", HangupCause.NORMAL)
    await sw.unbridge("br", "b")
    assert sw.bridges() == {}
    assert sw.leg_state("b").bridge_id is None


async def test_commands_on_unknown_legs(sw: SimulatedSwitch) -> None:
    calls = [
        sw.hangup("nope", HangupCause.NORMAL),
        sw.accept("nope", "c", "t"),
        sw.answer("nope"),
        sw.hold("nope"),
        sw.unhold("nope"),
        sw.mute("nope"),
        sw.unmute("nope"),
        sw.start_music("nope"),
        sw.stop_music("nope"),
        sw.send_dtmf("nope", "1"),
        sw.bridge("br", ["nope"], mixing=False),
    ]
    for coro in calls:
        with pytest.raises(SwitchError) as exc:
            await coro
        assert code_of(exc) == "leg_unknown"
        assert exc.value.details["leg_id"] == "nope"
    for fn in (sw.remote_hangup, sw.remote_answer, sw.hears, sw.leg_state, sw.dtmf_sent):
        with pytest.raises(SwitchError) as exc:
            fn("nope")
        assert code_of(exc) == "leg_unknown"
    with pytest.raises(SwitchError) as exc:
        sw.remote_dtmf("nope", "1")
    assert code_of(exc) == "leg_unknown"


async def test_commands_on_hungup_legs(
    sw: SimulatedSwitch, clock: FakeClock, rec: Recorder
) -> None:
    await answered(sw, clock, "a")
    await sw.hangup("a", HangupCause.NORMAL)
    for coro in (
        sw.hangup("a", HangupCause.NORMAL),
        sw.hold("a"),
        sw.mute("a"),
        sw.start_music("a"),
        sw.send_dtmf("a", "1"),
        sw.bridge("br", ["a"], mixing=False),
    ):
        with pytest.raises(SwitchError) as exc:
            await coro
        assert code_of(exc) == "leg_hungup"
    with pytest.raises(SwitchError) as exc:
        sw.remote_hangup("a")
    assert code_of(exc) == "leg_hungup"
    assert sw.leg_state("a").cause is HangupCause.NORMAL


# --------------------------------------------------------------------------- far end by hand


async def test_remote_answer_of_a_no_answer_leg(
    sw: SimulatedSwitch, clock: FakeClock, rec: Recorder
) -> None:
    sw.set_script("201", EndpointScript(behaviour="no_answer", hangup_after=3))
    await sw.dial(req("l1", "201", timeout=10))
    clock.advance(5)
    sw.remote_answer("l1")
    assert rec.take() == [SwitchEvent(K.RINGING, "l1"), SwitchEvent(K.ANSWERED, "l1")]
    assert sw.leg_state("l1").answered_at == 5.0
    clock.advance(2.9)  # past the dial timeout (10): dropped on answer
    assert rec.events == []
    clock.advance(0.1)  # the script's hangup_after counts from the answer
    assert rec.take() == [SwitchEvent(K.HUNGUP, "l1", cause=HangupCause.NORMAL)]


async def test_remote_answer_errors(sw: SimulatedSwitch, clock: FakeClock) -> None:
    await answered(sw, clock, "a")
    with pytest.raises(SwitchError) as exc:
        sw.remote_answer("a")
    assert code_of(exc) == "leg_already_answered"
    inbound = sw.inject_incoming("+4930111111", "500")
    with pytest.raises(SwitchError) as exc:
        sw.remote_answer(inbound)
    assert code_of(exc) == "leg_not_outbound"


async def test_remote_hangup_emits_normal_or_the_given_cause(
    sw: SimulatedSwitch, clock: FakeClock, rec: Recorder
) -> None:
    await answered(sw, clock, "a", "b")
    await sw.bridge("br", ["a", "b"], mixing=False)
    rec.take()
    sw.remote_hangup("a")
    assert rec.take() == [SwitchEvent(K.HUNGUP, "a", cause=HangupCause.NORMAL)]
    assert sw.leg_state("a").bridge_id is None
    assert sw.hears("b") == frozenset()
    sw.remote_hangup("b", HangupCause.FAILED)
    assert rec.take() == [SwitchEvent(K.HUNGUP, "b", cause=HangupCause.FAILED)]


async def test_remote_dtmf(sw: SimulatedSwitch, clock: FakeClock, rec: Recorder) -> None:
    sw.set_script("201", EndpointScript(behaviour="no_answer"))
    await sw.dial(req("l1", "201"))
    with pytest.raises(SwitchError) as exc:
        sw.remote_dtmf("l1", "1")
    assert code_of(exc) == "leg_not_answered"
    sw.remote_answer("l1")
    rec.take()
    sw.remote_dtmf("l1", "0*#ABCD9")
    assert rec.take() == [SwitchEvent(K.DTMF, "l1", digits="0*#ABCD9")]
    for bad in ("", "E", "1 2"):
        with pytest.raises(SwitchError) as exc:
            sw.remote_dtmf("l1", bad)
        assert code_of(exc) == "dtmf_invalid"
    assert rec.events == []


async def test_remote_hold_resume_and_transfer(
    sw: SimulatedSwitch, clock: FakeClock, rec: Recorder
) -> None:
    sw.set_script("201", EndpointScript(behaviour="no_answer"))
    await sw.dial(req("l1", "201"))
    with pytest.raises(SwitchError) as exc:
        sw.remote_hold("l1")
    assert code_of(exc) == "leg_not_answered"
    sw.remote_answer("l1")
    rec.take()
    with pytest.raises(SwitchError) as exc:
        sw.remote_resume("l1")
    assert code_of(exc) == "leg_not_held"
    sw.remote_hold("l1")
    with pytest.raises(SwitchError) as exc:
        sw.remote_hold("l1")
    assert code_of(exc) == "leg_already_held"
    sw.remote_resume("l1")
    assert rec.take() == [SwitchEvent(K.HELD, "l1"), SwitchEvent(K.RESUMED, "l1")]
    with pytest.raises(SwitchError) as exc:
        await sw.refuse_transfer("l1", "extension_not_found")
    assert code_of(exc) == "no_transfer_requested"
    sw.remote_transfer("l1", "103")
    assert rec.take() == [SwitchEvent(K.TRANSFER_REQUESTED, "l1", to_number="103")]
    await sw.refuse_transfer("l1", "extension_not_found")
    assert sw.transfer_refusals("l1") == ["extension_not_found"]


# --------------------------------------------------------------------------- incoming calls


async def test_incoming_accept_answer_and_scripted_caller_hangup(
    sw: SimulatedSwitch, clock: FakeClock, rec: Recorder
) -> None:
    sw.set_script("+4930999999", EndpointScript(hangup_after=8, dtmf="42", dtmf_after=1))
    leg_id = sw.inject_incoming("+4930999999", "500")
    assert rec.take() == [
        SwitchEvent(K.INCOMING, leg_id, from_number="+4930999999", to_number="500")
    ]
    snap = sw.leg_state(leg_id)
    assert (snap.direction, snap.state, snap.call_id) == (Direction.INBOUND, LegState.RINGING, None)
    assert (snap.number, snap.from_number, snap.to_number) == ("+4930999999", "+4930999999", "500")
    clock.advance(30)  # the caller's timers wait for the answer
    assert rec.events == []
    await sw.accept(leg_id, "c9", "t1")
    assert sw.leg_state(leg_id).state is LegState.RINGING
    assert (sw.leg_state(leg_id).call_id, sw.leg_state(leg_id).tenant_id) == ("c9", "t1")
    await sw.answer(leg_id)
    assert rec.events == []  # the platform's own answer is not echoed
    assert sw.leg_state(leg_id).state is LegState.ANSWERED
    assert sw.leg_state(leg_id).answered_at == 30.0
    clock.advance(1)
    assert rec.take() == [SwitchEvent(K.DTMF, leg_id, digits="42")]
    clock.advance(7)
    assert rec.take() == [SwitchEvent(K.HUNGUP, leg_id, cause=HangupCause.NORMAL)]


async def test_incoming_leg_ids_are_unique_and_unscripted_callers_stay(
    sw: SimulatedSwitch, clock: FakeClock, rec: Recorder
) -> None:
    a = sw.inject_incoming("+4930111111", "500")
    b = sw.inject_incoming("+4930111111", "500")
    assert a != b
    await sw.accept(a, "c1", "t1")
    await sw.answer(a)
    clock.advance(3600)
    assert sw.leg_state(a).state is LegState.ANSWERED
    assert rec.kinds() == [K.INCOMING, K.INCOMING]


async def test_incoming_rejected_by_the_core(
    sw: SimulatedSwitch, clock: FakeClock, rec: Recorder
) -> None:
    leg_id = sw.inject_incoming("+4930111111", "500")
    rec.take()
    await sw.hangup(leg_id, HangupCause.REJECTED)
    assert sw.leg_state(leg_id).state is LegState.HUNGUP
    assert rec.events == []


async def test_incoming_command_errors(sw: SimulatedSwitch, clock: FakeClock) -> None:
    leg_id = sw.inject_incoming("+4930111111", "500")
    with pytest.raises(SwitchError) as exc:
        await sw.answer(leg_id)
    assert code_of(exc) == "leg_not_accepted"
    await sw.accept(leg_id, "c1", "t1")
    with pytest.raises(SwitchError) as exc:
        await sw.accept(leg_id, "c2", "t1")
    assert code_of(exc) == "leg_already_accepted"
    assert sw.leg_state(leg_id).call_id == "c1"
    await sw.answer(leg_id)
    with pytest.raises(SwitchError) as exc:
        await sw.answer(leg_id)
    assert code_of(exc) == "leg_already_answered"
    await answered(sw, clock, "out")
    with pytest.raises(SwitchError) as exc:
        await sw.accept("out", "c1", "t1")
    assert code_of(exc) == "leg_not_inbound"
    with pytest.raises(SwitchError) as exc:
        await sw.answer("out")
    assert code_of(exc) == "leg_not_inbound"


async def test_incoming_caller_abandons(
    sw: SimulatedSwitch, clock: FakeClock, rec: Recorder
) -> None:
    leg_id = sw.inject_incoming("+4930111111", "500")
    await sw.accept(leg_id, "c1", "t1")
    rec.take()
    sw.remote_hangup(leg_id)
    assert rec.take() == [SwitchEvent(K.HUNGUP, leg_id, cause=HangupCause.NORMAL)]
    with pytest.raises(SwitchError) as exc:
        await sw.answer(leg_id)
    assert code_of(exc) == "leg_hungup"


# --------------------------------------------------------------------------- media model


async def test_two_party_bridge_each_hears_the_other(sw: SimulatedSwitch, clock: FakeClock) -> None:
    await answered(sw, clock, "a", "b")
    assert sw.hears("a") == frozenset()  # not bridged yet
    await sw.bridge("br", ["a", "b"], mixing=False)
    assert sw.hears("a") == {"b"}
    assert sw.hears("b") == {"a"}
    assert sw.bridges()["br"].mixing is False
    assert sw.leg_state("a").bridge_id == "br"


async def test_a_ringing_leg_hears_nothing(sw: SimulatedSwitch, clock: FakeClock) -> None:
    sw.set_script("201", EndpointScript(behaviour="no_answer"))
    await sw.dial(req("l1", "201"))
    clock.advance(1)
    assert sw.hears("l1") == frozenset()


async def test_hold_hears_music_and_is_not_heard(sw: SimulatedSwitch, clock: FakeClock) -> None:
    await answered(sw, clock, "a", "b")
    await sw.bridge("br", ["a", "b"], mixing=False)
    await sw.hold("a")
    assert sw.hears("a") == {MUSIC}
    assert sw.hears("b") == frozenset()
    assert sw.leg_state("a").held is True
    with pytest.raises(SwitchError) as exc:
        await sw.hold("a")
    assert code_of(exc) == "leg_already_held"
    await sw.unhold("a")
    assert sw.hears("a") == {"b"}
    assert sw.hears("b") == {"a"}
    with pytest.raises(SwitchError) as exc:
        await sw.unhold("a")
    assert code_of(exc) == "leg_not_held"


async def test_mute_is_not_heard_but_still_hears(sw: SimulatedSwitch, clock: FakeClock) -> None:
    await answered(sw, clock, "a", "b")
    await sw.bridge("br", ["a", "b"], mixing=False)
    await sw.mute("a")
    assert sw.hears("a") == {"b"}
    assert sw.hears("b") == frozenset()
    assert sw.leg_state("a").muted is True
    with pytest.raises(SwitchError) as exc:
        await sw.mute("a")
    assert code_of(exc) == "leg_already_muted"
    await sw.unmute("a")
    assert sw.hears("b") == {"a"}
    with pytest.raises(SwitchError) as exc:
        await sw.unmute("a")
    assert code_of(exc) == "leg_not_muted"


async def test_audibility_listen_whisper_barge(sw: SimulatedSwitch, clock: FakeClock) -> None:
    await answered(sw, clock, "agent", "cust", "sup")
    await sw.set_audibility("sup", [])  # listen: set before joining, kept on joining
    await sw.bridge("br", ["agent", "cust", "sup"], mixing=True)
    assert sw.hears("sup") == {"agent", "cust"}
    assert sw.hears("agent") == {"cust"}
    assert sw.hears("cust") == {"agent"}
    assert sw.leg_state("sup").heard_by == ()
    await sw.set_audibility("sup", ["agent"])  # whisper
    assert sw.hears("agent") == {"cust", "sup"}
    assert sw.hears("cust") == {"agent"}
    assert sw.hears("sup") == {"agent", "cust"}
    await sw.set_audibility("sup", None)  # barge
    assert sw.hears("agent") == {"cust", "sup"}
    assert sw.hears("cust") == {"agent", "sup"}
    assert sw.leg_state("sup").heard_by is None
    await sw.mute("sup")  # mute still wins over audibility
    await sw.set_audibility("sup", ["agent"])
    assert sw.hears("agent") == {"cust"}


async def test_audibility_needs_an_answered_leg(sw: SimulatedSwitch, clock: FakeClock) -> None:
    with pytest.raises(SwitchError) as exc:
        await sw.set_audibility("nobody", [])
    assert code_of(exc) == "leg_unknown"
    sw.set_script("x", EndpointScript(behaviour="no_answer"))
    await sw.dial(req("x", "x"))
    with pytest.raises(SwitchError) as exc:
        await sw.set_audibility("x", [])
    assert code_of(exc) == "leg_not_answered"


async def test_conference_of_three(sw: SimulatedSwitch, clock: FakeClock) -> None:
    await answered(sw, clock, "a", "b", "c")
    await sw.bridge("conf", ["a", "b", "c"], mixing=True)
    assert sw.hears("a") == {"b", "c"}
    assert sw.hears("b") == {"a", "c"}
    assert sw.hears("c") == {"a", "b"}
    await sw.mute("c")
    assert sw.hears("a") == {"b"}
    assert sw.hears("c") == {"a", "b"}
    await sw.hold("b")
    assert sw.hears("a") == frozenset()
    assert sw.hears("b") == {MUSIC}
    assert sw.hears("c") == {"a"}


async def test_two_party_extended_to_three_becomes_mixing(
    sw: SimulatedSwitch, clock: FakeClock
) -> None:
    await answered(sw, clock, "a", "b", "c")
    await sw.bridge("br", ["a", "b"], mixing=False)
    await sw.bridge("br", ["c"], mixing=False)  # extend with only the new leg
    assert sw.bridges()["br"].leg_ids == ("a", "b", "c")
    assert sw.bridges()["br"].mixing is True
    assert sw.hears("c") == {"a", "b"}
    await sw.bridge("br", ["a", "b", "c"], mixing=True)  # repeating members is harmless
    assert sw.bridges()["br"].leg_ids == ("a", "b", "c")


async def test_unbridge_removes_one_leg(sw: SimulatedSwitch, clock: FakeClock) -> None:
    await answered(sw, clock, "a", "b", "c")
    await sw.bridge("conf", ["a", "b", "c"], mixing=True)
    await sw.unbridge("conf", "b")
    assert sw.hears("b") == frozenset()
    assert sw.hears("a") == {"c"}
    assert sw.leg_state("b").bridge_id is None


async def test_bridge_errors_change_nothing(sw: SimulatedSwitch, clock: FakeClock) -> None:
    await answered(sw, clock, "a", "b", "c")
    sw.set_script("209", EndpointScript(behaviour="no_answer"))
    await sw.dial(req("ringing", "209"))
    clock.advance(0)
    with pytest.raises(SwitchError) as exc:
        await sw.bridge("br", ["a", "ringing"], mixing=False)
    assert code_of(exc) == "leg_not_answered"
    assert sw.bridges() == {}
    assert sw.leg_state("a").bridge_id is None
    with pytest.raises(SwitchError) as exc:
        await sw.bridge("br", [], mixing=False)
    assert code_of(exc) == "bridge_empty"
    await sw.bridge("br", ["a", "b"], mixing=False)
    with pytest.raises(SwitchError) as exc:
        await sw.bridge("other", ["c", "a"], mixing=False)
    assert code_of(exc) == "leg_already_bridged"
    assert set(sw.bridges()) == {"br"}
    assert sw.leg_state("c").bridge_id is None
    with pytest.raises(SwitchError) as exc:
        await sw.unbridge("nope", "a")
    assert code_of(exc) == "bridge_unknown"
    with pytest.raises(SwitchError) as exc:
        await sw.unbridge("br", "c")
    assert code_of(exc) == "leg_not_in_bridge"
    with pytest.raises(SwitchError) as exc:
        await sw.unbridge("br", "nope")
    assert code_of(exc) == "leg_unknown"


async def test_hold_and_mute_need_an_answered_leg(sw: SimulatedSwitch, clock: FakeClock) -> None:
    sw.set_script("201", EndpointScript(behaviour="no_answer"))
    await sw.dial(req("l1", "201"))
    clock.advance(0)
    for coro in (sw.hold("l1"), sw.mute("l1"), sw.start_music("l1"), sw.send_dtmf("l1", "1")):
        with pytest.raises(SwitchError) as exc:
            await coro
        assert code_of(exc) == "leg_not_answered"
    snap = sw.leg_state("l1")
    assert (snap.held, snap.muted, snap.music) == (False, False, False)


async def test_music_for_a_parked_leg(sw: SimulatedSwitch, clock: FakeClock) -> None:
    await answered(sw, clock, "a", "b")
    await sw.bridge("br", ["a", "b"], mixing=False)
    await sw.unbridge("br", "a")
    await sw.start_music("a")
    assert sw.hears("a") == {MUSIC}
    assert sw.leg_state("a").music is True
    assert sw.hears("b") == frozenset()
    with pytest.raises(SwitchError) as exc:
        await sw.start_music("a")
    assert code_of(exc) == "music_already_playing"
    await sw.stop_music("a")
    assert sw.hears("a") == frozenset()
    with pytest.raises(SwitchError) as exc:
        await sw.stop_music("a")
    assert code_of(exc) == "music_not_playing"
    await sw.bridge("br", ["a"], mixing=False)
    assert sw.hears("a") == {"b"}


async def test_hangup_stops_music(sw: SimulatedSwitch, clock: FakeClock) -> None:
    await answered(sw, clock, "a")
    await sw.start_music("a")
    await sw.hangup("a", HangupCause.NORMAL)
    assert sw.leg_state("a").music is False
    assert sw.hears("a") == frozenset()


# --------------------------------------------------------------------------- DTMF to a leg


async def test_send_dtmf_is_recorded_per_command(sw: SimulatedSwitch, clock: FakeClock) -> None:
    await answered(sw, clock, "a")
    await sw.send_dtmf("a", "12")
    await sw.send_dtmf("a", "#")
    assert sw.dtmf_sent("a") == ["12", "#"]
    sw.dtmf_sent("a").clear()  # a copy
    assert sw.dtmf_sent("a") == ["12", "#"]
    with pytest.raises(SwitchError) as exc:
        await sw.send_dtmf("a", "1x")
    assert code_of(exc) == "dtmf_invalid"
    assert sw.dtmf_sent("a") == ["12", "#"]


# --------------------------------------------------------------------------- recording


async def test_recording_segments_skip_the_paused_stretches(
    sw: SimulatedSwitch, clock: FakeClock
) -> None:
    await answered(sw, clock, "a", "b")
    clock.advance(10)
    await sw.record_start("r1", "c1")
    clock.advance(5)
    assert sw.recording_segments("r1") == [(10.0, 15.0)]  # open stretch ends "now"
    await sw.record_pause("r1")
    clock.advance(3)
    assert sw.recording_segments("r1") == [(10.0, 15.0)]
    assert sw.recording("r1").state == "paused"
    await sw.record_resume("r1")
    clock.advance(2)
    await sw.record_pause("r1")
    clock.advance(1)
    await sw.record_resume("r1")
    clock.advance(4)
    await sw.record_stop("r1")
    clock.advance(100)
    assert sw.recording_segments("r1") == [(10.0, 15.0), (18.0, 20.0), (21.0, 25.0)]
    snap = sw.recording("r1")
    assert (snap.id, snap.call_id, snap.state) == ("r1", "c1", "stopped")
    assert snap.segments == ((10.0, 15.0), (18.0, 20.0), (21.0, 25.0))


async def test_stop_while_paused_adds_no_segment(sw: SimulatedSwitch, clock: FakeClock) -> None:
    await answered(sw, clock, "a")
    await sw.record_start("r1", "c1")
    clock.advance(2)
    await sw.record_pause("r1")
    clock.advance(2)
    await sw.record_stop("r1")
    assert sw.recording_segments("r1") == [(0.0, 2.0)]


async def test_recording_errors(sw: SimulatedSwitch, clock: FakeClock) -> None:
    await answered(sw, clock, "a")
    with pytest.raises(SwitchError) as exc:
        await sw.record_start("r1", "no-such-call")
    assert code_of(exc) == "call_unknown"
    await sw.record_start("r1", "c1")
    with pytest.raises(SwitchError) as exc:
        await sw.record_start("r1", "c1")
    assert code_of(exc) == "recording_exists"
    with pytest.raises(SwitchError) as exc:
        await sw.record_start("r2", "c1")
    assert code_of(exc) == "recording_active"
    with pytest.raises(SwitchError) as exc:
        await sw.record_resume("r1")
    assert code_of(exc) == "recording_not_paused"
    await sw.record_pause("r1")
    with pytest.raises(SwitchError) as exc:
        await sw.record_pause("r1")
    assert code_of(exc) == "recording_already_paused"
    assert sw.recording("r1").state == "paused"
    await sw.record_stop("r1")
    for command in (sw.record_pause, sw.record_resume, sw.record_stop):
        with pytest.raises(SwitchError) as exc:
            await command("r1")
        assert code_of(exc) == "recording_stopped"
    for command in (sw.record_pause, sw.record_resume, sw.record_stop):
        with pytest.raises(SwitchError) as exc:
            await command("nope")
        assert code_of(exc) == "recording_unknown"
    with pytest.raises(SwitchError) as exc:
        sw.recording_segments("nope")
    assert code_of(exc) == "recording_unknown"
    await sw.record_start("r2", "c1")  # a new recording once the old one stopped
    assert sw.recording("r2").state == "active"


# --------------------------------------------------------------------------- lifecycle, listener


async def test_stop_cancels_all_timers_and_refuses_commands(
    sw: SimulatedSwitch, clock: FakeClock, rec: Recorder
) -> None:
    sw.set_script("201", EndpointScript(answer_after=5))
    await sw.start()
    await sw.dial(req("l1", "201"))
    await sw.dial(req("l2", "201"))
    await sw.stop()
    assert clock.pending == 0
    clock.advance(60)
    assert rec.events == []
    with pytest.raises(SwitchError) as exc:
        await sw.dial(req("l3"))
    assert code_of(exc) == "switch_stopped"
    with pytest.raises(SwitchError) as exc:
        sw.inject_incoming("+4930111111", "500")
    assert code_of(exc) == "switch_stopped"
    await sw.start()
    await sw.dial(req("l3", "209"))
    clock.advance(0)
    assert rec.kinds() == [K.RINGING, K.ANSWERED]


async def test_events_without_listener_are_dropped_and_logged(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    sw = SimulatedSwitch(clock)
    with caplog.at_level(logging.INFO, logger="callbridge.adapters.simswitch"):
        await sw.dial(req("l1"))
        clock.advance(0)
    assert sw.leg_state("l1").state is LegState.ANSWERED
    assert any("dropped" in r.getMessage() and "l1" in r.getMessage() for r in caplog.records)


async def test_legs_snapshot(sw: SimulatedSwitch, clock: FakeClock) -> None:
    await answered(sw, clock, "a", "b")
    incoming = sw.inject_incoming("+4930111111", "500")
    legs = sw.legs()
    assert set(legs) == {"a", "b", incoming}
    assert legs["a"] == sw.leg_state("a")
    assert legs["a"].model_dump(mode="json")["state"] == "answered"


async def test_runs_on_the_system_clock() -> None:
    queue: asyncio.Queue[SwitchEvent] = asyncio.Queue()
    sw = SimulatedSwitch(SystemClock())
    sw.set_listener(queue.put_nowait)
    await sw.dial(req("l1"))
    got = [await asyncio.wait_for(queue.get(), 2) for _ in range(2)]
    assert [e.kind for e in got] == [K.RINGING, K.ANSWERED]
    await sw.stop()
