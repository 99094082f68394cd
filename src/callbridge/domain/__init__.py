"""The pure domain: entities, state machines and rules. No I/O, no clock reads."""
