"""Shared fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tests.support import World, make_world


@pytest.fixture
async def world() -> AsyncIterator[World]:
    w = await make_world()
    try:
        yield w
    finally:
        await w.c.stop()
