"""The spec's fixed error bodies on EVERY CCS endpoint (4.1-4.28, each ``request`` of the
dispatching POSTs): 401 without a token, and the documented 500 on an unexpected failure, as the
bytes of the golden files ``unauthorized.txt`` and ``internal_error.txt``. The endpoint list is
checked against the routes the dialect registers, so a new route cannot miss these tests."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.ccs.golden import assert_golden
from tests.ccs.world import API, EXT, OWN_TENANT, QUEUE, CcsWorld

from callbridge import demo

T = f"/tenants/{OWN_TENANT}"
E = f"{T}/extensions/{EXT['112']}"
CALL = "/calls/0BS9DD02LEMUI"
STATE = {"request": "updateAgentState", "name": "Ready"}

#: (spec section, method, path, body)
ENDPOINTS: list[tuple[str, str, str, Any]] = [
    ("4.1", "GET", "/products/", None),
    ("4.2", "GET", "/roles/", None),
    ("4.3", "GET", "/tenants", None),
    ("4.4", "GET", T, None),
    ("4.5", "GET", f"{T}/roles", None),
    ("4.6", "GET", "/acds", None),
    ("4.6", "GET", f"{T}/acds", None),
    ("4.7", "GET", f"{T}/presence_options", None),
    ("4.8", "GET", f"{T}/extensions", None),
    ("4.8", "GET", "/extensions", None),
    ("4.9", "GET", f"{T}/text_count", None),
    ("4.10", "POST", f"{T}/text_count", {"request": "reset_counter"}),
    ("4.11", "POST", T, {"request": "add_product", "product": demo.PRODUCTS[2][0]}),
    ("4.12", "POST", T, {"request": "delete_product", "product": demo.PRODUCTS[4][0]}),
    ("4.13", "PUT", T, {"max_agents": "100"}),
    ("4.14", "PUT", f"{E}/", {"is_agent": "true"}),
    ("4.15", "GET", f"{E}/agent_state", None),
    ("4.15", "GET", "/agent_state", None),
    ("4.15", "GET", f"/extensions/{EXT['112']}/agent_state", None),
    ("4.16", "POST", E, STATE),
    ("4.17", "POST", "/agent_state", STATE),
    ("4.18", "POST", f"/extensions/{EXT['112']}", STATE),
    ("4.19", "GET", "/calls", None),
    ("4.20", "GET", CALL, None),
    ("4.21", "GET", "/calls/filter?calling_number=501&time_z=UTC", None),
    ("4.22", "POST", CALL, {"request": "startSuppression"}),
    ("4.23", "POST", CALL, {"request": "stopSuppression"}),
    ("4.24", "POST", CALL, {"request": "kill"}),
    ("4.25", "POST", CALL, {"request": "wait_transfer", "target": "102"}),
    ("4.26", "POST", CALL, {"request": "wait_redirect", "target": QUEUE["Q3878"]}),
    ("4.27", "POST", CALL, {"request": "wait_kill"}),
    (
        "4.28",
        "POST",
        E,
        {"request": "dial", "target": "819735552106", "outbound_queue_uuid": QUEUE["Outbound"]},
    ),
]
IDS = [f"{s} {m} {p} {(b or {}).get('request', '')}".strip() for s, m, p, b in ENDPOINTS]


def _template(path: str) -> str:
    """``/tenants/<uuid>/extensions/<uuid>`` -> the route's ``{…}`` template."""
    path = path.split("?")[0]
    path = path.replace(OWN_TENANT, "{tenant_id}").replace(EXT["112"], "{extension_id}")
    return path.replace("0BS9DD02LEMUI", "{call_id}")


def test_the_list_covers_every_registered_endpoint(ccs: CcsWorld) -> None:
    sub = next(r.app for r in ccs.app.routes if getattr(r, "path", "") == "/6/v2")
    registered = {
        (method.upper(), path.removeprefix("/api"))
        for path, ops in sub.openapi()["paths"].items()
        for method in ops
    }
    listed = {(m, _template(p)) for _, m, p, _ in ENDPOINTS}
    assert registered == listed


@pytest.mark.parametrize(("section", "method", "path", "body"), ENDPOINTS, ids=IDS)
async def test_no_token_is_the_spec_401(
    ccs: CcsWorld, section: str, method: str, path: str, body: Any
) -> None:
    async with ccs.client(None) as cl:
        r = await cl.request(method, API + path, json=body)
    assert r.headers["content-type"] == "application/json"
    assert_golden("unauthorized", r)


@pytest.mark.parametrize(("section", "method", "path", "body"), ENDPOINTS, ids=IDS)
async def test_an_unexpected_failure_is_the_spec_500(
    ccs: CcsWorld, monkeypatch: pytest.MonkeyPatch, section: str, method: str, path: str, body: Any
) -> None:
    def broken(secret: str | None) -> Any:
        raise RuntimeError("the directory is gone")

    monkeypatch.setattr(ccs.c.directory, "authenticate", broken)
    transport = httpx.ASGITransport(app=ccs.app, raise_app_exceptions=False)
    headers = {"Authorization": f"Bearer {ccs.tokens['tenant_admin']}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://ccs") as cl:
        r = await cl.request(method, API + path, json=body, headers=headers)
    assert_golden("internal_error", r)
