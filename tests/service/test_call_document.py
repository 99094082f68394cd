"""The call document a commit stores: pydantic's ``model_dump_json()`` (encoded once, as an
:class:`EncodedDoc`) is the very JSON the adapters made of ``model_dump(mode="json")`` before,
so what is stored and read back (restart, the API) is unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
from tests.domain.test_call_clone import rich_call

from callbridge.adapters.storage_common import encode_doc, encode_json
from callbridge.adapters.storage_memory import MemoryStorage
from callbridge.domain.calls import Call, CallOrigin, Direction, Leg, PartyKind
from callbridge.ports.storage import Batch, EncodedDoc, Put

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def _calls() -> list[Call]:
    bare = Call(
        id="C2",
        tenant_id="t1",
        origin=CallOrigin.ORIGINATE,
        from_number='Zoë ☎ "q" \\ \u2028',
        to_number="",
        created_at=datetime(2026, 1, 1, 9, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
    )
    bare.add_leg(
        Leg(
            id="x",
            kind=PartyKind.EXTERNAL,
            direction=Direction.INBOUND,
            number="+1",
            created_at=T0,
        )
    )
    return [rich_call(), rich_call().clone(), bare]


def test_the_encoded_call_document_is_the_json_of_its_dump() -> None:
    for call in _calls():
        encoded = encode_doc(EncodedDoc(call.model_dump_json()))
        assert encoded == encode_json(call.model_dump(mode="json"))  # byte for byte
        assert orjson.loads(encoded) == call.model_dump(mode="json")
        assert Call.model_validate(orjson.loads(encoded)) == call


async def test_a_committed_call_reads_back_as_its_dump() -> None:
    storage = MemoryStorage()
    await storage.open()
    for call in _calls():
        batch = Batch(occurred_at=T0)
        batch.puts.append(Put("calls", call.id, call.tenant_id, EncodedDoc(call.model_dump_json())))
        await storage.commit(batch)
        assert await storage.get("calls", call.id) == call.model_dump(mode="json")
