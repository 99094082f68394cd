"""The CCS mount: unknown routes and the call id shape."""

from __future__ import annotations

import re

from tests.ccs.golden import assert_golden
from tests.ccs.world import API, CcsWorld

from callbridge.service.core import new_call_id


async def test_an_unknown_path_is_404_in_the_ccs_error_shape(ccs: CcsWorld) -> None:
    async with ccs.client("tenant_admin") as cl:
        r = await cl.get(f"{API}/nothing-here")
    assert r.status_code == 404
    assert r.content == b'{"success":false,"reason":"Not Found"}'
    assert_golden("unknown_route", r)


def test_call_ids_have_the_spec_shape() -> None:
    ids = {new_call_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[0-9A-Z]{13}", i) for i in ids)
