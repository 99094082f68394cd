"""The SIP registrar for agents' phones (RFC 3261 §10.3), with digest authentication.

Sans-I/O: :meth:`Registrar.handle_register` takes a parsed REGISTER and the address it came from
and returns the response to send; the SIP endpoint owns sockets and transactions (it must absorb
retransmissions of a request before they get here, or a retransmitted REGISTER would be refused
as a nonce-count replay).

What the B2BUA needs: :meth:`Registrar.contacts` gives a phone's live bindings, most recently
refreshed first. Send an INVITE with Request-URI :attr:`Binding.contact` to
:attr:`Binding.source` (the transport, host and port the REGISTER actually came from: behind a NAT
that differs from the Contact's host and port, and only the source is reachable).

Failed authentications are counted per source IP and per username in sliding windows
(:class:`AuthRateLimit`); while either is over its limit, REGISTERs from that source or for that
user are answered ``503 Service Unavailable`` with ``Retry-After`` without looking at credentials.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from email.utils import format_datetime

from aiosipua.headers import AuthCredentials, parse_auth, parse_params, parse_uri
from aiosipua.message import SipRequest, SipResponse

from callbridge.sip.source import Source

from ..ports.clock import Clock, TimerHandle
from .credentials import CredentialLookup, SipCredential
from .digest import MD5, SHA256, DigestAuthenticator, DigestResult, DigestStatus, FailureReason
from .responses import make_response

log = logging.getLogger(__name__)

#: Called with ``(username, live bindings)`` when a phone's set of bindings changes.
OnChange = Callable[[str, list["Binding"]], None]

_MAX_EXPIRES_VALUE = 2**32 - 1  # RFC 3261 §20.19: delta-seconds fit in 32 bits


@dataclass(frozen=True, slots=True)
class Binding:
    """One registered contact of a phone.

    ``expires_at`` and ``updated_at`` are on the registrar clock's ``monotonic()`` scale.
    """

    username: str
    tenant_id: str
    extension_id: str
    #: The address of record, ``sip:user@host`` from the To header.
    aor: str
    #: The Contact URI: the Request-URI of requests to this phone.
    contact: str
    #: Where the REGISTER came from: send requests here (NAT-safe), over this transport.
    source: Source
    expires_at: float
    updated_at: float
    call_id: str
    cseq: int
    user_agent: str | None = None
    #: Orders refreshes that happen at the same clock reading (higher is more recent).
    sequence: int = field(default=0, compare=False)

    def expires_in(self, now: float) -> int:
        """Whole seconds left at monotonic time ``now`` (never negative)."""
        return max(0, math.ceil(self.expires_at - now))

    @property
    def behind_nat(self) -> bool:
        """True when the Contact's host/port is not where the REGISTER came from."""
        uri = parse_uri(self.contact)
        secure = (
            uri.scheme.lower() == "sips" or (uri.params.get("transport") or "").lower() == "tls"
        )
        port = uri.port if uri.port is not None else (5061 if secure else 5060)
        return (uri.host.strip("[]").lower(), port) != (self.source.host.lower(), self.source.port)


@dataclass(frozen=True, slots=True)
class AuthRateLimit:
    """Limits on failed authentications within a sliding ``window`` (seconds).

    The per-source limit is the higher one by default: many phones may share one public address
    behind a NAT, and one misconfigured phone should not lock out the whole office.
    ``max_tracked`` bounds the number of sources and of usernames remembered (least recently
    failed forgotten first). Only usernames that exist are tracked per user, so failures for
    made-up names cannot push real users out of the table.
    """

    per_source: int = 10
    per_user: int = 5
    window: float = 60.0
    max_tracked: int = 10_000


class _FailureWindow:
    """Failure times per key in a sliding window, for at most ``max_keys`` keys (LRU)."""

    def __init__(self, limit: int, window: float, max_keys: int) -> None:
        if limit < 1 or window <= 0 or max_keys < 1:
            raise ValueError("limit, window and max_keys must be positive")
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def record(self, key: str, now: float) -> None:
        times = self._failures.get(key)
        if times is None:
            times = self._failures[key] = deque(maxlen=self.limit)
        times.append(now)
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def blocked_for(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again (0 when it is not blocked)."""
        times = self._failures.get(key)
        if times is None or len(times) < self.limit:
            return 0.0
        return max(0.0, times[0] + self.window - now)

    def purge(self, now: float) -> None:
        stale = [k for k, t in self._failures.items() if not t or t[-1] + self.window <= now]
        for key in stale:
            del self._failures[key]


class _Reject(Exception):
    """Abort REGISTER processing with a response (internal control flow)."""

    def __init__(self, status: int, reason: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason
        self.headers = list(headers)


@dataclass(slots=True)
class _ContactSpec:
    uri: str
    key: tuple[object, ...]
    expires: int


def _contact_key(uri: str) -> tuple[object, ...]:
    """RFC 3261 §19.1.4-style comparison key of a Contact URI."""
    parsed = parse_uri(uri)
    params = tuple(
        sorted(
            (k.lower(), (v or "").lower())
            for k, v in parsed.params.items()
            if k.lower() in ("transport", "user", "ttl", "method", "maddr")
        )
    )
    return (parsed.scheme.lower(), parsed.user, parsed.host.lower(), parsed.port, params)


def _split_contact(value: str) -> tuple[str, dict[str, str | None]]:
    """The URI and the header parameters of one Contact value.

    In the addr-spec form (no angle brackets) every ``;param`` belongs to the header, not the URI
    (RFC 3261 §20.10), which ``parse_address`` does not follow, hence this small splitter.
    """
    value = value.strip()
    if "<" in value:
        start, end = value.index("<"), value.find(">", value.index("<"))
        if end == -1:
            raise ValueError("unterminated Contact URI")
        rest = value[end + 1 :].strip()
        return value[start + 1 : end].strip(), parse_params(rest[1:] if rest else "")
    uri, _, params = value.partition(";")
    if "?" in uri:
        # A URI with headers (or a comma or semicolon) must be in angle brackets (§20.10).
        raise ValueError("addr-spec Contact with URI headers")
    return uri.strip(), parse_params(params)


def _parse_delta(value: str | None) -> int | None:
    """A delta-seconds value, capped at 2**32-1; ValueError when malformed."""
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit():
        raise ValueError(f"bad delta-seconds {value!r}")
    return min(int(text), _MAX_EXPIRES_VALUE)


class Registrar:
    """Location service for agents' phones, filled by authenticated REGISTERs.

    ``lookup`` gives a username's credential (None if unknown). Bindings live in memory: after a
    restart phones re-register (within their refresh interval).
    """

    def __init__(
        self,
        realm: str,
        lookup: CredentialLookup,
        clock: Clock,
        *,
        allow_md5: bool = False,
        allow_no_qop: bool = False,
        algorithms: Sequence[str] = (SHA256, MD5),
        min_expires: int = 60,
        max_expires: int = 3600,
        default_expires: int = 3600,
        max_bindings_per_aor: int = 5,
        rate_limit: AuthRateLimit | None = None,
        nonce_secret: bytes | None = None,
        nonce_ttl: float = 300.0,
        purge_interval: float = 30.0,
        on_change: OnChange | None = None,
    ) -> None:
        if not 0 < min_expires <= default_expires <= max_expires:
            raise ValueError("need 0 < min_expires <= default_expires <= max_expires")
        if max_bindings_per_aor < 1:
            raise ValueError("max_bindings_per_aor must be positive")
        self.realm = realm
        self.lookup = lookup
        self.clock = clock
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = default_expires
        self.max_bindings_per_aor = max_bindings_per_aor
        self.rate_limit = rate_limit or AuthRateLimit()
        self.purge_interval = purge_interval
        #: Algorithms to challenge with (SHA-256 always first; MD5 only if ``allow_md5``). Some
        #: clients give up when any challenge has an algorithm they lack instead of picking one
        #: they support (SIPp 3.6.1, baresip 1.0.0): ``algorithms=("MD5",)`` serves those.
        self.algorithms = tuple(algorithms)
        self.on_change = on_change
        self.digest = DigestAuthenticator(
            nonce_secret or secrets.token_bytes(32),
            clock,
            allow_md5=allow_md5,
            allow_no_qop=allow_no_qop,
            nonce_ttl=nonce_ttl,
        )
        if not self.digest.offered_algorithms(self.algorithms):
            raise ValueError("no digest algorithm to offer (MD5 needs allow_md5)")
        limits = self.rate_limit
        self._by_source = _FailureWindow(limits.per_source, limits.window, limits.max_tracked)
        self._by_user = _FailureWindow(limits.per_user, limits.window, limits.max_tracked)
        self._bindings: dict[str, dict[tuple[object, ...], Binding]] = {}
        self._sequence = 0
        self._timer: TimerHandle | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start purging expired bindings every ``purge_interval`` seconds (on the clock)."""
        if self._timer is None:
            self._timer = self.clock.call_later(self.purge_interval, self._tick)

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        try:
            self.purge()
        except Exception:  # never let the purge timer die
            log.exception("sip registrar: purge failed")
        if self._timer is not None:
            self._timer = self.clock.call_later(self.purge_interval, self._tick)

    def purge(self) -> int:
        """Drop expired bindings (notifying ``on_change``) and old limiter/nonce state.

        Returns how many bindings were removed.
        """
        now = self.clock.monotonic()
        removed = 0
        for username in list(self._bindings):
            removed += self._expire(username, now)
        self._by_source.purge(now)
        self._by_user.purge(now)
        self.digest.purge()
        return removed

    def remove(self, username: str) -> int:
        """Drop every binding of ``username`` (say its SIP account was deleted or its password
        changed); notifies ``on_change``. Returns how many bindings were dropped."""
        bindings = self._bindings.get(username)
        if not bindings:
            return 0
        self._commit(username, bindings, {})
        return len(bindings)

    # -- queries --------------------------------------------------------------------------------

    def contacts(self, username: str) -> list[Binding]:
        """The live bindings of ``username``, most recently refreshed first."""
        now = self.clock.monotonic()
        live = [b for b in self._bindings.get(username, {}).values() if b.expires_at > now]
        return sorted(live, key=lambda b: (b.updated_at, b.sequence), reverse=True)

    def binding_count(self) -> int:
        """How many live bindings there are, over all phones."""
        now = self.clock.monotonic()
        return sum(
            1
            for bindings in self._bindings.values()
            for b in bindings.values()
            if b.expires_at > now
        )

    def registered_usernames(self) -> list[str]:
        """Usernames with at least one live binding."""
        return sorted(u for u in self._bindings if self.contacts(u))

    def blocked_for(self, source_host: str | None = None, username: str | None = None) -> float:
        """Seconds a source host and/or username stays blocked (0 when it is not)."""
        now = self.clock.monotonic()
        wait = 0.0
        if source_host is not None:
            wait = max(wait, self._by_source.blocked_for(source_host, now))
        if username is not None:
            wait = max(wait, self._by_user.blocked_for(username, now))
        return wait

    @property
    def limiter_size(self) -> tuple[int, int]:
        """How many sources and usernames the failure limiter currently remembers."""
        return len(self._by_source), len(self._by_user)

    # -- REGISTER -------------------------------------------------------------------------------

    async def handle_register(
        self, request: SipRequest, source: tuple[str, str, int]
    ) -> SipResponse:
        """Process a REGISTER received from ``source`` = (transport, host, port)."""
        src = Source(source[0].upper(), source[1], int(source[2]))
        try:
            return self._register(request, src)
        except _Reject as reject:
            return self._respond(request, reject.status, reject.reason, reject.headers)

    def _respond(
        self,
        request: SipRequest,
        status: int,
        reason: str,
        headers: Iterable[tuple[str, str]] = (),
    ) -> SipResponse:
        response = make_response(request, status, reason)  # adds a To tag
        for name, value in headers:
            response.add_header(name, value)
        return response

    def _challenge(self, request: SipRequest, *, stale: bool = False) -> SipResponse:
        values = self.digest.challenge(self.realm, self.algorithms, stale=stale)
        return self._respond(
            request, 401, "Unauthorized", [("WWW-Authenticate", v) for v in values]
        )

    def _register(self, request: SipRequest, src: Source) -> SipResponse:
        if request.method.upper() != "REGISTER":
            raise _Reject(405, "Method Not Allowed", [("Allow", "REGISTER")])
        try:
            to = request.to_addr
            cseq = request.cseq
        except (ValueError, IndexError):
            raise _Reject(400, "Bad Request") from None
        call_id = request.call_id
        if to is None or cseq is None or not call_id or cseq.method.upper() != "REGISTER":
            raise _Reject(400, "Bad Request")
        if to.uri.scheme not in ("sip", "sips") or not to.uri.user:
            raise _Reject(404, "Not Found")
        aor_user = to.uri.user

        # Step 0 (ours): a source or user over its failure limit is not even challenged.
        credentials = self._our_credentials(request)
        claimed = {aor_user} | {c.params["username"] for c in credentials if "username" in c.params}
        wait = max(self.blocked_for(src.host), *(self.blocked_for(username=u) for u in claimed))
        if wait > 0:
            # 503 + Retry-After rather than 403: SIP has no 429, and RFC 3261 §21.5.4 gives
            # Retry-After on 503 the meaning "try again after this long", so a legitimate phone
            # caught in a lockout (another device failing for its extension, or behind the same
            # NAT) retries by itself afterwards. A 403 says "do not repeat", and phones then stay
            # unregistered until someone intervenes, which would turn the limiter into a lockout
            # anyone can trigger.
            log.info(
                "sip registrar: REGISTER from %s for %s refused: rate limited", src.host, aor_user
            )
            raise _Reject(503, "Service Unavailable", [("Retry-After", str(math.ceil(wait)))])

        # Step 2: we support no extensions that a REGISTER could require.
        required = [
            o.strip() for value in request.get_header_values("Require") for o in value.split(",")
        ]
        if any(required):
            raise _Reject(
                420, "Bad Extension", [("Unsupported", ", ".join(o for o in required if o))]
            )

        # Syntax first (RFC 4475 §3.1.2.13: a malformed Contact gets 400 even without credentials).
        wildcard, specs = self._parse_contacts(request)

        # Step 3: authentication.
        if not credentials:
            return self._challenge(request)
        credential, result = self._verify(request, credentials[0])
        if result.status is DigestStatus.STALE:
            return self._challenge(request, stale=True)
        if not result.ok or credential is None:
            return self._refuse(request, src, result)

        # Step 4: authorisation. A phone registers its own extension only.
        if aor_user != credential.username:
            log.info(
                "sip registrar: %s tried to register %s from %s", credential.username, aor_user, src
            )
            raise _Reject(403, "Forbidden")

        aor = f"{to.uri.scheme}:{aor_user}@{to.uri.host}"
        user_agent = request.get_header("User-Agent")
        self._update_bindings(
            wildcard, self._grant(specs), src, credential, aor, call_id, cseq.seq, user_agent
        )
        return self._ok(request, credential.username)

    def _our_credentials(self, request: SipRequest) -> list[AuthCredentials]:
        """The digest credentials in Authorization headers meant for our realm."""
        found = []
        for value in request.get_header_values("Authorization"):
            try:
                parsed = parse_auth(value, credentials=True)
            except (ValueError, IndexError):
                continue
            params = {k.strip().lower(): v for k, v in parsed.params.items()}
            if parsed.scheme.lower() == "digest" and params.get("realm") == self.realm:
                found.append(AuthCredentials(scheme=parsed.scheme, params=params))
        return found

    def _verify(
        self, request: SipRequest, credentials: AuthCredentials
    ) -> tuple[SipCredential | None, DigestResult]:
        found: dict[str, SipCredential] = {}

        def ha1_lookup(username: str, algorithm: str) -> str | None:
            credential = self.lookup(username)
            if credential is None or credential.realm != self.realm:
                return None
            found[username] = credential
            return credential.ha1_sha256 if algorithm == SHA256 else credential.ha1_md5

        result = self.digest.verify(
            request.method, credentials, ha1_lookup, request_uri=request.uri, realm=self.realm
        )
        return found.get(result.username or ""), result

    def _refuse(self, request: SipRequest, src: Source, result: DigestResult) -> SipResponse:
        reason = result.reason
        if reason in (FailureReason.MALFORMED, FailureReason.URI_MISMATCH):
            raise _Reject(400, "Bad Request")
        if reason in (FailureReason.BAD_RESPONSE, FailureReason.UNKNOWN_USER):
            now = self.clock.monotonic()
            self._by_source.record(src.host, now)
            if reason is FailureReason.BAD_RESPONSE and result.username:
                self._by_user.record(result.username, now)
            log.warning(
                "sip registrar: authentication failed for %r from %s (%s)",
                result.username,
                src.host,
                reason.value,
            )
            raise _Reject(403, "Forbidden")
        # Unsupported algorithm or qop, another realm, a nonce we did not issue (e.g. before a
        # restart with a new secret) or a replayed nonce count: ask again with a fresh nonce.
        log.info(
            "sip registrar: re-challenging %r from %s (%s)",
            result.username,
            src.host,
            reason.value if reason else "?",
        )
        return self._challenge(request)

    # -- bindings -------------------------------------------------------------------------------

    def _parse_contacts(self, request: SipRequest) -> tuple[bool, list[_ContactSpec]]:
        """(wildcard?, contacts) with their requested expiry; raises _Reject(400) on bad input."""
        values = request.get_header_values("Contact")
        try:
            header_expires = _parse_delta(request.get_header("Expires"))
        except ValueError:
            raise _Reject(400, "Bad Request") from None
        if any(v.strip() == "*" for v in values):
            if len(values) != 1 or header_expires != 0:
                raise _Reject(400, "Bad Request")
            return True, []
        specs: list[_ContactSpec] = []
        for value in values:
            try:
                uri, params = _split_contact(value)
                expires = _parse_delta(params.get("expires"))
                key = _contact_key(uri)
            except ValueError:
                raise _Reject(400, "Bad Request") from None
            if not uri.lower().startswith(("sip:", "sips:")) or not parse_uri(uri).host:
                raise _Reject(400, "Bad Request")
            if expires is None:
                expires = header_expires if header_expires is not None else self.default_expires
            specs.append(_ContactSpec(uri, key, expires))
        return False, specs

    def _grant(self, specs: list[_ContactSpec]) -> list[_ContactSpec]:
        """The expiry granted to each contact (capped); 423 when one asks for too little."""
        for spec in specs:
            if 0 < spec.expires < self.min_expires:
                raise _Reject(423, "Interval Too Brief", [("Min-Expires", str(self.min_expires))])
        return [_ContactSpec(s.uri, s.key, min(s.expires, self.max_expires)) for s in specs]

    def _update_bindings(
        self,
        wildcard: bool,
        specs: list[_ContactSpec],
        src: Source,
        credential: SipCredential,
        aor: str,
        call_id: str,
        cseq: int,
        user_agent: str | None,
    ) -> None:
        username = credential.username
        now = self.clock.monotonic()
        self._expire(username, now)
        current = self._bindings.get(username, {})
        if not wildcard and not specs:
            return  # a query: nothing to change

        def check_order(existing: Binding) -> None:
            # RFC 3261 §10.3 steps 6-7: an out-of-order request for the same Call-ID fails. The
            # RFC names no status; 500 is what §10.3 prescribes for an update that cannot be
            # applied as a whole, and it tells the phone to retry with a fresh request.
            if existing.call_id == call_id and cseq <= existing.cseq:
                raise _Reject(500, "Server Internal Error", [("Retry-After", "1")])

        updated = dict(current)
        if wildcard:
            for binding in current.values():
                check_order(binding)
            updated = {}
        else:
            if sum(1 for s in specs if s.expires > 0) > self.max_bindings_per_aor:
                raise _Reject(403, "Too Many Contacts")
            for spec in specs:
                existing = current.get(spec.key)
                if existing is not None:
                    check_order(existing)
                if spec.expires == 0:
                    updated.pop(spec.key, None)
                    continue
                self._sequence += 1
                updated[spec.key] = Binding(
                    username=username,
                    tenant_id=credential.tenant_id,
                    extension_id=credential.extension_id,
                    aor=aor,
                    contact=spec.uri,
                    source=src,
                    expires_at=now + spec.expires,
                    updated_at=now,
                    call_id=call_id,
                    cseq=cseq,
                    user_agent=user_agent,
                    sequence=self._sequence,
                )
            # Over the limit: forget the least recently refreshed of the *other* bindings (a
            # phone that restarted on a new port leaves its old binding behind until it expires).
            while len(updated) > self.max_bindings_per_aor:
                oldest = min(updated, key=lambda k: (updated[k].updated_at, updated[k].sequence))
                del updated[oldest]

        self._commit(username, current, updated)

    def _commit(
        self,
        username: str,
        before: dict[tuple[object, ...], Binding],
        after: dict[tuple[object, ...], Binding],
    ) -> None:
        if after:
            self._bindings[username] = after
        else:
            self._bindings.pop(username, None)
        changed = before.keys() != after.keys() or any(
            (before[k].source, before[k].contact) != (after[k].source, after[k].contact)
            for k in after
        )
        if changed:
            log.info("sip registrar: %s now has %d binding(s)", username, len(after))
            self._notify(username)

    def _expire(self, username: str, now: float) -> int:
        bindings = self._bindings.get(username)
        if not bindings:
            return 0
        live = {k: b for k, b in bindings.items() if b.expires_at > now}
        removed = len(bindings) - len(live)
        if removed:
            self._commit(username, bindings, live)
        return removed

    def _notify(self, username: str) -> None:
        if self.on_change is None:
            return
        try:
            self.on_change(username, self.contacts(username))
        except Exception:
            log.exception("sip registrar: on_change callback failed for %s", username)

    def _ok(self, request: SipRequest, username: str) -> SipResponse:
        now = self.clock.monotonic()
        headers = [
            ("Contact", f"<{b.contact}>;expires={b.expires_in(now)}")
            for b in self.contacts(username)
        ]
        headers.append(("Date", format_datetime(self.clock.now(), usegmt=True)))
        return self._respond(request, 200, "OK", headers)
