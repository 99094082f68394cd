"""Domain errors.

Every error the core raises is a :class:`DomainError` with a stable ``code`` (a snake_case
string that clients may rely on), a human message and a ``details`` mapping. Errors never carry
an HTTP status: each API dialect renders them from its own table.

    DomainError
    ├── NotFound                 code "<thing>_not_found"
    ├── Invalid                  malformed or out-of-range input ("number_malformed", ...)
    ├── Conflict                 the object exists / is taken ("slot_occupied", ...)
    ├── IllegalTransition        a state machine refused an event ("leg_already_held", ...)
    ├── LimitExceeded            a tenant limit or licence would be exceeded
    ├── PermissionDenied         the principal lacks a permission
    └── Unauthenticated          no or bad credentials
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error the core raises."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.details: dict[str, Any] = details

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class NotFound(DomainError):
    code = "not_found"

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} {ident!r} not found", code=f"{kind}_not_found", id=ident)
        self.kind = kind


class Invalid(DomainError):
    code = "invalid"


class Conflict(DomainError):
    code = "conflict"


class IllegalTransition(DomainError):
    """A state machine refused an event; the state is unchanged."""

    code = "illegal_transition"

    def __init__(self, machine: str, state: str, event: str, *, code: str | None = None) -> None:
        super().__init__(
            f"{machine}: cannot {event} in state {state}",
            code=code or f"{machine}_cannot_{event}",
            machine=machine,
            state=state,
            event=event,
        )


class LimitExceeded(DomainError):
    code = "limit_exceeded"


class PermissionDenied(DomainError):
    code = "permission_denied"


class Unauthenticated(DomainError):
    code = "unauthenticated"
