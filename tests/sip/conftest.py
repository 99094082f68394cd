"""The SIP switch fixtures (defined in test_sipswitch.py) for the other switch test modules."""

from __future__ import annotations

from tests.sip.test_sipswitch import peer, stack

__all__ = ["peer", "stack"]
