"""The parking lot: slots 701-710, one parked leg each."""

from __future__ import annotations

import pytest

from callbridge.domain.errors import Conflict, Invalid
from callbridge.domain.numbers import PARKING_SLOTS
from callbridge.domain.parking import ParkedLeg, ParkingLot


def lot_with(*slots: str) -> ParkingLot:
    lot = ParkingLot(tenant_id="t1")
    for slot in slots:
        lot.occupy(slot, f"call-{slot}", f"leg-{slot}")
    return lot


def test_slots_are_701_to_710() -> None:
    assert tuple(str(n) for n in range(701, 711)) == PARKING_SLOTS


def test_choose_the_given_slot_when_free() -> None:
    assert lot_with("701").choose("705") == "705"


def test_choose_the_first_free_slot() -> None:
    assert lot_with().choose(None) == "701"
    assert lot_with("701", "702", "704").choose(None) == "703"


def test_choose_an_occupied_slot_is_refused() -> None:
    lot = lot_with("703")
    with pytest.raises(Conflict) as exc:
        lot.choose("703")
    assert exc.value.code == "slot_occupied"
    assert exc.value.details == {"slot": "703"}


def test_a_full_lot_is_refused() -> None:
    lot = lot_with(*PARKING_SLOTS)
    with pytest.raises(Conflict) as exc:
        lot.choose(None)
    assert exc.value.code == "parking_lot_full"
    lot.release("706")
    assert lot.choose(None) == "706"


@pytest.mark.parametrize("slot", ["700", "711", "7O1", "", "0701", "701 "])
def test_invalid_slots_are_refused(slot: str) -> None:
    lot = lot_with()
    for action in (lambda: lot.choose(slot), lambda: lot.occupant(slot)):
        with pytest.raises(Invalid) as exc:
            action()
        assert exc.value.code == "parking_slot_invalid"
    with pytest.raises(Invalid):
        lot.occupy(slot, "c1", "l1")
    assert lot.slots == {}


def test_occupy_occupant_and_release() -> None:
    lot = lot_with()
    lot.occupy("702", "c1", "l1")
    assert lot.occupant("702") == ParkedLeg(call_id="c1", leg_id="l1")
    before = lot.model_dump()
    with pytest.raises(Conflict) as exc:
        lot.occupy("702", "c2", "l2")
    assert exc.value.code == "slot_occupied"
    assert lot.model_dump() == before
    lot.release("702")
    with pytest.raises(Invalid) as exc2:
        lot.occupant("702")
    assert exc2.value.code == "slot_empty"
    lot.release("702")  # releasing an empty slot is harmless
    assert lot.slots == {}


def test_the_lot_round_trips_as_json() -> None:
    lot = lot_with("701", "710")
    assert ParkingLot.model_validate_json(lot.model_dump_json()) == lot
