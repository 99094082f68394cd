"""The id generators: call ids (13 characters, each uniform over the alphabet, independent) and
the other ids (random UUIDs, as ``uuid.uuid4`` makes them)."""

from __future__ import annotations

import os
import re
import uuid

import pytest

from callbridge.service import core
from callbridge.service.core import CALL_ID_ALPHABET, CALL_ID_LENGTH, new_call_id, new_id


def test_every_id_of_the_space_is_reachable_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bounds: list[int] = []

    def draw(value: int) -> None:
        def randbelow(n: int) -> int:
            bounds.append(n)
            return value

        monkeypatch.setattr(core.secrets, "randbelow", randbelow)

    space = len(CALL_ID_ALPHABET) ** CALL_ID_LENGTH
    draw(0)
    assert new_call_id() == "0" * CALL_ID_LENGTH
    draw(space - 1)
    assert new_call_id() == "Z" * CALL_ID_LENGTH
    draw(35 + 1 * 36)  # base 36, the least significant digit first
    assert new_call_id() == "Z1" + "0" * (CALL_ID_LENGTH - 2)
    assert bounds == [space] * 3  # one uniform draw over exactly the 36**13 ids


def test_each_position_takes_every_character() -> None:
    ids = [new_call_id() for _ in range(5000)]
    assert all(re.fullmatch(r"[0-9A-Z]{13}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    for position in range(CALL_ID_LENGTH):
        assert {i[position] for i in ids} == set(CALL_ID_ALPHABET)


def test_new_id_is_what_uuid4_makes_of_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    samples = [bytes(16), b"\xff" * 16, bytes(range(16)), *(os.urandom(16) for _ in range(2000))]
    for raw in samples:
        monkeypatch.setattr(core.os, "urandom", lambda n, raw=raw: raw)
        assert new_id() == str(uuid.UUID(bytes=raw, version=4))
    monkeypatch.undo()
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)
