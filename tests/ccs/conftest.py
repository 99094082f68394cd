"""Fixtures of the CCS dialect tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.ccs.world import CcsWorld, make_ccs_world


@pytest.fixture
async def ccs(tmp_path: Path) -> AsyncIterator[CcsWorld]:
    w = await make_ccs_world(tmp_path)
    try:
        yield w
    finally:
        await w.c.stop()
