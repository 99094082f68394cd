"""SIP dialogs (RFC 3261 §12), sans-I/O: the state a B2BUA keeps per leg, and request building.

Theory of operation
-------------------
A :class:`Dialog` is created from an INVITE transaction, for either role:

* UAC (:meth:`Dialog.from_uac`): our INVITE plus a 101-199 *with a To tag* (early dialog) or a
  2xx (confirmed). Route set = the response's ``Record-Route`` **reversed**; remote target = its
  ``Contact``; local CSeq = the INVITE's; remote CSeq empty (§12.1.2).
* UAS (:meth:`Dialog.from_uas`): an incoming INVITE plus the To tag we answer with. Route set =
  the INVITE's ``Record-Route`` **in order**; remote target = its ``Contact``; remote CSeq = the
  INVITE's; local CSeq empty, so our first request uses 1 (§12.1.1).

It then builds the in-dialog requests (:meth:`Dialog.new_request`: BYE, re-INVITE, INFO,
NOTIFY, REFER, UPDATE, ...; :meth:`Dialog.new_ack` for the ACK of a re-INVITE's 2xx) per
§12.2.1.1: Request-URI = remote target, one ``Route`` per route-set entry (or, when the first
route is a strict router without ``;lr``, Request-URI = that route and the remote target appended
as the last ``Route``), ``From``/``To`` with both tags, ``CSeq`` incremented, ``Max-Forwards:
70``. ``Contact`` (ours) goes only on the methods that carry one (INVITE, UPDATE, SUBSCRIBE,
NOTIFY, REFER; RFC 3261 Table 3 marks it "not applicable" for BYE). No ``Via``: the client
transaction (:class:`~callbridge.sip.client.SipClient`) adds it.

Incoming in-dialog requests are checked with :meth:`Dialog.refusal` (§12.2.2): ``None`` when the
request belongs and is in order (its CSeq is then recorded), else the status to answer with:
481 for a terminated dialog or foreign tags, 500 for a CSeq not above the last one, 400 without a
CSeq. ``ACK`` and ``CANCEL`` reuse the INVITE's CSeq number and are not order-checked.
:func:`incoming_key` gives the ``(call-id, local tag, remote tag)`` to look a dialog up by.

States move through :data:`DIALOG_MACHINE` (the project's :class:`Machine` style):

==========  =============  ==========
state       event          new state
==========  =============  ==========
early       provisional    early       (another 1xx with the same tag)
early       confirm        confirmed   (2xx sent / received)
early       terminate      terminated  (non-2xx final, CANCEL, BYE from the caller)
confirmed   terminate      terminated  (BYE sent / received, 481/408 to an in-dialog request)
==========  =============  ==========

Everything else (a second 2xx confirm, anything after ``terminated``) raises
:class:`~callbridge.domain.errors.IllegalTransition` and leaves the dialog unchanged. A
terminated dialog builds no requests. The ``sips``/secure flag of §12.1 is not tracked.

Why not ``aiosipua.dialog``: its UAS route set is reversed (§12.1.1 keeps Record-Route order),
it re-serialises From/To (dropping display names and URI params), it adds its own ``Via`` (ours
is owned by ``SipClient``), it has no UAC constructor from an INVITE + response, its state
changes are silent no-ops instead of refused transitions, and a remote CSeq of 0 counts as unset.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from aiosipua.message import SipRequest, SipResponse

from callbridge.domain.errors import IllegalTransition
from callbridge.domain.fsm import Machine
from callbridge.sip.parse import split_header_values
from callbridge.sip.responses import header_tag, make_response

__all__ = [
    "ALLOW",
    "DIALOG_MACHINE",
    "Dialog",
    "DialogEvent",
    "DialogKey",
    "DialogState",
    "Role",
    "build_invite",
    "incoming_key",
    "response_key",
    "uri_of",
]

#: Methods the B2BUA handles (the ``Allow`` of our INVITEs and in-dialog 2xx).
ALLOW: Final = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY, UPDATE"

#: Methods whose requests carry our ``Contact`` (target-refresh and subscription methods).
_WITH_CONTACT: Final = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})

#: ``(call-id, local tag, remote tag)``.
DialogKey = tuple[str, str, str]

HeaderItems = Mapping[str, str] | Iterable[tuple[str, str]]


class Role(StrEnum):
    UAC = "uac"
    UAS = "uas"


class DialogState(StrEnum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class DialogEvent(StrEnum):
    PROVISIONAL = "provisional"
    CONFIRM = "confirm"
    TERMINATE = "terminate"


DIALOG_MACHINE: Final[Machine[DialogState, DialogEvent]] = Machine(
    "sip_dialog",
    {
        (DialogState.EARLY, DialogEvent.PROVISIONAL): DialogState.EARLY,
        (DialogState.EARLY, DialogEvent.CONFIRM): DialogState.CONFIRMED,
        (DialogState.EARLY, DialogEvent.TERMINATE): DialogState.TERMINATED,
        (DialogState.CONFIRMED, DialogEvent.TERMINATE): DialogState.TERMINATED,
    },
    codes={
        (DialogState.CONFIRMED, DialogEvent.CONFIRM): "sip_dialog_already_confirmed",
        (DialogState.TERMINATED, DialogEvent.TERMINATE): "sip_dialog_already_terminated",
    },
)


def uri_of(value: str) -> str:
    """The URI of a ``Contact``/``From``/``To``/``Route`` value (name-addr or addr-spec).

    Only the first of comma-separated values is read; header params (after ``>`` or, for an
    addr-spec, after the first ``;``) are dropped.
    """
    first = split_header_values(value)[0].strip()
    if "<" in first:
        start = first.find("<") + 1
        end = first.find(">", start)
        return (first[start:end] if end != -1 else first[start:]).strip()
    return first.split(";")[0].strip()


def _name_addr(value: str) -> str:
    """``value`` as a name-addr: an addr-spec is wrapped in ``<>`` (so URI params stay URI's)."""
    value = value.strip()
    return value if "<" in value else f"<{value}>"


def _without_tag(value: str) -> str:
    """A ``From``/``To`` value without its ``tag`` parameter (other params and text kept)."""
    close = value.rfind(">")
    if close != -1:
        head, params = value[: close + 1], value[close + 1 :]
    else:
        semi = value.find(";")
        head, params = (value, "") if semi == -1 else (value[:semi], value[semi:])
    kept = [
        part for part in params.split(";")[1:] if part.partition("=")[0].strip().lower() != "tag"
    ]
    return head.strip() + "".join(f";{part.strip()}" for part in kept)


def _loose(route: str) -> bool:
    """Whether a Route entry names a loose router (its URI has an ``lr`` parameter)."""
    params = uri_of(route).split(";")[1:]
    return any(param.partition("=")[0].strip().lower() == "lr" for param in params)


def _cseq(message: SipRequest | SipResponse) -> tuple[int, str] | None:
    value = message.headers.get_first("cseq")
    if value is None:
        return None
    number, _, method = value.strip().partition(" ")
    if not number.isdigit() or not method.strip():
        return None
    return int(number), method.strip().upper()


def _record_route(message: SipRequest | SipResponse) -> list[str]:
    return [
        value.strip()
        for header in message.headers.get("record-route")
        for value in split_header_values(header)
        if value.strip()
    ]


def _required(message: SipRequest | SipResponse, name: str) -> str:
    value = message.headers.get_first(name)
    if value is None or not value.strip():
        raise ValueError(f"missing {name} header")
    return value.strip()


def _add_headers(message: SipRequest | SipResponse, items: HeaderItems | None) -> None:
    if items is None:
        return
    pairs = items.items() if isinstance(items, Mapping) else items
    for name, value in pairs:
        message.headers.append(name, value)


def _set_body(message: SipRequest | SipResponse, body: bytes, content_type: str | None) -> None:
    if body and content_type is None:
        raise ValueError("a body needs a content_type")
    if content_type is not None:
        message.headers.set_single("Content-Type", content_type)
    message.body = body


def incoming_key(request: SipRequest) -> DialogKey | None:
    """``(call-id, local tag, remote tag)`` of a request we received, or None outside a dialog.

    The local tag is the request's ``To`` tag (ours), the remote tag its ``From`` tag. None when
    the ``To`` has no tag (an initial request) or Call-ID / From tag are missing.
    """
    call_id = request.headers.get_first("call-id")
    to = request.headers.get_first("to")
    sender = request.headers.get_first("from")
    if call_id is None or to is None or sender is None:
        return None
    local, remote = header_tag(to), header_tag(sender)
    if not call_id.strip() or local is None or remote is None:
        return None
    return call_id.strip(), local, remote


def response_key(response: SipResponse) -> DialogKey | None:
    """``(call-id, local tag, remote tag)`` of a response to our request (From tag = ours)."""
    call_id = response.headers.get_first("call-id")
    to = response.headers.get_first("to")
    sender = response.headers.get_first("from")
    if call_id is None or to is None or sender is None:
        return None
    local, remote = header_tag(sender), header_tag(to)
    if not call_id.strip() or local is None or remote is None:
        return None
    return call_id.strip(), local, remote


def build_invite(
    *,
    request_uri: str,
    from_uri: str,
    from_tag: str,
    to_uri: str,
    call_id: str,
    contact: str,
    sdp: bytes,
    cseq: int = 1,
    supported: Sequence[str] = (),
    extra_headers: HeaderItems | None = None,
) -> SipRequest:
    """An out-of-dialog INVITE with an SDP offer, without a Via (:meth:`SipClient.invite` adds it).

    ``from_uri``/``to_uri``/``contact`` may be a bare URI (wrapped in ``<>``) or a name-addr
    (``"Alice" <sip:alice@host>``). ``Supported`` is only sent when ``supported`` names an
    extension (we implement none yet, so by default none is claimed).
    """
    if not from_tag:
        raise ValueError("an INVITE needs a From tag")
    invite = SipRequest(method="INVITE", uri=request_uri)
    invite.headers.append("Max-Forwards", "70")
    invite.headers.append("From", f"{_name_addr(from_uri)};tag={from_tag}")
    invite.headers.append("To", _name_addr(to_uri))
    invite.headers.append("Call-ID", call_id)
    invite.headers.append("CSeq", f"{cseq} INVITE")
    invite.headers.append("Contact", _name_addr(contact))
    invite.headers.append("Allow", ALLOW)
    if supported:
        invite.headers.append("Supported", ", ".join(supported))
    _add_headers(invite, extra_headers)
    _set_body(invite, sdp, "application/sdp")
    return invite


@dataclass
class Dialog:
    """One SIP dialog (RFC 3261 §12). Mutable: CSeqs, target and state change over its life.

    ``local_address``/``remote_address`` are the ``From``/``To`` values without tags (display
    names and URI params kept), ``contact`` is our ``Contact`` header value.
    """

    role: Role
    call_id: str
    local_tag: str
    remote_tag: str
    local_address: str
    remote_address: str
    remote_target: str
    route_set: tuple[str, ...]
    contact: str
    local_cseq: int
    remote_cseq: int | None
    state: DialogState = DialogState.EARLY

    @classmethod
    def from_uac(
        cls, invite: SipRequest, response: SipResponse, *, contact: str | None = None
    ) -> Dialog:
        """The dialog our ``invite`` created with ``response`` (101-199 with a To tag, or 2xx).

        ``contact`` defaults to the INVITE's ``Contact``. Raises ``ValueError`` when the response
        cannot create a dialog (100, a final >= 300, no To tag) or headers are missing.
        """
        if not 101 <= response.status_code <= 299:
            raise ValueError(f"a {response.status_code} does not create a dialog")
        remote_tag = header_tag(_required(response, "to"))
        if remote_tag is None:
            raise ValueError("response without a To tag creates no dialog")
        sender = _required(invite, "from")
        local_tag = header_tag(sender)
        if local_tag is None:
            raise ValueError("INVITE without a From tag")
        cseq = _cseq(invite)
        if cseq is None:
            raise ValueError("INVITE without a valid CSeq")
        target = response.headers.get_first("contact")
        return cls(
            role=Role.UAC,
            call_id=_required(invite, "call-id"),
            local_tag=local_tag,
            remote_tag=remote_tag,
            local_address=_without_tag(sender),
            remote_address=_without_tag(_required(invite, "to")),
            remote_target=uri_of(target) if target else invite.uri,
            route_set=tuple(reversed(_record_route(response))),
            contact=contact if contact is not None else _required(invite, "contact"),
            local_cseq=cseq[0],
            remote_cseq=None,
            state=DialogState.CONFIRMED if response.status_code >= 200 else DialogState.EARLY,
        )

    @classmethod
    def from_uas(cls, invite: SipRequest, *, local_tag: str, contact: str) -> Dialog:
        """The (early) dialog we create by answering ``invite`` with To tag ``local_tag``.

        Call :meth:`confirm` when the 2xx is sent. Raises ``ValueError`` on missing headers or a
        From without a tag (an RFC 2543 peer; not supported).
        """
        if not local_tag:
            raise ValueError("a dialog needs a local tag")
        sender = _required(invite, "from")
        remote_tag = header_tag(sender)
        if remote_tag is None:
            raise ValueError("INVITE without a From tag")
        cseq = _cseq(invite)
        if cseq is None:
            raise ValueError("INVITE without a valid CSeq")
        target = _required(invite, "contact")
        return cls(
            role=Role.UAS,
            call_id=_required(invite, "call-id"),
            local_tag=local_tag,
            remote_tag=remote_tag,
            local_address=_without_tag(_required(invite, "to")),
            remote_address=_without_tag(sender),
            remote_target=uri_of(target),
            route_set=tuple(_record_route(invite)),
            contact=contact,
            local_cseq=0,
            remote_cseq=cseq[0],
        )

    @property
    def key(self) -> DialogKey:
        return self.call_id, self.local_tag, self.remote_tag

    # -- states ---------------------------------------------------------------------------

    def _apply(self, event: DialogEvent) -> None:
        self.state = DIALOG_MACHINE.next(self.state, event)

    def provisional(self) -> None:
        """Another 1xx with this dialog's tag (stays early; refused once confirmed)."""
        self._apply(DialogEvent.PROVISIONAL)

    def confirm(self) -> None:
        """2xx sent (UAS) or received (UAC)."""
        self._apply(DialogEvent.CONFIRM)

    def terminate(self) -> None:
        """BYE sent/received, non-2xx final, CANCEL, or a 481/408 to an in-dialog request."""
        self._apply(DialogEvent.TERMINATE)

    # -- outgoing -------------------------------------------------------------------------

    def update_target(self, contact: str) -> None:
        """Target refresh (§12.2.1.2 / §12.2.2): a re-INVITE/UPDATE or its 2xx had ``contact``."""
        uri = uri_of(contact)
        if not uri:
            raise ValueError("empty Contact")
        self.remote_target = uri

    def _base(self, method: str, cseq: int) -> SipRequest:
        if self.state is DialogState.TERMINATED:
            raise IllegalTransition("sip_dialog", str(self.state), "request")
        routes = list(self.route_set)
        uri = self.remote_target
        if routes and not _loose(routes[0]):
            # strict router (§12.2.1.1): it becomes the Request-URI, the target the last Route
            uri = uri_of(routes.pop(0))
            routes.append(f"<{self.remote_target}>")
        request = SipRequest(method=method, uri=uri)
        for route in routes:
            request.headers.append("Route", route)
        request.headers.append("Max-Forwards", "70")
        request.headers.append("From", f"{self.local_address};tag={self.local_tag}")
        request.headers.append("To", f"{self.remote_address};tag={self.remote_tag}")
        request.headers.append("Call-ID", self.call_id)
        request.headers.append("CSeq", f"{cseq} {method}")
        return request

    def new_request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: HeaderItems | None = None,
    ) -> SipRequest:
        """The next in-dialog request (local CSeq + 1), without a Via.

        ``ACK`` (use :meth:`new_ack`) and ``CANCEL`` (:meth:`SipClient.cancel`) are refused with
        ``ValueError``; a terminated dialog refuses with ``IllegalTransition``.
        """
        method = method.upper()
        if method in ("ACK", "CANCEL"):
            raise ValueError(f"{method} is not a new in-dialog request")
        request = self._base(method, self.local_cseq + 1)
        if method in _WITH_CONTACT:
            request.headers.append("Contact", self.contact)
        if method == "INVITE":
            request.headers.append("Allow", ALLOW)
        _add_headers(request, extra_headers)
        _set_body(request, body, content_type)
        self.local_cseq += 1  # only once the request is built: a refused one takes no number
        return request

    def new_ack(
        self, invite: SipRequest, *, body: bytes = b"", content_type: str | None = None
    ) -> SipRequest:
        """ACK for the 2xx to an in-dialog (re-)``invite`` (§13.2.2.4): same CSeq number."""
        cseq = _cseq(invite)
        if cseq is None or cseq[1] != "INVITE":
            raise ValueError("not an INVITE with a valid CSeq")
        ack = self._base("ACK", cseq[0])
        _set_body(ack, body, content_type)
        return ack

    # -- incoming -------------------------------------------------------------------------

    def matches(self, request: SipRequest) -> bool:
        """Whether ``request`` carries this dialog's Call-ID and tags (as received by us)."""
        return incoming_key(request) == self.key

    def refusal(self, request: SipRequest) -> int | None:
        """Check an incoming in-dialog request (§12.2.2): None to accept, else the status.

        481 for a terminated dialog or other Call-ID/tags, 400 without a valid CSeq, 500 for a
        CSeq not above the last one (ACK/CANCEL excepted). An accepted request's CSeq becomes the
        remote CSeq.
        """
        if self.state is DialogState.TERMINATED or not self.matches(request):
            return 481
        cseq = _cseq(request)
        if cseq is None or cseq[1] != request.method.upper():
            return 400
        if cseq[1] in ("ACK", "CANCEL"):
            return None
        if self.remote_cseq is not None and cseq[0] <= self.remote_cseq:
            return 500
        self.remote_cseq = cseq[0]
        return None

    def respond(
        self,
        request: SipRequest,
        status: int,
        reason: str | None = None,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: HeaderItems | None = None,
    ) -> SipResponse:
        """A response to an in-dialog (or the dialog-creating) ``request``, with our To tag.

        101-299 to INVITE/UPDATE/SUBSCRIBE/NOTIFY/REFER carry our ``Contact``; a 2xx to an
        INVITE also ``Allow``.
        """
        response = make_response(request, status, reason, to_tag=self.local_tag)
        method = request.method.upper()
        if 101 <= status <= 299 and method in _WITH_CONTACT:
            response.headers.append("Contact", self.contact)
        if 200 <= status <= 299 and method == "INVITE":
            response.headers.append("Allow", ALLOW)
        _add_headers(response, extra_headers)
        _set_body(response, body, content_type)
        return response
