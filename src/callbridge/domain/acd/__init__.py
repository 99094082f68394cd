"""Automatic call distribution: a deterministic, sans-I/O queue engine (see ``docs/acd.md``)."""

from .engine import AcdEngine
from .model import (
    AgentProfile,
    AgentToAway,
    CallbackDue,
    CancelOffer,
    CancelReason,
    Command,
    Destination,
    DestinationKind,
    Offer,
    Output,
    Overflow,
    OverflowReason,
    QueueConfig,
    Strategy,
    commands,
    events,
)
from .records import QueueStats
from .tables import QUEUE_CALL, RESERVATION, AgentInput, AgentState, CallInput, CallState

__all__ = [
    "QUEUE_CALL",
    "RESERVATION",
    "AcdEngine",
    "AgentInput",
    "AgentProfile",
    "AgentState",
    "AgentToAway",
    "CallInput",
    "CallState",
    "CallbackDue",
    "CancelOffer",
    "CancelReason",
    "Command",
    "Destination",
    "DestinationKind",
    "Offer",
    "Output",
    "Overflow",
    "OverflowReason",
    "QueueConfig",
    "QueueStats",
    "Strategy",
    "commands",
    "events",
]
