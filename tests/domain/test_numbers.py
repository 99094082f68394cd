"""Dial-plan rules: extensions, external numbers and parking slots."""

from __future__ import annotations

import pytest

from callbridge.domain.errors import Invalid
from callbridge.domain.numbers import (
    check_dialable,
    check_extension_number,
    check_parking_slot,
    is_extension_number,
    is_external_number,
)

EXTENSIONS = ["10", "101", "2001", "99999", "123456"]
EXTERNALS = ["1234567", "+1234567", "+4930123456", "004930123456", "+123456789012345"]
NEITHER = [
    "",
    "1",
    "+12",
    "12a",
    "1234567890123456",  # 16 digits
    "+1234567890123456",
    "++4930123456",
    "+49 30 123456",
    "49-30-123456",
    " 101",
    "101 ",
    "101\n",
    "+4930123456\n",
    "\u0661\u0660\u0661",  # Arabic-Indic 101: not dial digits
]


@pytest.mark.parametrize("number", EXTENSIONS)
def test_extension_numbers(number: str) -> None:
    assert is_extension_number(number)
    assert not is_external_number(number)
    assert check_extension_number(number) == number
    assert check_dialable(number) == number


@pytest.mark.parametrize("number", EXTERNALS)
def test_external_numbers(number: str) -> None:
    assert is_external_number(number)
    assert not is_extension_number(number)
    assert check_dialable(number) == number
    with pytest.raises(Invalid) as exc:
        check_extension_number(number)
    assert exc.value.code == "extension_number_malformed"


@pytest.mark.parametrize("number", NEITHER)
def test_malformed_numbers(number: str) -> None:
    assert not is_extension_number(number)
    assert not is_external_number(number)
    with pytest.raises(Invalid) as exc:
        check_dialable(number)
    assert exc.value.code == "number_malformed"
    assert exc.value.details == {"number": number}
    with pytest.raises(Invalid) as exc:
        check_extension_number(number)
    assert exc.value.code == "extension_number_malformed"


@pytest.mark.parametrize("slot", [str(n) for n in range(701, 711)])
def test_parking_slots_are_reserved_but_dialable(slot: str) -> None:
    assert check_parking_slot(slot) == slot
    assert check_dialable(slot) == slot
    with pytest.raises(Invalid) as exc:
        check_extension_number(slot)
    assert exc.value.code == "extension_number_reserved"
    assert exc.value.details == {"number": slot}


def test_neighbours_of_the_lot_are_ordinary_extensions() -> None:
    assert check_extension_number("700") == "700"
    assert check_extension_number("711") == "711"
    assert check_extension_number("7010") == "7010"


@pytest.mark.parametrize("slot", ["700", "711", "", "70l", "701\n"])
def test_invalid_parking_slots(slot: str) -> None:
    with pytest.raises(Invalid) as exc:
        check_parking_slot(slot)
    assert exc.value.code == "parking_slot_invalid"
    assert exc.value.details == {"slot": slot}
