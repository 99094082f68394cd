"""SIP status <-> HangupCause <-> Q.850 Reason tables."""

from __future__ import annotations

import pytest

from callbridge.domain.calls import HangupCause
from callbridge.sip.causes import (
    Q850,
    cause_of_reason,
    cause_of_response,
    reason_header,
    response_for_cause,
)
from callbridge.sip.responses import REASON_PHRASES

C = HangupCause


@pytest.mark.parametrize(
    ("status", "cause"),
    [
        (486, C.BUSY),
        (600, C.BUSY),
        (480, C.NO_ANSWER),
        (408, C.NO_ANSWER),
        (487, C.CANCELLED),
        (401, C.REJECTED),
        (403, C.REJECTED),
        (404, C.REJECTED),
        (407, C.REJECTED),
        (410, C.REJECTED),
        (484, C.REJECTED),
        (485, C.REJECTED),
        (603, C.REJECTED),
        (604, C.REJECTED),
        (699, C.REJECTED),
        (488, C.FAILED),
        (606, C.FAILED),
        (300, C.FAILED),
        (302, C.FAILED),
        (400, C.FAILED),
        (415, C.FAILED),
        (481, C.FAILED),
        (499, C.FAILED),
        (500, C.FAILED),
        (502, C.FAILED),
        (503, C.FAILED),
        (504, C.FAILED),
    ],
)
def test_cause_of_response(status: int, cause: HangupCause) -> None:
    assert cause_of_response(status) is cause


def test_487_after_our_ring_timer_is_no_answer() -> None:
    assert cause_of_response(487, ring_timed_out=True) is C.NO_ANSWER
    # ring_timed_out only reinterprets 487: a busy that crossed the CANCEL stays busy
    assert cause_of_response(486, ring_timed_out=True) is C.BUSY


@pytest.mark.parametrize("status", [408, 503])
def test_synthetic_client_responses_are_failures(status: int) -> None:
    assert cause_of_response(status, synthetic=True) is C.FAILED


@pytest.mark.parametrize("status", [99, 100, 180, 200, 299, 700])
def test_cause_of_response_refuses_non_failures(status: int) -> None:
    with pytest.raises(ValueError):
        cause_of_response(status)


@pytest.mark.parametrize(
    ("cause", "status", "reason"),
    [
        (C.BUSY, 486, "Busy Here"),
        (C.NO_ANSWER, 480, "Temporarily Unavailable"),
        (C.REJECTED, 603, "Decline"),
        (C.CANCELLED, 487, "Request Terminated"),
        (C.FAILED, 500, "Server Internal Error"),
        (C.SHUTDOWN, 503, "Service Unavailable"),
        (C.UNALLOCATED, 404, "Not Found"),  # (#3) no DID, no single owner
        (C.NORMAL, 480, "Temporarily Unavailable"),
        (C.KILLED, 480, "Temporarily Unavailable"),
    ],
)
def test_response_for_cause(cause: HangupCause, status: int, reason: str) -> None:
    assert response_for_cause(cause) == (status, reason)


@pytest.mark.parametrize("cause", list(HangupCause))
def test_every_cause_has_a_response_and_a_reason(cause: HangupCause) -> None:
    status, reason = response_for_cause(cause)
    assert 400 <= status <= 699
    assert reason == REASON_PHRASES[status]
    assert cause in Q850
    assert reason_header(cause).startswith(f"Q.850;cause={Q850[cause].code};text=")


@pytest.mark.parametrize("cause", [C.BUSY, C.NO_ANSWER, C.REJECTED, C.CANCELLED])
def test_reject_then_read_back_gives_the_same_cause(cause: HangupCause) -> None:
    status, _ = response_for_cause(cause)
    assert cause_of_response(status) is cause


@pytest.mark.parametrize(
    ("cause", "header"),
    [
        (C.NORMAL, 'Q.850;cause=16;text="Normal call clearing"'),
        (C.BUSY, 'Q.850;cause=17;text="User busy"'),
        (C.NO_ANSWER, 'Q.850;cause=19;text="No answer from user"'),
        (C.REJECTED, 'Q.850;cause=21;text="Call rejected"'),
        (C.FAILED, 'Q.850;cause=41;text="Temporary failure"'),
        (C.CANCELLED, 'Q.850;cause=16;text="Normal call clearing"'),
        (C.SHUTDOWN, 'Q.850;cause=41;text="Temporary failure"'),
    ],
)
def test_reason_header(cause: HangupCause, header: str) -> None:
    assert reason_header(cause) == header


@pytest.mark.parametrize(
    ("value", "cause"),
    [
        ('Q.850;cause=16;text="Normal call clearing"', C.NORMAL),
        ("Q.850 ; cause = 17", C.BUSY),
        ("q.850;cause=19", C.NO_ANSWER),
        ("Q.850;cause=21", C.REJECTED),
        ("Q.850;cause=102", C.FAILED),
        ('SIP;cause=200;text="Call completed elsewhere", Q.850;cause=17', C.BUSY),
        ('Q.850;text="a, b";cause=18', C.NO_ANSWER),
        ('SIP;cause=487;text="Request Terminated"', None),
        ("Q.850;cause=abc", None),
        ("", None),
    ],
)
def test_cause_of_reason(value: str, cause: HangupCause | None) -> None:
    assert cause_of_reason(value) is cause


@pytest.mark.parametrize("cause", list(HangupCause))
def test_reason_header_reads_back(cause: HangupCause) -> None:
    read = cause_of_reason(reason_header(cause))
    assert read is not None
    assert Q850[read].code == Q850[cause].code
