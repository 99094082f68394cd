"""The call id generator: 13 characters, each uniform over the alphabet, independent."""

from __future__ import annotations

import re

import pytest

from callbridge.service import core
from callbridge.service.core import CALL_ID_ALPHABET, CALL_ID_LENGTH, new_call_id


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
