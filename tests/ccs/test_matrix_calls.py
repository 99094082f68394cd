"""Permission and tenant matrix of CCS 4.15-4.28: every endpoint and ``request`` x {telco user,
tenant admin, agent 112, no token} x {own tenant (CCSLab15), other tenant (OtherLab)}.

"Other tenant" puts OtherLab's ids in the path (its tenant, extension, call) or body (its outbound
queue, ACD). Paths without an id (``/agent_state``, ``/calls``, ``/calls/filter``) have no other
tenant variant: which tenant they reach is the user's own, by construction (what they list is
checked in test_calls.py). Each combination runs in a fresh world.

Expected outcomes: ``200``, ``401`` (the spec's exact body), or a 400 reason fragment; the 400 body
is ``{"success": false, …}``, or ``{"success": true, …}`` on the spec's 4.19-4.22 quirk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from tests.ccs.world import API, EXT, OTHER, OTHER_TENANT, OWN_TENANT, QUEUE, CcsWorld

from callbridge import demo
from callbridge.domain.tenancy import Level
from callbridge.service.auth import system_actor

OK, UNAUTHORIZED = 200, 401
NOT_FOUND = "not found"
TENANT_ONLY = "Only for tenant level users"
NO_EXTENSION = "no extension of its own"
DIAL_TENANT_ONLY = '"dial" is only for tenant level users'
ONLY_ITSELF = "an agent may only change its own state"
MISSING = "Insufficient permissions"

Expect = int | str
USERS = ("telco", "tenant_admin", "agent", None)


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    body: dict[str, Any] | None
    expect: dict[str | None, tuple[Expect, Expect]]  # user -> (own, other)
    setup: str = "none"  # none, answered, recorded, suppressed, waiting
    quirk: bool = False  # 400 body is {"success": true, ...} (4.19-4.22)
    ids: bool = True  # the path or body names ids (else: own tenant only)
    checks: tuple[str, ...] = field(default=())


def same(outcome: Expect) -> tuple[Expect, Expect]:
    return outcome, outcome


ANON = same(UNAUTHORIZED)
STATE = {"request": "updateAgentState", "name": "Coffee Break"}
DIAL = {"request": "dial", "target": "19735552106", "outbound_queue_uuid": "{outbound}"}

CASES = [
    Case(
        "4.15 get agent state",
        "GET",
        "/tenants/{tenant}/extensions/{ext}/agent_state",
        None,
        {
            "telco": (OK, NOT_FOUND),
            "tenant_admin": (OK, NOT_FOUND),
            "agent": (OK, NOT_FOUND),
            None: ANON,
        },
    ),
    Case(
        "get own agent state",
        "GET",
        "/agent_state",
        None,
        {"telco": same(TENANT_ONLY), "tenant_admin": same(NO_EXTENSION), "agent": same(OK)}
        | {None: ANON},
        ids=False,
    ),
    Case(
        "get agent state in own tenant",
        "GET",
        "/extensions/{ext}/agent_state",
        None,
        {
            "telco": same(TENANT_ONLY),
            "tenant_admin": (OK, NOT_FOUND),
            "agent": (OK, NOT_FOUND),
            None: ANON,
        },
    ),
    Case(
        "4.16 update agent state (self ext)",
        "POST",
        "/tenants/{tenant}/extensions/{ext}",
        STATE,
        {
            "telco": (OK, NOT_FOUND),
            "tenant_admin": (OK, NOT_FOUND),
            "agent": (OK, NOT_FOUND),
            None: ANON,
        },
    ),
    Case(
        "4.16 update agent state (another agent)",
        "POST",
        "/tenants/{tenant}/extensions/{ext2}",
        STATE,
        {
            "telco": (OK, NOT_FOUND),
            "tenant_admin": (OK, NOT_FOUND),
            "agent": (ONLY_ITSELF, NOT_FOUND),
            None: ANON,
        },
    ),
    Case(
        "4.17 update own agent state",
        "POST",
        "/agent_state",
        STATE,
        {"telco": same(TENANT_ONLY), "tenant_admin": same(NO_EXTENSION), "agent": same(OK)}
        | {None: ANON},
        ids=False,
    ),
    Case(
        "4.18 update agent state by tenant admin",
        "POST",
        "/extensions/{ext2}",
        STATE,
        {
            "telco": same(TENANT_ONLY),
            "tenant_admin": (OK, NOT_FOUND),
            "agent": (ONLY_ITSELF, NOT_FOUND),
            None: ANON,
        },
    ),
    Case(
        "4.18 update own agent state by extension",
        "POST",
        "/extensions/{ext}",
        STATE,
        {
            "telco": same(TENANT_ONLY),
            "tenant_admin": (OK, NOT_FOUND),
            "agent": (OK, NOT_FOUND),
            None: ANON,
        },
    ),
    Case(
        "4.28 dial",
        "POST",
        "/tenants/{tenant}/extensions/{ext}",
        DIAL,
        {
            "telco": (DIAL_TENANT_ONLY, NOT_FOUND),
            "tenant_admin": (OK, NOT_FOUND),
            "agent": (OK, NOT_FOUND),
            None: ANON,
        },
    ),
    Case(
        "4.28 dial with the other tenant's outbound queue",
        "POST",
        f"/tenants/{OWN_TENANT}/extensions/{EXT['112']}",
        DIAL,
        {
            "telco": (DIAL_TENANT_ONLY, DIAL_TENANT_ONLY),
            "tenant_admin": (OK, NOT_FOUND),
            "agent": (OK, NOT_FOUND),
            None: ANON,
        },
    ),
    Case(
        "4.19 list calls",
        "GET",
        "/calls",
        None,
        {"telco": same(TENANT_ONLY), "tenant_admin": same(OK), "agent": same(OK), None: ANON},
        setup="answered",
        quirk=True,
        ids=False,
    ),
    Case(
        "4.20 get a call",
        "GET",
        "/calls/{call}",
        None,
        {
            "telco": same(TENANT_ONLY),
            "tenant_admin": (OK, NOT_FOUND),
            "agent": (OK, NOT_FOUND),
            None: ANON,
        },
        setup="answered",
        quirk=True,
    ),
    Case(
        "4.21 filter calls",
        "GET",
        "/calls/filter?calling_number=112&from_datetime=2026-01-01T00:00:00&time_z=UTC",
        None,
        {"telco": same(TENANT_ONLY), "tenant_admin": same(OK), "agent": same(OK), None: ANON},
        setup="answered",
        quirk=True,
        ids=False,
    ),
]

CALL_ACTIONS = [
    ("4.22 startSuppression", {"request": "startSuppression"}, "recorded", True),
    ("4.23 stopSuppression", {"request": "stopSuppression"}, "suppressed", False),
    ("4.24 kill", {"request": "kill"}, "answered", False),
    ("4.25 wait_transfer", {"request": "wait_transfer", "target": "120"}, "waiting", False),
    ("4.26 wait_redirect", {"request": "wait_redirect", "target": "{acd}"}, "waiting", False),
    ("4.27 wait_kill", {"request": "wait_kill"}, "waiting", False),
]
CASES += [
    Case(
        name,
        "POST",
        "/calls/{call}",
        body,
        {
            "telco": same(TENANT_ONLY),
            "tenant_admin": (OK, NOT_FOUND),
            "agent": (OK, NOT_FOUND),
            None: ANON,
        },
        setup=setup,
        quirk=quirk,
    )
    for name, body, setup, quirk in CALL_ACTIONS
]


async def prepare(ccs: CcsWorld, setup: str) -> dict[str, dict[str, str]]:
    """The ids to fill in: ``own`` (CCSLab15) and ``other`` (OtherLab), after ``setup``."""
    system = system_actor()
    own = {
        "tenant": OWN_TENANT,
        "ext": EXT["112"],
        "ext2": EXT["113"],
        "outbound": QUEUE["Outbound"],
        "acd": QUEUE["Q3878"],
        "call": "0BS9DD02LEMUI",
    }
    other = {
        "tenant": OTHER_TENANT,
        "ext": OTHER["ext_112"],
        "ext2": OTHER["ext_112"],
        "outbound": OTHER["outbound"],
        "acd": OTHER["queue"],
        "call": "0BS9DD02LEMUI",
    }
    if setup == "none":
        return {"own": own, "other": other}
    theirs = await ccs.c.calls.originate(system, OTHER_TENANT, OTHER["ext_112"], "19735552106")
    other["call"] = theirs.id
    if setup == "waiting":
        for number in ("112", "113", "114"):
            await ccs.c.agents.set_state(system, OWN_TENANT, EXT[number], "Coffee Break")
        own["call"] = await ccs.c.calls.simulate_inbound(system, OWN_TENANT, "19735550123", "386")
        await ccs.settle()
        return {"own": own, "other": other}
    call = await ccs.c.calls.originate(system, OWN_TENANT, EXT["114"], "19735552106")
    await ccs.settle()
    own["call"] = call.id
    if setup in ("recorded", "suppressed"):
        await ccs.c.calls.start_recording(system, OWN_TENANT, call.id)
    if setup == "suppressed":
        await ccs.c.calls.suppress_recording(system, OWN_TENANT, call.id)
    return {"own": own, "other": other}


def fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    return value


def combos() -> list[Any]:
    out = []
    for case in CASES:
        for user in USERS:
            for where in ("own", "other") if case.ids else ("own",):
                out.append(pytest.param(case, user, where, id=f"{case.name}-{user}-{where}"))
    return out


def check(case: Case, expected: Expect, status: int, content: bytes, body: Any) -> None:
    if expected == UNAUTHORIZED:
        assert (status, content) == (401, b'{"status":401,"reason":"Unauthorized"}')
    elif expected == OK:
        assert status == 200, content
        assert body["success"] is True
    else:
        assert status == 400, content
        assert list(body) == ["success", "reason"]
        assert body["success"] is case.quirk
        assert isinstance(body["reason"], str) and str(expected) in body["reason"], body


@pytest.mark.parametrize(("case", "user", "where"), combos())
async def test_matrix(ccs: CcsWorld, case: Case, user: str | None, where: str) -> None:
    ids = (await prepare(ccs, case.setup))[where]
    path = API + fill(case.path, ids)
    async with ccs.client(user) as cl:
        if case.method == "GET":
            r = await cl.get(path)
        else:
            r = await cl.post(path, json=fill(case.body, ids))
    expected = case.expect[user][0 if where == "own" else 1]
    check(case, expected, r.status_code, r.content, r.json())


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
async def test_a_user_with_only_the_api_permission_is_refused(ccs: CcsWorld, case: Case) -> None:
    """A tenant-level user whose roles grant ``API`` alone: each endpoint names what is missing."""
    d = ccs.c.directory
    api_role = demo.ROLES["api"][0]
    p = await d.create_principal(
        "API only", Level.TENANT, demo.TELCO_ID, [api_role], tenant_id=OWN_TENANT
    )
    _, ccs.tokens["api_only"] = await d.issue_token(p.id)
    ids = (await prepare(ccs, case.setup))["own"]
    path = API + fill(case.path, ids)
    async with ccs.client("api_only") as cl:
        if case.method == "GET":
            r = await cl.get(path)
        else:
            r = await cl.post(path, json=fill(case.body, ids))
    check(case, MISSING, r.status_code, r.content, r.json())
    assert "required" in r.json()["reason"]
