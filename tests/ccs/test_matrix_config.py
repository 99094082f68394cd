"""Permission and tenant-scope matrix of CCS 4.1-4.14: every endpoint x {telco, tenant admin,
agent, no token} x {own tenant (CCSLab15), other tenant (OtherLab)}.

"Other tenant" puts OtherLab's ids in the path; a path without ids (``/products/``,
``/extensions``…) is the same request in both columns. Each combination is its own test on a
fresh world, so mutating rows do not affect the others.

Outcomes: ``200`` (``"success": true``), ``401`` (the spec's exact body), or a 400 whose reason
names the problem: ``PERM`` a missing permission, ``NF`` a tenant or object that is not found
(another tenant's ids look missing), ``TELCO`` a telco-level-only operation, ``TENANT`` a
tenant-level-only path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from tests.ccs.world import API, EXT, OTHER, OTHER_TENANT, OWN_TENANT, CcsWorld

from callbridge import demo

OK, UNAUTH, PERM, NF, TELCO, TENANT = "200", "401", "perm", "nf", "telco", "tenant"
REASONS = {
    PERM: "Insufficient permissions: ",
    NF: "not found",
    TELCO: "Only for telco level users",
    TENANT: "Only for tenant level users",
}
USERS = ("telco", "tenant_admin", "agent", None)
IDS = {
    "own": {"tenant": OWN_TENANT, "ext": EXT["112"]},
    "other": {"tenant": OTHER_TENANT, "ext": OTHER["ext_112"]},
}


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    path: str
    body: Any
    own: tuple[str, str, str, str]  # telco, tenant_admin, agent, no token
    other: tuple[str, str, str, str]


#: a read of a tenant in the path: telco user and tenant admin of the owner only
TENANT_READ = ((OK, OK, PERM, UNAUTH), (NF, NF, PERM, UNAUTH))
#: a telco-level operation on a tenant in the path
TELCO_OP = ((OK, TELCO, PERM, UNAUTH), (NF, TELCO, PERM, UNAUTH))
#: a tenant-level path (the tenant is the user's own)
TENANT_PATH = ((TENANT, OK, PERM, UNAUTH), (TENANT, OK, PERM, UNAUTH))

ROWS = [
    Row("4.1 products", "GET", "/products/", None, *((OK, TELCO, PERM, UNAUTH),) * 2),
    Row("4.2 roles", "GET", "/roles/", None, *((OK, OK, PERM, UNAUTH),) * 2),
    Row("4.3 tenants", "GET", "/tenants", None, *((OK, OK, PERM, UNAUTH),) * 2),
    Row("4.4 tenant", "GET", "/tenants/{tenant}", None, *TENANT_READ),
    Row("4.5 tenant roles", "GET", "/tenants/{tenant}/roles", None, *TENANT_READ),
    Row("4.6 acds", "GET", "/acds", None, *TENANT_PATH),
    Row("4.6 tenant acds", "GET", "/tenants/{tenant}/acds", None, *TENANT_READ),
    Row("4.7 presence", "GET", "/tenants/{tenant}/presence_options", None, *TENANT_READ),
    Row("4.8 tenant extensions", "GET", "/tenants/{tenant}/extensions", None, *TENANT_READ),
    Row("4.8 extensions", "GET", "/extensions", None, *TENANT_PATH),
    Row("4.9 text count", "GET", "/tenants/{tenant}/text_count", None, *TELCO_OP),
    Row(
        "4.10 text count reset",
        "POST",
        "/tenants/{tenant}/text_count",
        {"request": "reset_counter"},
        *TELCO_OP,
    ),
    Row(
        "4.11 add product",
        "POST",
        "/tenants/{tenant}",
        {"request": "add_product", "product": demo.PRODUCTS[0][0]},
        *TELCO_OP,
    ),
    Row(
        "4.12 delete product",
        "POST",
        "/tenants/{tenant}",
        {"request": "delete_product", "product": demo.TENANT_PRODUCTS[0]},
        *TELCO_OP,
    ),
    Row("4.13 limits", "PUT", "/tenants/{tenant}", {"max_agents": "50"}, *TELCO_OP),
    Row(
        "4.14 extension",
        "PUT",
        "/tenants/{tenant}/extensions/{ext}/",
        {"monitor": "true", "max_chats": "2"},
        (OK, OK, PERM, UNAUTH),
        (NF, NF, PERM, UNAUTH),
    ),
    Row(  # the own tenant in the path, another tenant's extension
        "4.14 extension of another tenant",
        "PUT",
        "/tenants/" + OWN_TENANT + "/extensions/" + OTHER["ext_112"] + "/",
        {"monitor": "true"},
        *((NF, NF, PERM, UNAUTH),) * 2,
    ),
]

CASES = [
    pytest.param(row, scope, user, expected, id=f"{row.name} | {scope} | {user}")
    for row in ROWS
    for scope, outcomes in (("own", row.own), ("other", row.other))
    for user, expected in zip(USERS, outcomes, strict=True)
]


@pytest.mark.parametrize(("row", "scope", "user", "expected"), CASES)
async def test_matrix(ccs: CcsWorld, row: Row, scope: str, user: str | None, expected: str) -> None:
    path = API + row.path.format(**IDS[scope])
    d = ccs.c.directory
    before = (dict(d.tenants), dict(d.extensions))
    async with ccs.client(user) as cl:
        r = await cl.request(row.method, path, json=row.body)
    if expected != OK:  # a refused request changes nothing
        assert (d.tenants, d.extensions) == before
    if expected == UNAUTH:
        assert (r.status_code, r.content) == (401, b'{"status":401,"reason":"Unauthorized"}')
        return
    body = r.json()
    if expected == OK:
        assert r.status_code == 200, r.text
        assert body["success"] is True
        return
    assert r.status_code == 400, r.text
    assert list(body) == ["success", "reason"] and body["success"] is False
    assert isinstance(body["reason"], str) and REASONS[expected] in body["reason"], body
