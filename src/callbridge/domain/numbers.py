"""Dial-plan rules: what an extension number, a parking slot and an external number look like."""

from __future__ import annotations

import re

from .errors import Invalid

PARKING_SLOTS: tuple[str, ...] = tuple(str(n) for n in range(701, 711))

_EXTENSION = re.compile(r"^[0-9]{2,6}$")
_EXTERNAL = re.compile(r"^\+?[0-9]{7,15}$")


def is_extension_number(number: str) -> bool:
    return bool(_EXTENSION.fullmatch(number))


def is_external_number(number: str) -> bool:
    return bool(_EXTERNAL.fullmatch(number))


def check_extension_number(number: str) -> str:
    if not is_extension_number(number):
        raise Invalid(
            f"extension number {number!r} must be 2 to 6 digits",
            code="extension_number_malformed",
            number=number,
        )
    if number in PARKING_SLOTS:
        raise Invalid(
            f"{number} is a parking slot (701-710) and cannot be an extension",
            code="extension_number_reserved",
            number=number,
        )
    return number


def check_dialable(number: str) -> str:
    """A target the platform can dial: an internal extension or an external number."""
    if not (is_extension_number(number) or is_external_number(number)):
        raise Invalid(
            f"number {number!r} is malformed: expected 2-6 digit extension "
            "or 7-15 digit external number (optional leading +)",
            code="number_malformed",
            number=number,
        )
    return number


def check_parking_slot(slot: str) -> str:
    if slot not in PARKING_SLOTS:
        raise Invalid(
            f"parking slot {slot!r} does not exist; slots are 701 to 710",
            code="parking_slot_invalid",
            slot=slot,
        )
    return slot
