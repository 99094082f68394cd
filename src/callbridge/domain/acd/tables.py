"""The engine's two transition tables: a queued call, and an agent's reservation.

Theory of operation. A call enters a queue ``waiting``. Distribution reserves one or more idle
agents for it at once (``offer``; ``pick`` when an agent chooses it) and the call is ``offered``
until one reserved agent answers (``connected``) or every offer has ended (``release``, back to
``waiting``, keeping its place). A waiting or offered call may also leave the queue: the customer
hangs up (``abandon``), a limit sends it elsewhere (``overflow``), an operator transfers or ends it
(``remove``); ``move`` puts it in another queue, still waiting, with its arrival order kept. A
connected call ends when either party hangs up (``end``). The four end states are terminal: the
engine forgets the call once its last output is out.

An agent known to the engine is ``idle``, ``reserved`` (exactly one offer outstanding),
``busy`` (connected to exactly one queued call) or in ``wrapup`` (after-call work). Whether the
agent is *ready* for offers is a separate flag set by presence, so an agent who goes away while
busy finishes the call and is not offered another.
"""

from __future__ import annotations

from enum import StrEnum

from ..fsm import Machine


class CallState(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"
    CONNECTED = "connected"
    ENDED = "ended"
    ABANDONED = "abandoned"
    OVERFLOWED = "overflowed"
    REMOVED = "removed"


class CallInput(StrEnum):
    OFFER = "offer"
    PICK = "pick"
    ANSWER = "answer"
    RELEASE = "release"
    CALLBACK = "callback"
    MOVE = "move"
    ABANDON = "abandon"
    OVERFLOW = "overflow"
    REMOVE = "remove"
    END = "end"


LIVE = frozenset({CallState.WAITING, CallState.OFFERED, CallState.CONNECTED})
TERMINAL = frozenset(CallState) - LIVE

_W, _O, _C = CallState.WAITING, CallState.OFFERED, CallState.CONNECTED

QUEUE_CALL = Machine[CallState, CallInput](
    "queue_call",
    {
        (_W, CallInput.OFFER): _O,
        (_W, CallInput.PICK): _O,
        (_W, CallInput.CALLBACK): _W,
        (_W, CallInput.MOVE): _W,
        (_W, CallInput.ABANDON): CallState.ABANDONED,
        (_W, CallInput.OVERFLOW): CallState.OVERFLOWED,
        (_W, CallInput.REMOVE): CallState.REMOVED,
        (_O, CallInput.ANSWER): _C,
        (_O, CallInput.RELEASE): _W,
        (_O, CallInput.MOVE): _W,
        (_O, CallInput.ABANDON): CallState.ABANDONED,
        (_O, CallInput.OVERFLOW): CallState.OVERFLOWED,
        (_O, CallInput.REMOVE): CallState.REMOVED,
        (_C, CallInput.END): CallState.ENDED,
    },
    codes={
        **{
            (_O, i): "queue_call_already_offered"
            for i in (CallInput.OFFER, CallInput.PICK, CallInput.CALLBACK)
        },
        (_W, CallInput.ANSWER): "queue_call_not_offered",
        (_W, CallInput.END): "queue_call_not_connected",
        (_O, CallInput.END): "queue_call_not_connected",
        **{(_C, i): "queue_call_connected" for i in CallInput if i is not CallInput.END},
        **{(s, i): "queue_call_gone" for s in TERMINAL for i in CallInput},
    },
)


class AgentState(StrEnum):
    IDLE = "idle"
    RESERVED = "reserved"
    BUSY = "busy"
    WRAPUP = "wrapup"


class AgentInput(StrEnum):
    RESERVE = "reserve"
    ANSWER = "answer"
    RELEASE = "release"
    END = "end"
    WRAPUP = "wrapup"
    WRAPPED = "wrapped"


RESERVATION = Machine[AgentState, AgentInput](
    "reservation",
    {
        (AgentState.IDLE, AgentInput.RESERVE): AgentState.RESERVED,
        (AgentState.RESERVED, AgentInput.ANSWER): AgentState.BUSY,
        (AgentState.RESERVED, AgentInput.RELEASE): AgentState.IDLE,
        (AgentState.BUSY, AgentInput.END): AgentState.IDLE,
        (AgentState.BUSY, AgentInput.WRAPUP): AgentState.WRAPUP,
        (AgentState.WRAPUP, AgentInput.WRAPPED): AgentState.IDLE,
    },
    codes={
        (AgentState.RESERVED, AgentInput.RESERVE): "agent_already_offered",
        (AgentState.BUSY, AgentInput.RESERVE): "agent_busy",
        (AgentState.WRAPUP, AgentInput.RESERVE): "agent_in_wrapup",
        (AgentState.IDLE, AgentInput.ANSWER): "agent_not_offered",
        (AgentState.IDLE, AgentInput.RELEASE): "agent_not_offered",
        (AgentState.IDLE, AgentInput.WRAPPED): "agent_not_in_wrapup",
        (AgentState.BUSY, AgentInput.WRAPPED): "agent_not_in_wrapup",
        (AgentState.RESERVED, AgentInput.WRAPPED): "agent_not_in_wrapup",
    },
)
