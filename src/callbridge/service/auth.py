"""Who is asking: actors, permissions and bearer tokens.

Tokens are 32 random bytes (url-safe base64, prefixed ``cb_``); only their SHA-256 is stored, so a
leaked database does not leak credentials. A fast hash is right here: the secret has 256 bits of
entropy, so there is nothing for a slow password hash to protect against.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from ..domain.errors import PermissionDenied
from ..domain.events import EventCategory
from ..domain.tenancy import Level, Permission, Principal

TOKEN_PREFIX = "cb_"


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


EVENT_PERMISSION: dict[EventCategory, Permission] = {
    EventCategory.CALL: Permission.CALL_EVENTS,
    EventCategory.AGENT: Permission.AGENT_EVENTS,
    EventCategory.QUEUE: Permission.INBOUND_QUEUE_EVENTS,
    EventCategory.CONFIG: Permission.CONFIG_EVENTS,
}


@dataclass(frozen=True, slots=True)
class Actor:
    """An authenticated principal with its permissions resolved from its roles."""

    principal: Principal
    permissions: frozenset[Permission]

    @property
    def id(self) -> str:
        return self.principal.id

    @property
    def is_telco(self) -> bool:
        return self.principal.level is Level.TELCO

    def has(self, *perms: Permission) -> bool:
        return all(p in self.permissions for p in perms)

    def require(self, *perms: Permission) -> None:
        missing = [p.value for p in perms if p not in self.permissions]
        if missing:
            raise PermissionDenied(
                f"permission required: {', '.join(missing)}",
                code="permission_denied",
                missing=missing,
            )

    def may_receive(self, category: EventCategory) -> bool:
        return EVENT_PERMISSION[category] in self.permissions


def system_actor(telco_id: str = "system") -> Actor:
    """An all-powerful telco-level actor for the CLI and the demo seeder."""
    return Actor(
        Principal(id="system", name="system", level=Level.TELCO, telco_id=telco_id),
        frozenset(Permission),
    )
