"""Server-side digest authentication: known answers, challenges, nonces, replay and bounds."""

from __future__ import annotations

import hashlib

import pytest
from aiosipua.auth import SipDigestAuth, build_credentials
from aiosipua.headers import AuthChallenge, AuthCredentials, parse_auth

from callbridge.adapters.clock import FakeClock
from callbridge.sip.credentials import ha1
from callbridge.sip.digest import (
    MD5,
    SHA256,
    DigestAuthenticator,
    DigestResult,
    DigestStatus,
    FailureReason,
    answer_challenges,
    digest_response,
    uris_match,
)

REALM = "callbridge.test"
URI = "sip:callbridge.test"
SECRET = b"0123456789abcdef0123456789abcdef"
USERS = {"1001": "secret-1001", "1002": "secret-1002"}

# RFC 7616 §3.9.1: the worked example, with the responses for MD5 and SHA-256.
RFC_USER, RFC_PASSWORD, RFC_REALM = "Mufasa", "Circle of Life", "http-auth@example.org"
RFC_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC_URI = "/dir/index.html"
RFC_MD5 = "8ca523f5e9506fed4657c9700eebdbec"
RFC_SHA256 = "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"


def lookup(username: str, algorithm: str) -> str | None:
    password = USERS.get(username)
    return None if password is None else ha1(algorithm, username, REALM, password)


def rfc_response(
    hasher: str,
    user: str,
    realm: str,
    password: str,
    nonce: str,
    method: str,
    uri: str,
    nc: str,
    cnonce: str,
) -> str:
    """The RFC 7616 §3.4.1 formula, written out independently of the code under test."""

    def h(text: str) -> str:
        return hashlib.new(hasher, text.encode()).hexdigest()

    return h(f"{h(f'{user}:{realm}:{password}')}:{nonce}:{nc}:{cnonce}:auth:{h(f'{method}:{uri}')}")


def challenges(auth: DigestAuthenticator, *, stale: bool = False) -> list[AuthChallenge]:
    return [parse_auth(v) for v in auth.challenge(REALM, (SHA256, MD5), stale=stale)]


def answer(
    challenge: AuthChallenge,
    *,
    user: str = "1001",
    password: str | None = None,
    method: str = "REGISTER",
    uri: str = URI,
    nc: int = 1,
) -> AuthCredentials:
    creds = build_credentials(
        SipDigestAuth(user, password if password is not None else USERS.get(user, "x")),
        challenge,
        method,
        uri,
        nonce_count=nc,
    )
    assert creds is not None
    return creds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def auth(clock: FakeClock) -> DigestAuthenticator:
    return DigestAuthenticator(SECRET, clock)


def verify(
    auth: DigestAuthenticator,
    creds: AuthCredentials | dict[str, str],
    *,
    method: str = "REGISTER",
    uri: str = URI,
) -> DigestResult:
    return auth.verify(method, creds, lookup, request_uri=uri, realm=REALM)


# -- known answers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "hasher", "expected"), [(MD5, "md5", RFC_MD5), (SHA256, "sha256", RFC_SHA256)]
)
def test_rfc7616_worked_example(algorithm: str, hasher: str, expected: str) -> None:
    by_formula = rfc_response(
        hasher, RFC_USER, RFC_REALM, RFC_PASSWORD, RFC_NONCE, "GET", RFC_URI, "00000001", RFC_CNONCE
    )
    assert by_formula == expected
    ours = digest_response(
        algorithm,
        ha1(algorithm, RFC_USER, RFC_REALM, RFC_PASSWORD),
        RFC_NONCE,
        "GET",
        RFC_URI,
        qop="auth",
        nc="00000001",
        cnonce=RFC_CNONCE,
    )
    assert ours == expected
    challenge = AuthChallenge(
        "Digest", {"realm": RFC_REALM, "nonce": RFC_NONCE, "qop": "auth", "algorithm": algorithm}
    )
    client = build_credentials(
        SipDigestAuth(RFC_USER, RFC_PASSWORD), challenge, "GET", RFC_URI, cnonce=RFC_CNONCE
    )
    assert client is not None and client.params["response"] == expected


def test_rfc2069_form_without_qop() -> None:
    h = hashlib.md5
    a1 = h(b"u:r:p").hexdigest()
    expected = h(f"{a1}:n:{h(b'REGISTER:sip:x').hexdigest()}".encode()).hexdigest()
    assert digest_response(MD5, a1, "n", "REGISTER", "sip:x") == expected


# -- challenges -------------------------------------------------------------------------------


def test_challenge_offers_sha256_only_by_default(auth: DigestAuthenticator) -> None:
    [only] = challenges(auth)
    assert only.scheme == "Digest"
    assert only.params["algorithm"] == SHA256
    assert only.params["realm"] == REALM
    assert only.params["qop"] == "auth"
    assert "stale" not in only.params
    assert auth.challenge(REALM, (MD5,)) == []


def test_challenge_lists_sha256_before_md5_when_md5_is_allowed(clock: FakeClock) -> None:
    auth = DigestAuthenticator(SECRET, clock, allow_md5=True)
    values = auth.challenge(REALM, (MD5, SHA256), stale=True)
    first, second = (parse_auth(v) for v in values)
    assert (first.params["algorithm"], second.params["algorithm"]) == (SHA256, MD5)
    assert first.params["nonce"] == second.params["nonce"]
    assert first.params["stale"] == second.params["stale"] == "true"
    assert "stale=true" in values[0] and 'qop="auth"' in values[0]


def test_nonces_are_unique_and_bound_to_secret_and_realm(
    auth: DigestAuthenticator, clock: FakeClock
) -> None:
    nonces = {auth.make_nonce(REALM) for _ in range(100)}
    assert len(nonces) == 100
    nonce = nonces.pop()
    assert auth.nonce_issued_ms(nonce, REALM) is not None
    assert auth.nonce_issued_ms(nonce, "other.realm") is None
    other = DigestAuthenticator(b"another secret, 32 bytes long...", clock)
    assert other.nonce_issued_ms(nonce, REALM) is None
    tampered = nonce[:-2] + ("AA" if nonce[-2:] != "AA" else "BB")
    assert auth.nonce_issued_ms(tampered, REALM) is None
    assert auth.nonce_issued_ms("not base64 !!", REALM) is None
    assert auth.nonce_issued_ms("", REALM) is None


def test_short_secret_is_refused(clock: FakeClock) -> None:
    with pytest.raises(ValueError):
        DigestAuthenticator(b"short", clock)


# -- verification -----------------------------------------------------------------------------


def test_sha256_credentials_verify(auth: DigestAuthenticator) -> None:
    [challenge] = challenges(auth)
    result = verify(auth, answer(challenge))
    assert result.status is DigestStatus.OK and result.ok
    assert (result.username, result.algorithm) == ("1001", SHA256)


def test_response_computed_by_the_rfc_formula_verifies(auth: DigestAuthenticator) -> None:
    [challenge] = challenges(auth)
    nonce = challenge.params["nonce"]
    params = {
        "username": "1002",
        "realm": REALM,
        "nonce": nonce,
        "uri": URI,
        "algorithm": "sha-256",
        "qop": "auth",
        "nc": "00000001",
        "cnonce": "0a4f113b",
        "response": rfc_response(
            "sha256", "1002", REALM, USERS["1002"], nonce, "REGISTER", URI, "00000001", "0a4f113b"
        ),
    }
    assert verify(auth, params).ok
    # Parameter names and hex digits in any case.
    del params["response"]
    params["nc"] = "00000002"
    params["Response"] = rfc_response(
        "sha256", "1002", REALM, USERS["1002"], nonce, "REGISTER", URI, "00000002", "0a4f113b"
    ).upper()
    assert verify(auth, params).ok


def test_md5_is_refused_unless_allowed(clock: FakeClock) -> None:
    strict = DigestAuthenticator(SECRET, clock)
    md5_challenge = AuthChallenge(
        "Digest",
        {"realm": REALM, "nonce": strict.make_nonce(REALM), "qop": "auth", "algorithm": MD5},
    )
    result = verify(strict, answer(md5_challenge))
    assert result.status is DigestStatus.FAILED and result.reason is FailureReason.UNSUPPORTED

    lenient = DigestAuthenticator(SECRET, clock, allow_md5=True)
    [_, md5] = challenges(lenient)
    assert md5.params["algorithm"] == MD5
    result = verify(lenient, answer(md5))
    assert result.ok and result.algorithm == MD5


def test_absent_algorithm_means_md5(clock: FakeClock) -> None:
    auth = DigestAuthenticator(SECRET, clock, allow_md5=True)
    [_, md5] = challenges(auth)
    creds = answer(md5)
    del creds.params["algorithm"]
    assert verify(auth, creds).ok
    strict = DigestAuthenticator(SECRET, clock)
    assert verify(strict, creds).reason is FailureReason.UNSUPPORTED


def test_wrong_password_and_unknown_user(auth: DigestAuthenticator) -> None:
    [challenge] = challenges(auth)
    result = verify(auth, answer(challenge, password="guess"))
    assert result.status is DigestStatus.FAILED
    assert (result.reason, result.username) == (FailureReason.BAD_RESPONSE, "1001")
    result = verify(auth, answer(challenge, user="9999", password="guess"))
    assert result.reason is FailureReason.UNKNOWN_USER


def test_expired_nonce_is_stale_only_with_the_right_password(
    auth: DigestAuthenticator, clock: FakeClock
) -> None:
    [challenge] = challenges(auth)
    clock.advance(auth.nonce_ttl + 1)
    result = verify(auth, answer(challenge))
    assert result.status is DigestStatus.STALE and result.stale
    assert verify(auth, answer(challenge, password="guess")).reason is FailureReason.BAD_RESPONSE
    [fresh] = challenges(auth)
    assert verify(auth, answer(fresh)).ok


def test_nonce_from_the_future_or_another_server_is_invalid(
    auth: DigestAuthenticator, clock: FakeClock
) -> None:
    other = DigestAuthenticator(b"another secret, 32 bytes long...", clock)
    [foreign] = challenges(other)
    assert verify(auth, answer(foreign)).reason is FailureReason.NONCE_INVALID

    ahead = FakeClock()
    ahead.advance(3600)
    [future] = challenges(DigestAuthenticator(SECRET, ahead))
    assert verify(auth, answer(future)).reason is FailureReason.NONCE_INVALID


def test_nonce_count_replay_is_refused(auth: DigestAuthenticator) -> None:
    [challenge] = challenges(auth)
    first = answer(challenge, nc=1)
    assert verify(auth, first).ok
    replayed = verify(auth, first)
    assert replayed.reason is FailureReason.NONCE_REPLAY
    assert verify(auth, answer(challenge, nc=3)).ok
    assert verify(auth, answer(challenge, nc=2)).reason is FailureReason.NONCE_REPLAY
    assert verify(auth, answer(challenge, nc=4)).ok


def test_failed_attempts_do_not_burn_nonce_counts(auth: DigestAuthenticator) -> None:
    [challenge] = challenges(auth)
    assert not verify(auth, answer(challenge, nc=5, password="guess")).ok
    assert verify(auth, answer(challenge, nc=5)).ok


def test_realm_and_uri_must_match(auth: DigestAuthenticator) -> None:
    [challenge] = challenges(auth)
    creds = answer(challenge)
    other_realm = AuthCredentials(creds.scheme, {**creds.params, "realm": "elsewhere"})
    assert verify(auth, other_realm).reason is FailureReason.REALM_MISMATCH
    assert verify(auth, creds, uri="sip:other.test").reason is FailureReason.URI_MISMATCH
    equivalent = answer(challenge, uri="sip:CallBridge.Test", nc=2)
    assert verify(auth, equivalent).ok


def test_uri_equivalence() -> None:
    assert uris_match("sip:a@Example.COM:5060", "sip:a@example.com:5060")
    assert uris_match("sip:example.com;transport=UDP", "sip:example.com;transport=udp")
    assert not uris_match("sip:example.com:5070", "sip:example.com")
    assert not uris_match("sip:b@example.com", "sip:a@example.com")
    assert not uris_match("sip:example.com;transport=tcp", "sip:example.com")
    assert not uris_match("/dir", "sip:example.com")


def test_only_qop_auth_is_accepted(auth: DigestAuthenticator) -> None:
    [challenge] = challenges(auth)
    creds = answer(challenge)
    for qop, reason in (("auth-int", FailureReason.UNSUPPORTED),):
        bad = AuthCredentials(creds.scheme, {**creds.params, "qop": qop})
        assert verify(auth, bad).reason is reason
    no_qop = {k: v for k, v in creds.params.items() if k not in ("qop", "nc", "cnonce")}
    assert verify(auth, no_qop).reason is FailureReason.UNSUPPORTED
    for nc in ("1", "0000000g", "00000000", "0x000001", "+0000001"):
        bad = AuthCredentials(creds.scheme, {**creds.params, "nc": nc})
        assert verify(auth, bad).reason is FailureReason.MALFORMED
    no_cnonce = {k: v for k, v in creds.params.items() if k != "cnonce"}
    assert verify(auth, no_cnonce).reason is FailureReason.MALFORMED
    assert verify(auth, {"realm": REALM}).reason is FailureReason.MALFORMED
    basic = AuthCredentials("Basic", dict(creds.params))
    assert verify(auth, basic).reason is FailureReason.UNSUPPORTED
    hashed = AuthCredentials(creds.scheme, {**creds.params, "userhash": "true"})
    assert verify(auth, hashed).reason is FailureReason.UNSUPPORTED


def test_legacy_no_qop_md5_only_when_allowed_and_single_use(clock: FakeClock) -> None:
    auth = DigestAuthenticator(SECRET, clock, allow_md5=True, allow_no_qop=True)
    nonce = auth.make_nonce(REALM)
    legacy = AuthChallenge("Digest", {"realm": REALM, "nonce": nonce, "algorithm": MD5})
    creds = answer(legacy)
    assert "qop" not in creds.params
    assert verify(auth, creds).ok
    assert verify(auth, creds).reason is FailureReason.NONCE_REPLAY

    sha_legacy = AuthChallenge("Digest", {"realm": REALM, "nonce": nonce, "algorithm": SHA256})
    assert verify(auth, answer(sha_legacy)).reason is FailureReason.UNSUPPORTED
    strict = DigestAuthenticator(SECRET, clock, allow_md5=True)
    fresh = AuthChallenge(
        "Digest", {"realm": REALM, "nonce": strict.make_nonce(REALM), "algorithm": MD5}
    )
    assert verify(strict, answer(fresh)).reason is FailureReason.UNSUPPORTED


def test_nonce_table_is_bounded_and_eviction_never_allows_replay(clock: FakeClock) -> None:
    auth = DigestAuthenticator(SECRET, clock, max_tracked_nonces=3)
    used = []
    for _ in range(5):
        [challenge] = challenges(auth)
        assert verify(auth, answer(challenge)).ok
        used.append(challenge)
        clock.advance(0.01)
        assert auth.tracked_nonces <= 3
    # The two oldest were evicted: their nonces can no longer be trusted, whatever the count.
    assert verify(auth, answer(used[0], nc=1)).status is DigestStatus.STALE
    assert verify(auth, answer(used[0], nc=9)).status is DigestStatus.STALE
    # Still-tracked nonces keep their counts; new nonces work.
    assert verify(auth, answer(used[4], nc=1)).reason is FailureReason.NONCE_REPLAY
    assert verify(auth, answer(used[4], nc=2)).ok
    [challenge] = challenges(auth)
    assert verify(auth, answer(challenge)).ok


def test_purge_forgets_expired_nonces(auth: DigestAuthenticator, clock: FakeClock) -> None:
    for _ in range(10):
        [challenge] = challenges(auth)
        assert verify(auth, answer(challenge)).ok
    assert auth.tracked_nonces == 10
    assert auth.purge() == 0
    clock.advance(auth.nonce_ttl + 1)
    assert auth.purge() == 10
    assert auth.tracked_nonces == 0


def test_no_secret_in_results(auth: DigestAuthenticator) -> None:
    [challenge] = challenges(auth)
    creds = answer(challenge, password="guess")
    text = repr(verify(auth, creds))
    assert creds.params["response"] not in text
    assert "guess" not in text


# --- the client side (answering a trunk's challenge) -------------------------------------------


@pytest.mark.parametrize("algorithms", [(SHA256, MD5), (MD5,), (SHA256,)])
def test_answer_challenges_is_verified_by_our_server_side(
    clock: FakeClock, algorithms: tuple[str, ...]
) -> None:
    server = DigestAuthenticator(SECRET, clock, allow_md5=True)
    challenges = server.challenge(REALM, algorithms)
    value = answer_challenges(list(reversed(challenges)), "1001", USERS["1001"], "INVITE", URI)
    assert value is not None
    credentials = parse_auth(value, credentials=True)
    assert credentials.params["algorithm"] == algorithms[0]  # SHA-256 preferred when offered
    result = server.verify("INVITE", credentials, lookup, request_uri=URI, realm=REALM)
    assert result.ok
    wrong = answer_challenges(challenges, "1001", "not the password", "INVITE", URI)
    assert wrong is not None
    bad = server.verify(
        "INVITE", parse_auth(wrong, credentials=True), lookup, request_uri=URI, realm=REALM
    )
    assert not bad.ok


def test_answer_challenges_rfc7616_example_and_refusals() -> None:
    challenge = (
        f'Digest realm="{RFC_REALM}", nonce="{RFC_NONCE}", qop="auth", algorithm=SHA-256, '
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    value = answer_challenges(
        [challenge], RFC_USER, RFC_PASSWORD, "GET", RFC_URI, cnonce=RFC_CNONCE
    )
    assert value is not None
    params = parse_auth(value, credentials=True).params
    assert params["response"] == RFC_SHA256 and params["nc"] == "00000001"
    assert params["opaque"] == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
    no_qop = answer_challenges(['Digest realm="r", nonce="n"'], "u", "p", "INVITE", "sip:x")
    assert no_qop is not None and "qop" not in parse_auth(no_qop, credentials=True).params
    for unusable in (
        'Basic realm="r"',
        'Digest realm="r"',  # no nonce
        'Digest realm="r", nonce="n", algorithm=SHA-512-256',
        'Digest realm="r", nonce="n", qop="auth-int"',
    ):
        assert answer_challenges([unusable], "u", "p", "INVITE", "sip:x") is None
