"""Fixtures of the wire tests: one stack and two registered baresip agents per module."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from tests.wire.peers import random_range
from tests.wire.rig import Rig, Tools
from tests.wire.stack import WireStack


@pytest.fixture(scope="module")
def tools() -> Tools:
    return Tools.find()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    workdir = tmp_path_factory.mktemp("wire")
    rtp = random_range(200)
    stack = await WireStack.start(workdir / "data", rtp)
    rig = Rig(tools, workdir, stack, rtp)
    try:
        await rig.add_agent("112")
        await rig.add_agent("113")
        yield rig
    finally:
        await rig.cleanup()
        for agent in rig.agents.values():
            await agent.stop()
        await stack.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def clean(rig: Rig) -> AsyncIterator[Rig]:
    """The rig, with no call left behind by the test."""
    try:
        yield rig
    finally:
        await rig.cleanup()
