"""SIP final responses <-> :class:`HangupCause` (RFC 3261 §21, RFC 3326 ``Reason``, Q.850).

Three directions, all pure functions:

* :func:`cause_of_response`: why an outgoing INVITE failed, from its final status.
* :func:`response_for_cause`: the status/reason to reject (or stop ringing) an incoming INVITE.
* :func:`reason_header`: the ``Reason: Q.850;cause=N;text="..."`` value (RFC 3326) for a BYE or
  CANCEL we send; :func:`cause_of_reason` reads one a peer sent.

Decisions (``HangupCause`` is coarse; the tables follow the Q.850 classes Asterisk and
FreeSWITCH use for SIP<->ISDN interworking, folded onto our causes):

=========================================  ================  =======================================
status                                     cause             why
=========================================  ================  =======================================
486 Busy Here, 600 Busy Everywhere         ``busy``          Q.850 17 USER_BUSY
480 Temporarily Unavailable                ``no_answer``     Q.850 18/19 NO_USER_RESPONSE/NO_ANSWER
408 Request Timeout                        ``no_answer``     a proxy/phone gave up alerting (a
                                                             408 the client synthesised for timer B
                                                             when nothing at all answered is a
                                                             failure: the B2BUA knows; see below)
487 Request Terminated                     ``cancelled``     we (or the caller) CANCELled; after
                                                             *our ring timer* it is ``no_answer``
                                                             (``ring_timed_out=True``)
401/407 (after the digest retry), 403,     ``rejected``      Q.850 21 CALL_REJECTED, 1 UNALLOCATED
404, 410, 484, 485, 603, 604                                 (404/604), 22 NUMBER_CHANGED (410),
                                                             28 INVALID_NUMBER_FORMAT (484)
488 Not Acceptable Here, 606               ``failed``        Q.850 58/65 bearer capability: no
                                                             common codec is a configuration
                                                             problem, not the callee's decision
other 3xx (redirects are not followed)     ``failed``        Q.850 23 / 127 interworking
other 4xx, all 5xx (incl. 503)             ``failed``        Asterisk: 4xx INTERWORKING, 5xx FAILURE
other 6xx                                  ``rejected``      global failure = definitive refusal
=========================================  ================  =======================================

``cause_of_response`` raises ``ValueError`` for 1xx/2xx (not failures) and for codes outside
100-699. The ``synthetic`` flag marks a 408/503 :class:`~callbridge.sip.client.SipClient`
produced itself (timer B with no response at all, or a send failure): those are ``failed``.

Reverse (``response_for_cause``): busy 486, no_answer 480, rejected 603, cancelled 487,
failed 500 (Asterisk's FAILURE mapping; not 503, which makes an upstream proxy retry elsewhere
and is reserved for ``shutdown``), shutdown 503, unallocated 404 (an inbound call to a number no
tenant routes: no DID and no single owner, Q.850 1; a 404 *we receive* stays ``rejected``, as
the callee's verdict on one attempt); the causes that only make sense after an
answer (normal, killed, kicked, transferred, joined) reject with 480.
"""

from __future__ import annotations

from typing import NamedTuple

from callbridge.domain.calls import HangupCause
from callbridge.sip.parse import split_header_values
from callbridge.sip.responses import REASON_PHRASES

__all__ = [
    "Q850",
    "Q850Cause",
    "cause_of_reason",
    "cause_of_response",
    "reason_header",
    "response_for_cause",
]


class Q850Cause(NamedTuple):
    code: int
    text: str


_BUSY = frozenset({486, 600})
_NO_ANSWER = frozenset({408, 480})
_REJECTED = frozenset({401, 403, 404, 407, 410, 484, 485, 603, 604})
_FAILED_6XX = frozenset({606})


def cause_of_response(
    status: int, *, ring_timed_out: bool = False, synthetic: bool = False
) -> HangupCause:
    """The :class:`HangupCause` of an outgoing INVITE that ended with final ``status`` >= 300.

    ``ring_timed_out``: the INVITE was CANCELled because *our* ring timer expired, so its 487
    means ``no_answer`` rather than ``cancelled``. ``synthetic``: the response was made up by the
    client transaction (timer B / transport failure), so it is ``failed`` whatever the code.
    """
    if not 100 <= status <= 699:
        raise ValueError(f"SIP status code out of range: {status}")
    if status < 300:
        raise ValueError(f"not a failure response: {status}")
    if synthetic:
        return HangupCause.FAILED
    if status == 487:
        return HangupCause.NO_ANSWER if ring_timed_out else HangupCause.CANCELLED
    if status in _BUSY:
        return HangupCause.BUSY
    if status in _NO_ANSWER:
        return HangupCause.NO_ANSWER
    if status in _REJECTED:
        return HangupCause.REJECTED
    if status >= 600 and status not in _FAILED_6XX:
        return HangupCause.REJECTED
    return HangupCause.FAILED


_RESPONSE_FOR: dict[HangupCause, int] = {
    HangupCause.BUSY: 486,
    HangupCause.NO_ANSWER: 480,
    HangupCause.REJECTED: 603,
    HangupCause.CANCELLED: 487,
    HangupCause.FAILED: 500,
    HangupCause.SHUTDOWN: 503,
    HangupCause.UNALLOCATED: 404,
    HangupCause.NORMAL: 480,
    HangupCause.KILLED: 480,
    HangupCause.KICKED: 480,
    HangupCause.TRANSFERRED: 480,
    HangupCause.JOINED: 480,
}


def response_for_cause(cause: HangupCause) -> tuple[int, str]:
    """``(status, reason phrase)`` to reject an incoming INVITE for ``cause``."""
    status = _RESPONSE_FOR[cause]
    return status, REASON_PHRASES[status]


#: Q.850 cause per HangupCause for the ``Reason`` header of a BYE/CANCEL we send.
Q850: dict[HangupCause, Q850Cause] = {
    HangupCause.NORMAL: Q850Cause(16, "Normal call clearing"),
    HangupCause.BUSY: Q850Cause(17, "User busy"),
    HangupCause.NO_ANSWER: Q850Cause(19, "No answer from user"),
    HangupCause.REJECTED: Q850Cause(21, "Call rejected"),
    HangupCause.FAILED: Q850Cause(41, "Temporary failure"),
    HangupCause.CANCELLED: Q850Cause(16, "Normal call clearing"),
    HangupCause.KILLED: Q850Cause(16, "Normal call clearing"),
    HangupCause.TRANSFERRED: Q850Cause(16, "Normal call clearing"),
    HangupCause.KICKED: Q850Cause(16, "Normal call clearing"),
    HangupCause.JOINED: Q850Cause(16, "Normal call clearing"),
    HangupCause.SHUTDOWN: Q850Cause(41, "Temporary failure"),
    HangupCause.UNALLOCATED: Q850Cause(1, "Unallocated (unassigned) number"),
}


def reason_header(cause: HangupCause) -> str:
    """``Reason`` header value (RFC 3326), e.g. ``Q.850;cause=16;text="Normal call clearing"``."""
    q850 = Q850[cause]
    return f'Q.850;cause={q850.code};text="{q850.text}"'


#: Q.850 codes a peer's ``Reason`` may carry, folded onto our causes (anything else: failed).
_CAUSE_OF_Q850: dict[int, HangupCause] = {
    16: HangupCause.NORMAL,
    31: HangupCause.NORMAL,  # normal, unspecified
    17: HangupCause.BUSY,
    18: HangupCause.NO_ANSWER,
    19: HangupCause.NO_ANSWER,
    1: HangupCause.UNALLOCATED,
    21: HangupCause.REJECTED,
    22: HangupCause.REJECTED,
    28: HangupCause.REJECTED,
}


def cause_of_reason(value: str) -> HangupCause | None:
    """The cause in a ``Reason`` header value a peer sent, or None if it has no Q.850 cause.

    Only the ``Q.850`` protocol is read (several comma-separated reasons may be present; the
    first Q.850 one wins). Unknown Q.850 codes map to ``failed``.
    """
    for reason in split_header_values(value):
        protocol, _, params = reason.strip().partition(";")
        if protocol.strip().upper() != "Q.850":
            continue
        for param in params.split(";"):
            name, sep, raw = param.partition("=")
            if sep and name.strip().lower() == "cause" and raw.strip().isdigit():
                return _CAUSE_OF_Q850.get(int(raw.strip()), HangupCause.FAILED)
    return None
