"""The parking lot: slots 701-710 per tenant, each empty or holding one parked leg."""

from __future__ import annotations

from pydantic import BaseModel, Field

from .errors import Conflict, Invalid
from .numbers import PARKING_SLOTS, check_parking_slot


class ParkedLeg(BaseModel):
    call_id: str
    leg_id: str


class ParkingLot(BaseModel):
    tenant_id: str
    slots: dict[str, ParkedLeg] = Field(default_factory=dict)

    def choose(self, slot: str | None) -> str:
        """The slot to park in: ``slot`` if it is free, else the first free one."""
        if slot is not None:
            check_parking_slot(slot)
            if slot in self.slots:
                raise Conflict(f"parking slot {slot} is occupied", code="slot_occupied", slot=slot)
            return slot
        for candidate in PARKING_SLOTS:
            if candidate not in self.slots:
                return candidate
        raise Conflict("all parking slots (701-710) are occupied", code="parking_lot_full")

    def occupy(self, slot: str, call_id: str, leg_id: str) -> None:
        self.choose(slot)
        self.slots[slot] = ParkedLeg(call_id=call_id, leg_id=leg_id)

    def occupant(self, slot: str) -> ParkedLeg:
        check_parking_slot(slot)
        try:
            return self.slots[slot]
        except KeyError:
            raise Invalid(f"parking slot {slot} is empty", code="slot_empty", slot=slot) from None

    def release(self, slot: str) -> None:
        self.slots.pop(slot, None)
