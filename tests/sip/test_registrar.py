"""The registrar (RFC 3261 §10.3) with hand-built REGISTERs and independently computed digests."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from pathlib import Path

import pytest
from aiosipua.auth import SipDigestAuth, build_credentials
from aiosipua.headers import AuthChallenge, parse_auth, stringify_auth
from aiosipua.message import SipMessage, SipRequest, SipResponse

from callbridge.adapters.clock import FakeClock
from callbridge.sip.credentials import SipCredential, make_credential
from callbridge.sip.registrar import AuthRateLimit, Binding, Registrar, Source

REALM = "callbridge.test"
DOMAIN = "callbridge.test"
PASSWORDS = {"1001": "secret-1001", "1002": "secret-1002", "1003": "secret-1003"}
CREDENTIALS = {
    user: make_credential("tenant-a", f"ext-{user}", user, REALM, password)
    for user, password in PASSWORDS.items()
}
_branches = itertools.count(1)
TORTURE = Path(__file__).parent / "torture"


def lookup(username: str) -> SipCredential | None:
    return CREDENTIALS.get(username)


def build_register(
    *,
    user: str = "1001",
    to_user: str | None = None,
    call_id: str = "call-1@192.0.2.10",
    cseq: int = 1,
    contacts: Sequence[str] = ("<sip:1001@192.0.2.10:5062;transport=udp>",),
    expires: int | str | None = None,
    authorization: str | None = None,
    request_uri: str = f"sip:{DOMAIN}",
    extra: Sequence[str] = (),
    method: str = "REGISTER",
) -> SipRequest:
    """A REGISTER as raw bytes off the wire, parsed by aiosipua."""
    lines = [
        f"{method} {request_uri} SIP/2.0",
        f"Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-{next(_branches)};rport",
        "Max-Forwards: 70",
        f"From: <sip:{user}@{DOMAIN}>;tag=from-{user}",
        f"To: <sip:{to_user or user}@{DOMAIN}>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        "User-Agent: test-phone/1.0",
    ]
    lines += [f"Contact: {c}" for c in contacts]
    if expires is not None:
        lines.append(f"Expires: {expires}")
    if authorization is not None:
        lines.append(f"Authorization: {authorization}")
    lines += list(extra)
    lines.append("Content-Length: 0")
    message = SipMessage.parse(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(message, SipRequest)
    return message


def challenges(response: SipResponse) -> list[AuthChallenge]:
    assert response.status_code == 401, response.status_code
    return [parse_auth(v) for v in response.get_header_values("WWW-Authenticate")]


def pick(response: SipResponse, algorithm: str = "SHA-256") -> AuthChallenge:
    for challenge in challenges(response):
        if challenge.params.get("algorithm") == algorithm:
            return challenge
    raise AssertionError(
        f"no {algorithm} challenge in {response.get_header_values('WWW-Authenticate')}"
    )


def authorization(
    challenge: AuthChallenge,
    user: str,
    password: str,
    *,
    nc: int = 1,
    uri: str = f"sip:{DOMAIN}",
) -> str:
    creds = build_credentials(
        SipDigestAuth(user, password), challenge, "REGISTER", uri, nonce_count=nc
    )
    assert creds is not None
    return stringify_auth(creds)


class Phone:
    """A SIP phone's registration client, with its own Call-ID and CSeq counter."""

    def __init__(
        self,
        registrar: Registrar,
        user: str = "1001",
        *,
        password: str | None = None,
        source: tuple[str, str, int] = ("UDP", "192.0.2.10", 5062),
        contact: str | None = None,
        call_id: str | None = None,
        algorithm: str = "SHA-256",
    ) -> None:
        self.registrar = registrar
        self.user = user
        self.password = password if password is not None else PASSWORDS.get(user, "nope")
        self.source = source
        self.contact = contact or f"<sip:{user}@{source[1]}:{source[2]}>"
        self.call_id = call_id or f"reg-{user}-{source[1]}-{source[2]}"
        self.algorithm = algorithm
        self.cseq = 0
        self.challenge: AuthChallenge | None = None
        self.nc = 0

    async def send(self, **kw: object) -> SipResponse:
        self.cseq += 1
        kw.setdefault("user", self.user)
        kw.setdefault("call_id", self.call_id)
        kw.setdefault("contacts", (self.contact,))
        request = build_register(cseq=self.cseq, **kw)  # type: ignore[arg-type]
        return await self.registrar.handle_register(request, self.source)

    async def register(self, **kw: object) -> SipResponse:
        """REGISTER, answering a 401 challenge (reusing the last nonce when there is one)."""
        if self.challenge is None:
            first = await self.send(**kw)
            if first.status_code != 401:
                return first
            self.challenge = pick(first, self.algorithm)
            self.nc = 0
        self.nc += 1
        response = await self.send(
            authorization=authorization(self.challenge, self.user, self.password, nc=self.nc), **kw
        )
        if response.status_code == 401:
            self.challenge = None
        return response


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def changes() -> list[tuple[str, list[Binding]]]:
    return []


@pytest.fixture
def registrar(clock: FakeClock, changes: list[tuple[str, list[Binding]]]) -> Registrar:
    return Registrar(
        REALM, lookup, clock, on_change=lambda user, bindings: changes.append((user, bindings))
    )


def contact_expires(response: SipResponse) -> dict[str, int]:
    out = {}
    for value in response.get_header_values("Contact"):
        uri, _, params = value.partition(">;")
        assert params.startswith("expires=")
        out[uri.lstrip("<")] = int(params.removeprefix("expires="))
    return out


# -- authentication -----------------------------------------------------------------------------


async def test_challenge_then_register_with_sha256(
    registrar: Registrar, changes: list[tuple[str, list[Binding]]]
) -> None:
    phone = Phone(registrar)
    first = await phone.send()
    [challenge] = challenges(first)  # SHA-256 only: MD5 is not allowed by default
    assert challenge.params["algorithm"] == "SHA-256"
    assert challenge.params["realm"] == REALM and challenge.params["qop"] == "auth"
    assert ";tag=" in (first.get_header("To") or "")
    assert registrar.contacts("1001") == []

    phone.challenge = challenge
    response = await phone.register()
    assert response.status_code == 200
    assert contact_expires(response) == {"sip:1001@192.0.2.10:5062": 3600}
    assert (response.get_header("Date") or "").endswith(" GMT")
    assert response.get_header("CSeq") == "2 REGISTER"
    [binding] = registrar.contacts("1001")
    assert binding.contact == "sip:1001@192.0.2.10:5062"
    assert binding.source == Source("UDP", "192.0.2.10", 5062)
    assert (binding.tenant_id, binding.extension_id) == ("tenant-a", "ext-1001")
    assert binding.user_agent == "test-phone/1.0"
    assert binding.cseq == 2 and binding.call_id == phone.call_id
    assert not binding.behind_nat
    assert registrar.binding_count() == 1
    assert changes == [("1001", [binding])]


async def test_digest_computed_by_the_rfc_formula(registrar: Registrar) -> None:
    """The client response written out from RFC 7616 §3.4.1, not by any library."""
    first = await registrar.handle_register(build_register(cseq=1), ("UDP", "192.0.2.10", 5062))
    nonce = pick(first).params["nonce"]
    uri, cnonce, nc = f"sip:{DOMAIN}", "deadbeef", "00000001"

    def h(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    response = h(
        f"{h(f'1001:{REALM}:secret-1001')}:{nonce}:{nc}:{cnonce}:auth:{h(f'REGISTER:{uri}')}"
    )
    header = (
        f'Digest username="1001", realm="{REALM}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}", algorithm=SHA-256, cnonce="{cnonce}", qop=auth, nc={nc}'
    )
    ok = await registrar.handle_register(
        build_register(cseq=2, authorization=header), ("UDP", "192.0.2.10", 5062)
    )
    assert ok.status_code == 200


async def test_md5_is_refused_unless_allowed(clock: FakeClock) -> None:
    strict = Registrar(REALM, lookup, clock)
    nonce = strict.digest.make_nonce(REALM)
    md5 = AuthChallenge(
        "Digest", {"realm": REALM, "nonce": nonce, "qop": "auth", "algorithm": "MD5"}
    )
    refused = await strict.handle_register(
        build_register(authorization=authorization(md5, "1001", "secret-1001")),
        ("UDP", "192.0.2.10", 5062),
    )
    assert refused.status_code == 401  # re-challenged, with SHA-256 only
    assert [c.params["algorithm"] for c in challenges(refused)] == ["SHA-256"]
    assert strict.contacts("1001") == []

    lenient = Registrar(REALM, lookup, clock, allow_md5=True)
    phone = Phone(lenient, algorithm="MD5")
    first = await phone.send()
    assert [c.params["algorithm"] for c in challenges(first)] == ["SHA-256", "MD5"]
    assert (await phone.register()).status_code == 200
    assert len(lenient.contacts("1001")) == 1


async def test_wrong_password_and_unknown_user_get_403(registrar: Registrar) -> None:
    wrong = Phone(registrar, password="guess")
    assert (await wrong.register()).status_code == 403
    unknown = Phone(registrar, "4242", password="guess", source=("UDP", "192.0.2.11", 5062))
    assert (await unknown.register()).status_code == 403
    assert registrar.binding_count() == 0


async def test_stale_nonce_gets_stale_challenge(registrar: Registrar, clock: FakeClock) -> None:
    phone = Phone(registrar)
    assert (await phone.register()).status_code == 200
    clock.advance(registrar.digest.nonce_ttl + 1)
    stale = await phone.register()  # the old nonce, nc=2, right password
    assert stale.status_code == 401
    [challenge] = challenges(stale)
    assert challenge.params["stale"] == "true"
    assert (await phone.register()).status_code == 200


async def test_nonce_count_replay_is_refused(registrar: Registrar) -> None:
    phone = Phone(registrar)
    assert (await phone.register()).status_code == 200
    assert phone.challenge is not None
    replay = build_register(
        cseq=99,
        call_id=phone.call_id,
        authorization=authorization(phone.challenge, "1001", "secret-1001", nc=1),
    )
    response = await registrar.handle_register(replay, phone.source)
    assert response.status_code == 401
    assert "stale" not in challenges(response)[0].params
    assert registrar.contacts("1001")[0].cseq == 2  # not updated by the replay
    # The phone's next request, with the next nc, is fine.
    assert (await phone.register()).status_code == 200


async def test_credentials_for_another_realm_are_rechallenged(registrar: Registrar) -> None:
    nonce = registrar.digest.make_nonce("elsewhere")
    foreign = AuthChallenge(
        "Digest", {"realm": "elsewhere", "nonce": nonce, "qop": "auth", "algorithm": "SHA-256"}
    )
    response = await registrar.handle_register(
        build_register(authorization=authorization(foreign, "1001", "secret-1001")),
        ("UDP", "192.0.2.10", 5062),
    )
    assert response.status_code == 401
    assert challenges(response)[0].params["realm"] == REALM


async def test_digest_uri_must_match_request_uri(registrar: Registrar) -> None:
    first = await registrar.handle_register(build_register(), ("UDP", "192.0.2.10", 5062))
    header = authorization(pick(first), "1001", "secret-1001", uri="sip:other.test")
    response = await registrar.handle_register(
        build_register(cseq=2, authorization=header), ("UDP", "192.0.2.10", 5062)
    )
    assert response.status_code == 400


async def test_a_phone_may_register_only_its_own_extension(registrar: Registrar) -> None:
    phone = Phone(registrar, "1001")
    response = await phone.register(to_user="1002")
    assert response.status_code == 403
    assert registrar.contacts("1002") == [] and registrar.contacts("1001") == []
    # A policy refusal, not a password failure: the limiter is not involved.
    assert registrar.limiter_size == (0, 0)


# -- contacts and expiry --------------------------------------------------------------------------


async def test_query_lists_bindings_without_changing_them(registrar: Registrar) -> None:
    phone = Phone(registrar)
    assert (await phone.register()).status_code == 200
    query = await phone.register(contacts=())
    assert query.status_code == 200
    assert contact_expires(query) == {"sip:1001@192.0.2.10:5062": 3600}


async def test_wildcard_removes_all_bindings(
    registrar: Registrar, changes: list[tuple[str, list[Binding]]]
) -> None:
    phone = Phone(registrar)
    assert (await phone.register()).status_code == 200
    other = Phone(registrar, source=("UDP", "192.0.2.20", 5070))
    assert (await other.register()).status_code == 200
    assert registrar.binding_count() == 2

    bad = await phone.register(contacts=("*",), expires=60)
    assert bad.status_code == 400
    bad = await phone.register(contacts=("*", "<sip:1001@192.0.2.10>"), expires=0)
    assert bad.status_code == 400
    bad = await phone.register(contacts=("*",))
    assert bad.status_code == 400

    response = await phone.register(contacts=("*",), expires=0)
    assert response.status_code == 200
    assert response.get_header_values("Contact") == []
    assert registrar.contacts("1001") == []
    assert changes[-1] == ("1001", [])


async def test_expires_zero_removes_one_binding(registrar: Registrar) -> None:
    a = "<sip:1001@192.0.2.10:5062>"
    b = "<sip:1001@192.0.2.10:5064>"
    phone = Phone(registrar)
    assert (await phone.register(contacts=(a, b))).status_code == 200
    assert registrar.binding_count() == 2
    response = await phone.register(contacts=("<sip:1001@192.0.2.10:5064>;expires=0",))
    assert response.status_code == 200
    assert contact_expires(response) == {"sip:1001@192.0.2.10:5062": 3600}
    # Expires: 0 in the header applies to contacts without their own parameter.
    response = await phone.register(contacts=(a,), expires=0)
    assert response.status_code == 200 and registrar.binding_count() == 0


async def test_interval_too_brief(registrar: Registrar) -> None:
    phone = Phone(registrar)
    response = await phone.register(expires=30)
    assert response.status_code == 423
    assert response.get_header("Min-Expires") == "60"
    response = await phone.register(
        contacts=("<sip:1001@192.0.2.10:5062>;expires=59",), expires=3600
    )
    assert response.status_code == 423
    assert registrar.binding_count() == 0
    assert (await phone.register(expires=60)).status_code == 200


async def test_expiry_is_capped_and_taken_from_param_then_header(registrar: Registrar) -> None:
    phone = Phone(registrar)
    response = await phone.register(
        contacts=(
            "<sip:1001@192.0.2.10:5062>;expires=120",
            "sip:1001@192.0.2.10:5064;expires=300",  # addr-spec: the param belongs to the header
            "<sip:1001@192.0.2.10:5066>",
        ),
        expires=99999,
    )
    assert response.status_code == 200
    assert contact_expires(response) == {
        "sip:1001@192.0.2.10:5062": 120,
        "sip:1001@192.0.2.10:5064": 300,
        "sip:1001@192.0.2.10:5066": 3600,
    }


async def test_bad_expires_and_contacts_are_400(registrar: Registrar) -> None:
    phone = Phone(registrar)
    assert (await phone.register(expires="soon")).status_code == 400
    assert (await phone.register(contacts=("<sip:1001@h>;expires=-1",))).status_code == 400
    assert (await phone.register(contacts=("<mailto:a@b>",))).status_code == 400
    assert (await phone.register(contacts=("<sip:1001@h",))).status_code == 400
    assert registrar.binding_count() == 0


async def test_bindings_expire_with_the_clock(
    registrar: Registrar, clock: FakeClock, changes: list[tuple[str, list[Binding]]]
) -> None:
    phone = Phone(registrar)
    assert (await phone.register(expires=120)).status_code == 200
    clock.advance(60)
    [binding] = registrar.contacts("1001")
    assert binding.expires_in(clock.monotonic()) == 60
    clock.advance(60)
    assert registrar.contacts("1001") == []  # lazily, on read
    assert registrar.binding_count() == 0
    assert len(changes) == 1
    assert registrar.purge() == 1
    assert changes[-1] == ("1001", [])
    assert registrar.purge() == 0


async def test_purge_timer_runs_on_the_clock(
    registrar: Registrar, clock: FakeClock, changes: list[tuple[str, list[Binding]]]
) -> None:
    await registrar.start()
    phone = Phone(registrar)
    assert (await phone.register(expires=60)).status_code == 200
    clock.advance(registrar.purge_interval * 3)
    assert changes[-1] == ("1001", [])
    await registrar.stop()
    assert clock.pending == 0


async def test_refresh_keeps_one_binding_and_does_not_notify(
    registrar: Registrar, clock: FakeClock, changes: list[tuple[str, list[Binding]]]
) -> None:
    phone = Phone(registrar)
    assert (await phone.register(expires=120)).status_code == 200
    clock.advance(100)
    response = await phone.register(expires=120)
    assert contact_expires(response) == {"sip:1001@192.0.2.10:5062": 120}
    assert len(changes) == 1


async def test_multiple_bindings_most_recent_first_and_capped(
    clock: FakeClock, changes: list[tuple[str, list[Binding]]]
) -> None:
    registrar = Registrar(REALM, lookup, clock, max_bindings_per_aor=3)
    phones = [Phone(registrar, source=("UDP", f"192.0.2.{10 + i}", 5062)) for i in range(4)]
    for phone in phones[:3]:
        assert (await phone.register()).status_code == 200
        clock.advance(1)
    assert [b.source.host for b in registrar.contacts("1001")] == [
        "192.0.2.12",
        "192.0.2.11",
        "192.0.2.10",
    ]
    # A refresh makes a binding the most recent one.
    assert (await phones[0].register()).status_code == 200
    assert registrar.contacts("1001")[0].source.host == "192.0.2.10"
    clock.advance(1)
    # A fourth contact pushes out the least recently refreshed one (192.0.2.11).
    response = await phones[3].register()
    assert response.status_code == 200
    assert len(response.get_header_values("Contact")) == 3
    assert [b.source.host for b in registrar.contacts("1001")] == [
        "192.0.2.13",
        "192.0.2.10",
        "192.0.2.12",
    ]
    # One request cannot carry more contacts than allowed.
    too_many = tuple(f"<sip:1001@192.0.2.10:{5100 + i}>" for i in range(4))
    assert (await phones[0].register(contacts=too_many)).status_code == 403
    assert registrar.binding_count() == 3


async def test_call_id_and_cseq_ordering(registrar: Registrar) -> None:
    phone = Phone(registrar)
    assert (await phone.register()).status_code == 200  # CSeq 2
    assert phone.challenge is not None
    late = build_register(
        cseq=2,
        call_id=phone.call_id,
        contacts=(phone.contact,),
        authorization=authorization(phone.challenge, "1001", "secret-1001", nc=5),
    )
    assert (await registrar.handle_register(late, phone.source)).status_code == 500
    # Another Call-ID (the phone restarted) may update the same contact with any CSeq.
    restarted = Phone(registrar, call_id="a-new-call-id")
    assert (await restarted.register()).status_code == 200
    [binding] = registrar.contacts("1001")
    assert binding.call_id == "a-new-call-id" and binding.cseq == 2


async def test_nat_source_is_kept_for_requests_to_the_phone(registrar: Registrar) -> None:
    phone = Phone(
        registrar, source=("udp", "203.0.113.7", 40123), contact="<sip:1001@10.0.0.5:5060>"
    )
    assert (await phone.register()).status_code == 200
    [binding] = registrar.contacts("1001")
    assert binding.contact == "sip:1001@10.0.0.5:5060"
    assert binding.source == Source("UDP", "203.0.113.7", 40123)
    assert binding.behind_nat


async def test_unsupported_require_and_other_methods(registrar: Registrar) -> None:
    response = await registrar.handle_register(
        build_register(extra=("Require: gruu, path",)), ("UDP", "192.0.2.10", 5062)
    )
    assert response.status_code == 420
    assert response.get_header("Unsupported") == "gruu, path"
    response = await registrar.handle_register(
        build_register(method="OPTIONS"), ("UDP", "192.0.2.10", 5062)
    )
    assert response.status_code == 405


async def test_remove_drops_all_bindings_of_a_user(
    registrar: Registrar, changes: list[tuple[str, list[Binding]]]
) -> None:
    assert (await Phone(registrar).register()).status_code == 200
    assert (await Phone(registrar, "1002").register()).status_code == 200
    assert registrar.remove("1001") == 1
    assert changes[-1] == ("1001", [])
    assert registrar.remove("1001") == 0
    assert registrar.registered_usernames() == ["1002"]


async def test_on_change_errors_do_not_break_registration(clock: FakeClock) -> None:
    def broken(user: str, bindings: list[Binding]) -> None:
        raise RuntimeError("boom")

    registrar = Registrar(REALM, lookup, clock, on_change=broken)
    assert (await Phone(registrar).register()).status_code == 200
    assert registrar.binding_count() == 1


# -- rate limiting --------------------------------------------------------------------------------


async def fail(registrar: Registrar, user: str, source: tuple[str, str, int], times: int) -> None:
    phone = Phone(registrar, user, password="guess", source=source)
    for _ in range(times):
        assert (await phone.register()).status_code == 403


def limited(clock: FakeClock, **kw: int | float) -> Registrar:
    return Registrar(REALM, lookup, clock, rate_limit=AuthRateLimit(**kw))  # type: ignore[arg-type]


async def test_rate_limit_per_source(clock: FakeClock) -> None:
    registrar = limited(clock, per_source=5, per_user=100, window=60.0)
    attacker = ("UDP", "198.51.100.9", 5060)
    await fail(registrar, "1001", attacker, 3)
    await fail(registrar, "4242", attacker, 2)  # unknown users count for the source too
    blocked = await Phone(registrar, "1002", source=attacker).register()
    assert blocked.status_code == 503
    assert blocked.get_header("Retry-After") == "60"
    assert "WWW-Authenticate" not in blocked.headers  # the password is not even looked at
    # Other sources are unaffected, also for the users the attacker tried.
    assert (
        await Phone(registrar, "1001", source=("UDP", "192.0.2.10", 5062)).register()
    ).status_code == 200
    clock.advance(30)
    assert (await Phone(registrar, "1002", source=attacker).send()).get_header(
        "Retry-After"
    ) == "30"
    clock.advance(30)
    assert (await Phone(registrar, "1002", source=attacker).register()).status_code == 200


async def test_rate_limit_per_user(clock: FakeClock) -> None:
    registrar = limited(clock, per_source=100, per_user=5, window=60.0)
    for i in range(5):
        await fail(registrar, "1001", ("UDP", f"198.51.100.{i}", 5060), 1)
    # Even the real phone, from a fresh source, waits (503 with Retry-After, so it retries).
    phone = Phone(registrar, "1001", source=("UDP", "192.0.2.10", 5062))
    response = await phone.register()
    assert response.status_code == 503 and response.get_header("Retry-After") == "60"
    # Other users are unaffected.
    assert (
        await Phone(registrar, "1002", source=("UDP", "198.51.100.0", 5060)).register()
    ).status_code == 200
    clock.advance(60)
    assert (
        await Phone(registrar, "1001", source=("UDP", "192.0.2.10", 5062)).register()
    ).status_code == 200


async def test_success_does_not_reset_another_sources_counter(clock: FakeClock) -> None:
    registrar = limited(clock, per_source=5, per_user=100, window=60.0)
    attacker = ("UDP", "198.51.100.9", 5060)
    await fail(registrar, "1001", attacker, 4)
    assert (
        await Phone(registrar, "1001", source=("UDP", "192.0.2.10", 5062)).register()
    ).status_code == 200
    await fail(registrar, "1001", attacker, 1)
    assert registrar.blocked_for(attacker[1]) == 60
    assert (await Phone(registrar, "1001", source=attacker).register()).status_code == 503


async def test_window_slides(clock: FakeClock) -> None:
    registrar = limited(clock, per_source=3, per_user=100, window=60.0)
    attacker = ("UDP", "198.51.100.9", 5060)
    await fail(registrar, "1001", attacker, 2)
    clock.advance(50)
    await fail(registrar, "1001", attacker, 1)
    assert registrar.blocked_for(attacker[1]) == pytest.approx(10)
    clock.advance(10)
    assert registrar.blocked_for(attacker[1]) == 0
    await fail(registrar, "1001", attacker, 1)  # 2 failures in the last 60 s: not blocked yet
    assert registrar.blocked_for(attacker[1]) == 0


async def test_limiter_memory_is_bounded(clock: FakeClock) -> None:
    registrar = limited(clock, per_source=5, per_user=5, window=60.0, max_tracked=50)
    nonce_phone = Phone(registrar, "4242", password="guess")
    first = await nonce_phone.send()
    challenge = pick(first)
    for i in range(500):
        user = f"ghost{i}"
        header = authorization(challenge, user, "guess", nc=i + 1)
        request = build_register(user=user, cseq=i + 2, authorization=header)
        response = await registrar.handle_register(
            request, ("UDP", f"10.{i // 250}.{i % 250}.1", 5060)
        )
        assert response.status_code == 403
    sources, users = registrar.limiter_size
    assert sources == 50
    assert users == 0  # made-up usernames are never tracked per user
    for i in range(5):
        await fail(registrar, "1001", ("UDP", f"10.9.{i}.1", 5060), 1)
    assert registrar.limiter_size == (50, 1)
    assert registrar.blocked_for(username="1001") == 60
    clock.advance(61)
    registrar.purge()
    assert registrar.limiter_size == (0, 0)


async def test_logs_never_carry_passwords_or_digests(
    registrar: Registrar, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="callbridge")
    phone = Phone(registrar, password="hunter2-guess")
    first = await phone.send()
    header = authorization(pick(first), "1001", "hunter2-guess")
    assert (await phone.send(authorization=header)).status_code == 403
    assert (await Phone(registrar).register()).status_code == 200
    assert caplog.records  # the failure was logged ...
    response_hex = parse_auth(header).params["response"]
    for secret in ("hunter2-guess", "secret-1001", response_hex, CREDENTIALS["1001"].ha1_sha256):
        assert secret not in caplog.text  # ... without anything secret


# -- RFC 4475 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("regaut01", 401),  # §3.3.7: unknown auth scheme -> challenge with one we support
        ("regbadct", 400),  # §3.1.2.13: addr-spec Contact with URI headers -> 400
        ("regescrt", 401),  # §3.3.14: escaped headers in a name-addr Contact are fine
    ],
)
async def test_rfc4475_register_messages(registrar: Registrar, name: str, status: int) -> None:
    request = SipMessage.parse((TORTURE / f"{name}.dat").read_bytes())
    assert isinstance(request, SipRequest)
    response = await registrar.handle_register(request, ("UDP", "192.0.2.253", 5060))
    assert response.status_code == status


async def test_no_torture_message_breaks_the_registrar(registrar: Registrar) -> None:
    for path in sorted(TORTURE.glob("*.dat")):
        try:
            message = SipMessage.parse(path.read_bytes())
        except ValueError:
            continue
        if isinstance(message, SipRequest):
            response = await registrar.handle_register(message, ("UDP", "192.0.2.253", 5060))
            assert 400 <= response.status_code < 600, path.name
