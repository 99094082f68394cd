"""Server-side HTTP digest authentication for SIP (RFC 7616, RFC 8760, RFC 2617 compatibility).

The server side of what :mod:`aiosipua.auth` does for clients:

* :meth:`DigestAuthenticator.challenge` builds ``WWW-Authenticate`` values, SHA-256 first and MD5
  only when the server allows it (RFC 8760 §2.4: one challenge per algorithm, in order of
  preference).
* Nonces are stateless: ``base64url(timestamp ‖ random ‖ HMAC-SHA-256(secret, realm ‖ timestamp ‖
  random))``. A nonce is accepted only if its MAC is right (so it was issued by a server holding
  the secret, for this realm) and it is younger than ``nonce_ttl``; an older one whose response is
  otherwise right gets ``stale=true`` (RFC 7616 §3.3), so the phone retries without asking its user.
* :meth:`DigestAuthenticator.verify` checks the ``Authorization`` credentials of a request:
  scheme, algorithm, realm, ``uri`` against the Request-URI, nonce, ``qop=auth`` with ``nc`` and
  ``cnonce``, and the response (compared in constant time). The highest ``nc`` seen per nonce is
  remembered while the nonce lives, so a replayed request is refused; the table is bounded (see
  :class:`_NonceCounts`).

Nothing here logs or returns a password, an HA1 or a credentials header value.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import secrets
import struct
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from aiosipua.headers import AuthChallenge, AuthCredentials, parse_auth, parse_uri, stringify_auth

from ..ports.clock import Clock

SHA256 = "SHA-256"
MD5 = "MD5"
#: Algorithms this module can verify, in order of preference.
ALGORITHMS: tuple[str, ...] = (SHA256, MD5)

_HASHES: dict[str, Callable[[bytes], str]] = {
    SHA256: lambda data: hashlib.sha256(data).hexdigest(),
    MD5: lambda data: hashlib.md5(data, usedforsecurity=False).hexdigest(),
}
_HEX_LEN = {SHA256: 64, MD5: 32}

#: ``(username, algorithm) -> HA1 hex`` (``H(username:realm:password)``), or None when unknown.
Ha1Lookup = Callable[[str, str], str | None]

_NONCE_CONTEXT = b"callbridge/sip-digest-nonce/v1\x00"
_NONCE_PAYLOAD = struct.Struct(">Q8s")  # issue time in ms since the epoch, 8 random bytes
_NONCE_MAC_LEN = 16
_NONCE_LEN = _NONCE_PAYLOAD.size + _NONCE_MAC_LEN
_FUTURE_SKEW_MS = 5_000
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


class DigestStatus(enum.Enum):
    """How a verification ended."""

    OK = "ok"
    #: The response was right but the nonce has expired: re-challenge with ``stale=true``.
    STALE = "stale"
    FAILED = "failed"


class FailureReason(enum.Enum):
    """Why a verification failed. Registrars map these onto 400, 401 or 403."""

    #: Missing or unparsable parameters (no username, nc not hex, ...).
    MALFORMED = "malformed"
    #: Not ``Digest``, an algorithm or qop this server does not accept, ``userhash``.
    UNSUPPORTED = "unsupported"
    #: The credentials are for another realm.
    REALM_MISMATCH = "realm_mismatch"
    #: The ``uri`` parameter does not designate the Request-URI.
    URI_MISMATCH = "uri_mismatch"
    #: The nonce was not issued by this server (bad MAC, wrong realm, from the future).
    NONCE_INVALID = "nonce_invalid"
    #: The nonce count was not above the highest one already accepted for this nonce.
    NONCE_REPLAY = "nonce_replay"
    #: No credential for this username (answered like a bad password, see BAD_RESPONSE).
    UNKNOWN_USER = "unknown_user"
    #: The response does not match: wrong password (or tampering).
    BAD_RESPONSE = "bad_response"


@dataclass(frozen=True, slots=True)
class DigestResult:
    """The outcome of :meth:`DigestAuthenticator.verify`.

    ``username`` is the (claimed) username when the credentials carried one, so a caller can
    rate-limit failures per user; it is *authenticated* only when ``status`` is ``OK``.
    """

    status: DigestStatus
    username: str | None = None
    algorithm: str | None = None
    reason: FailureReason | None = None

    @property
    def ok(self) -> bool:
        return self.status is DigestStatus.OK

    @property
    def stale(self) -> bool:
        return self.status is DigestStatus.STALE


def _hash(algorithm: str, text: str) -> str:
    return _HASHES[algorithm](text.encode("utf-8"))


def digest_response(
    algorithm: str,
    ha1: str,
    nonce: str,
    method: str,
    uri: str,
    *,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
) -> str:
    """The expected ``response`` (RFC 7616 §3.4.1; RFC 2069/2617 form when ``qop`` is None).

    ``HA2 = H(method:uri)``; with ``qop=auth`` the response is
    ``H(HA1:nonce:nc:cnonce:qop:HA2)``, without qop ``H(HA1:nonce:HA2)``.
    """
    ha2 = _hash(algorithm, f"{method}:{uri}")
    if qop is None:
        return _hash(algorithm, f"{ha1}:{nonce}:{ha2}")
    return _hash(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def normalize_algorithm(value: str | None) -> str | None:
    """``MD5`` or ``SHA-256`` for a known token (any case; absent means MD5), else None."""
    if value is None:
        return MD5
    upper = value.strip().upper()
    return upper if upper in _HASHES else None


def _uri_key(uri: str) -> tuple[object, ...] | None:
    """A comparison key for a SIP URI in the spirit of RFC 3261 §19.1.4 (None if not SIP)."""
    text = uri.strip()
    if ":" not in text or text.split(":", 1)[0].lower() not in ("sip", "sips"):
        return None
    parsed = parse_uri(text)
    params = tuple(
        sorted(
            (key.lower(), (value or "").lower())
            for key, value in parsed.params.items()
            if key.lower() in ("transport", "user", "ttl", "method", "maddr")
        )
    )
    return (parsed.scheme.lower(), parsed.user, parsed.host.lower(), parsed.port, params)


def uris_match(digest_uri: str, request_uri: str) -> bool:
    """Whether the digest ``uri`` parameter designates the Request-URI.

    Equal strings match; otherwise two SIP URIs match when scheme, user, host (case-insensitive),
    port and the significant parameters (transport, user, ttl, method, maddr) agree.
    """
    if digest_uri == request_uri:
        return True
    a, b = _uri_key(digest_uri), _uri_key(request_uri)
    return a is not None and a == b


class _NonceCounts:
    """The highest accepted ``nc`` per nonce, for replay detection, in bounded memory.

    At most ``capacity`` nonces are tracked, in order of last use. Evicting an entry whose nonce is
    still alive would let its old counts be replayed, so eviction raises a *watermark*: the newest
    issue time among evicted nonces. An untracked nonce issued at or before the watermark might
    have been evicted, so it is refused as stale (the phone re-authenticates with a fresh nonce at
    the cost of one round trip); an untracked nonce issued after it has never been used.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._seen: OrderedDict[str, tuple[int, int]] = OrderedDict()  # nonce -> (issued_ms, nc)
        self._watermark_ms = -1

    def __len__(self) -> int:
        return len(self._seen)

    def check(self, nonce: str, issued_ms: int, nc: int) -> bool | None:
        """True if ``nc`` is fresh, False if replayed, None if the nonce may have been evicted."""
        entry = self._seen.get(nonce)
        if entry is None:
            return None if issued_ms <= self._watermark_ms else True
        return nc > entry[1]

    def record(self, nonce: str, issued_ms: int, nc: int) -> None:
        self._seen[nonce] = (issued_ms, nc)
        self._seen.move_to_end(nonce)
        while len(self._seen) > self.capacity:
            _, (evicted_ms, _) = self._seen.popitem(last=False)
            self._watermark_ms = max(self._watermark_ms, evicted_ms)

    def expire(self, oldest_alive_ms: int) -> int:
        """Forget nonces issued before ``oldest_alive_ms`` (they are stale anyway)."""
        dead = [n for n, (issued, _) in self._seen.items() if issued < oldest_alive_ms]
        for nonce in dead:
            del self._seen[nonce]
        return len(dead)


def _credential_params(
    credentials: AuthCredentials | Mapping[str, str],
) -> tuple[str, dict[str, str]]:
    raw: Mapping[str, str]
    if isinstance(credentials, AuthCredentials):
        scheme, raw = credentials.scheme, credentials.params
    else:
        scheme, raw = "Digest", credentials
    return scheme, {key.strip().lower(): value for key, value in raw.items()}


class DigestAuthenticator:
    """Issues digest challenges and verifies credentials (server side).

    ``secret`` keys the nonce MACs: give every instance of a cluster the same secret (and a
    persistent one) if nonces must survive a restart or move between servers. Times come from
    ``clock.now()`` (wall clock, so nonces stay checkable across restarts).
    """

    def __init__(
        self,
        secret: bytes,
        clock: Clock,
        *,
        allow_md5: bool = False,
        allow_no_qop: bool = False,
        nonce_ttl: float = 300.0,
        max_tracked_nonces: int = 10_000,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the nonce secret must be at least 16 bytes")
        if nonce_ttl <= 0:
            raise ValueError("nonce_ttl must be positive")
        self._secret = secret
        self._clock = clock
        self.allow_md5 = allow_md5
        #: RFC 2069 style (no qop, so no nc/cnonce) is accepted only for MD5 and only if allowed;
        #: such a nonce is then good for one request (there is no nc to detect a replay with).
        self.allow_no_qop = allow_no_qop
        self.nonce_ttl = nonce_ttl
        self._counts = _NonceCounts(max_tracked_nonces)

    # -- nonces ---------------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self._clock.now().timestamp() * 1000)

    def _mac(self, realm: str, payload: bytes) -> bytes:
        message = _NONCE_CONTEXT + realm.encode("utf-8") + b"\x00" + payload
        return hmac.new(self._secret, message, hashlib.sha256).digest()[:_NONCE_MAC_LEN]

    def make_nonce(self, realm: str) -> str:
        """A fresh nonce for ``realm``: time-stamped, random and signed."""
        payload = _NONCE_PAYLOAD.pack(self._now_ms(), secrets.token_bytes(8))
        raw = payload + self._mac(realm, payload)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def nonce_issued_ms(self, nonce: str, realm: str) -> int | None:
        """The issue time (ms since the epoch) of a nonce made here for ``realm``, or None."""
        if len(nonce) > 64:
            return None
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (ValueError, TypeError):
            return None
        if len(raw) != _NONCE_LEN:
            return None
        payload, mac = raw[: _NONCE_PAYLOAD.size], raw[_NONCE_PAYLOAD.size :]
        if not hmac.compare_digest(mac, self._mac(realm, payload)):
            return None
        issued_ms, _ = _NONCE_PAYLOAD.unpack(payload)
        if issued_ms > self._now_ms() + _FUTURE_SKEW_MS:
            return None
        return int(issued_ms)

    def _is_stale(self, issued_ms: int) -> bool:
        return self._now_ms() - issued_ms > self.nonce_ttl * 1000

    def purge(self) -> int:
        """Forget the counts of nonces that have expired; return how many were dropped."""
        return self._counts.expire(self._now_ms() - int(self.nonce_ttl * 1000))

    @property
    def tracked_nonces(self) -> int:
        return len(self._counts)

    # -- challenges -----------------------------------------------------------------------------

    def offered_algorithms(self, algorithms: Iterable[str] = ALGORITHMS) -> list[str]:
        """``algorithms`` this server accepts, SHA-256 first, MD5 only if allowed."""
        wanted = {normalize_algorithm(a) for a in algorithms}
        return [a for a in ALGORITHMS if a in wanted and (a != MD5 or self.allow_md5)]

    def challenge(
        self, realm: str, algorithms: Iterable[str] = ALGORITHMS, stale: bool = False
    ) -> list[str]:
        """``WWW-Authenticate`` values, one per accepted algorithm, SHA-256 first (RFC 8760 §2.4).

        All carry the same fresh nonce and ``qop="auth"``; ``stale=true`` when re-challenging a
        request whose only fault was an expired nonce.
        """
        nonce = self.make_nonce(realm)
        values = []
        for algorithm in self.offered_algorithms(algorithms):
            params = {"realm": realm, "nonce": nonce, "algorithm": algorithm, "qop": "auth"}
            if stale:
                params["stale"] = "true"
            values.append(stringify_auth(AuthChallenge(scheme="Digest", params=params)))
        return values

    # -- verification ---------------------------------------------------------------------------

    def verify(
        self,
        method: str,
        credentials: AuthCredentials | Mapping[str, str],
        ha1_lookup: Ha1Lookup,
        *,
        request_uri: str,
        realm: str,
    ) -> DigestResult:
        """Check the credentials of a ``method`` request sent to ``request_uri`` in ``realm``.

        ``credentials`` is a parsed ``Authorization`` value (or its parameters as a mapping).
        ``ha1_lookup(username, algorithm)`` gives the stored HA1. Only a verified request updates
        the nonce-count table.
        """
        scheme, p = _credential_params(credentials)
        username = p.get("username")

        def fail(reason: FailureReason, algorithm: str | None = None) -> DigestResult:
            return DigestResult(DigestStatus.FAILED, username, algorithm, reason)

        if scheme.lower() != "digest":
            return fail(FailureReason.UNSUPPORTED)
        if not username or not p.get("nonce") or not p.get("uri") or not p.get("response"):
            return fail(FailureReason.MALFORMED)
        algorithm = normalize_algorithm(p.get("algorithm"))
        if algorithm is None or (algorithm == MD5 and not self.allow_md5):
            return fail(FailureReason.UNSUPPORTED)
        if p.get("userhash", "false").lower() == "true":
            return fail(FailureReason.UNSUPPORTED, algorithm)
        if p.get("realm") != realm:
            return fail(FailureReason.REALM_MISMATCH, algorithm)
        if not uris_match(p["uri"], request_uri):
            return fail(FailureReason.URI_MISMATCH, algorithm)

        qop = p.get("qop")
        nc_value: int | None = None
        if qop is None:
            if algorithm != MD5 or not self.allow_no_qop:
                return fail(FailureReason.UNSUPPORTED, algorithm)
        else:
            qop = qop.lower()
            if qop != "auth":
                return fail(FailureReason.UNSUPPORTED, algorithm)
            nc_text, cnonce = p.get("nc", ""), p.get("cnonce", "")
            if len(nc_text) != 8 or not cnonce or not set(nc_text) <= _HEX_DIGITS:
                return fail(FailureReason.MALFORMED, algorithm)
            nc_value = int(nc_text, 16)
            if nc_value < 1:
                return fail(FailureReason.MALFORMED, algorithm)

        nonce = p["nonce"]
        issued_ms = self.nonce_issued_ms(nonce, realm)
        if issued_ms is None:
            return fail(FailureReason.NONCE_INVALID, algorithm)

        ha1 = ha1_lookup(username, algorithm)
        known = ha1 is not None and len(ha1) == _HEX_LEN[algorithm]
        # An unknown user costs the same hashing as a known one: no timing oracle for usernames.
        ha1_value = ha1.lower() if ha1 is not None and known else "0" * _HEX_LEN[algorithm]
        expected = digest_response(
            algorithm,
            ha1_value,
            nonce,
            method,
            p["uri"],
            qop=qop,
            nc=p.get("nc"),
            cnonce=p.get("cnonce"),
        )
        matches = hmac.compare_digest(expected.encode(), p["response"].strip().lower().encode())
        if not known:
            return fail(FailureReason.UNKNOWN_USER, algorithm)
        if not matches:
            return fail(FailureReason.BAD_RESPONSE, algorithm)
        if self._is_stale(issued_ms):
            return DigestResult(DigestStatus.STALE, username, algorithm)

        count = 1 if nc_value is None else nc_value
        fresh = self._counts.check(nonce, issued_ms, count)
        if fresh is None:
            # Possibly evicted from the bounded table: make the phone fetch a new nonce.
            return DigestResult(DigestStatus.STALE, username, algorithm)
        if not fresh:
            return fail(FailureReason.NONCE_REPLAY, algorithm)
        self._counts.record(nonce, issued_ms, count)
        return DigestResult(DigestStatus.OK, username, algorithm)


# --- the client side: answering a trunk's challenge -------------------------------------------


def answer_challenges(
    challenges: Iterable[str],
    username: str,
    password: str,
    method: str,
    uri: str,
    *,
    cnonce: str | None = None,
) -> str | None:
    """An ``Authorization``/``Proxy-Authorization`` value answering the best of ``challenges``
    (the ``WWW-Authenticate``/``Proxy-Authenticate`` values of a 401/407), or None.

    SHA-256 is preferred to MD5 when both are offered (RFC 8760 §2.4); ``qop=auth`` is used when
    offered (``nc=00000001`` and a random ``cnonce``), the RFC 2617 form without ``qop``; ``opaque``
    is echoed. A challenge that is not Digest, lacks a nonce, names another algorithm (or a
    ``-sess`` one) or offers only ``auth-int`` cannot be answered.
    """
    usable: list[tuple[int, str, dict[str, str]]] = []
    for value in challenges:
        challenge = parse_auth(value)
        if challenge.scheme.lower() != "digest":
            continue
        params = {key.strip().lower(): item for key, item in challenge.params.items()}
        algorithm = normalize_algorithm(params.get("algorithm"))
        if algorithm is None or not params.get("nonce"):
            continue
        qops = [q.strip().lower() for q in params.get("qop", "").split(",") if q.strip()]
        if qops and "auth" not in qops:
            continue
        usable.append((ALGORITHMS.index(algorithm), algorithm, params))
    if not usable:
        return None
    _, algorithm, params = min(usable, key=lambda item: item[0])
    realm, nonce = params.get("realm", ""), params["nonce"]
    ha1 = _hash(algorithm, f"{username}:{realm}:{password}")
    answer: dict[str, str] = {
        "username": username,
        "realm": realm,
        "nonce": nonce,
        "uri": uri,
        "algorithm": algorithm,
    }
    if "qop" in params:
        nc, cnonce = "00000001", cnonce or secrets.token_hex(8)
        answer["response"] = digest_response(
            algorithm, ha1, nonce, method, uri, qop="auth", nc=nc, cnonce=cnonce
        )
        answer.update(qop="auth", nc=nc, cnonce=cnonce)
    else:
        answer["response"] = digest_response(algorithm, ha1, nonce, method, uri)
    if "opaque" in params:
        answer["opaque"] = params["opaque"]
    return stringify_auth(AuthCredentials("Digest", answer))
