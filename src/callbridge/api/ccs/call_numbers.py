"""The calling and called numbers of a call, for every call and inbound-queue frame.

The core records the numbers once, on ``call.created``; a CCS client wants them on every frame
(it may have connected, or resumed, after the call began). They never change during a call, so
reading them from wherever the call is now (the ``call.created`` just seen, the live call, or its
call record once it ended) gives the same frame live and on replay.
"""

from __future__ import annotations

from collections import OrderedDict

from ...bootstrap import Container
from ...domain.events import EventCategory, StoredEvent

Numbers = tuple[str, str]

#: the categories whose frames carry the numbers
WITH_NUMBERS = (EventCategory.CALL, EventCategory.QUEUE)


class CallNumbers:
    """A per-connection, bounded memo of ``call_id -> (calling, called)`` for one tenant."""

    def __init__(self, c: Container, tenant_id: str, size: int = 1024) -> None:
        self.c = c
        self.tenant_id = tenant_id
        self.size = size
        self._memo: OrderedDict[str, Numbers] = OrderedDict()

    async def of(self, event: StoredEvent) -> Numbers | None:
        call_id = event.call_id
        if call_id is None or event.category not in WITH_NUMBERS:
            return None
        if event.type == "call.created":
            found: Numbers | None = (
                str(event.data.get("from_number", "")),
                str(event.data.get("to_number", "")),
            )
        else:
            found = self._memo.get(call_id) or await self._lookup(call_id)
        if found is not None:
            self._memo[call_id] = found
            self._memo.move_to_end(call_id)
            if len(self._memo) > self.size:
                self._memo.popitem(last=False)
        return found

    async def _lookup(self, call_id: str) -> Numbers | None:
        live = self.c.calls.calls.get(call_id)
        if live is not None and live.tenant_id == self.tenant_id:
            return live.from_number, live.to_number
        record = await self.c.core.storage.get_cdr(self.tenant_id, call_id)
        if record is not None:
            return record.from_number, record.to_number
        return None
