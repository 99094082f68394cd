"""SIP credentials of agents' phones, as the registrar sees them.

A phone authenticates with a globally unique ``username`` (by default its extension number) and a
password, in one realm per server. Only the digest hashes ``HA1 = H(username:realm:password)`` are
stored, for MD5 and SHA-256 (RFC 7616 / RFC 8760), never the password.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from pydantic import BaseModel


class SipCredential(BaseModel):
    tenant_id: str
    extension_id: str
    username: str
    realm: str
    ha1_md5: str
    ha1_sha256: str


def ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """``H(username:realm:password)`` for ``MD5`` or ``SHA-256``."""
    data = f"{username}:{realm}:{password}".encode()
    if algorithm.upper() == "MD5":
        return hashlib.md5(data, usedforsecurity=False).hexdigest()
    if algorithm.upper() == "SHA-256":
        return hashlib.sha256(data).hexdigest()
    raise ValueError(f"unsupported digest algorithm {algorithm!r}")


def make_credential(
    tenant_id: str, extension_id: str, username: str, realm: str, password: str
) -> SipCredential:
    return SipCredential(
        tenant_id=tenant_id,
        extension_id=extension_id,
        username=username,
        realm=realm,
        ha1_md5=ha1("MD5", username, realm, password),
        ha1_sha256=ha1("SHA-256", username, realm, password),
    )


class CredentialLookup(Protocol):
    def __call__(self, username: str) -> SipCredential | None:
        """The credential of ``username`` (in this server's realm), or None."""
        ...
