"""SIP accounts: the credentials an agent's phone registers with.

One account per extension, with a username unique on the server (by default the extension
number) and a password that is shown once when set or generated and stored only as digest
hashes (see :mod:`callbridge.sip.credentials`).
"""

from __future__ import annotations

import re
import secrets

from pydantic import BaseModel

from ..domain.errors import Conflict, Invalid, NotFound
from ..domain.tenancy import Permission
from ..ports.storage import Delete, Put
from ..sip.credentials import SipCredential, make_credential
from .auth import Actor
from .core import Core
from .directory import Directory

KIND = "sip_credentials"
_USERNAME = re.compile(r"^[A-Za-z0-9._~+-]{1,64}$")


class SipAccount(BaseModel):
    extension_id: str
    username: str
    realm: str


class IssuedSipAccount(SipAccount):
    password: str


class SipAccounts:
    def __init__(self, core: Core, directory: Directory, realm: str) -> None:
        self.core = core
        self.directory = directory
        self.realm = realm
        self._by_username: dict[str, SipCredential] = {}
        self._by_extension: dict[str, SipCredential] = {}

    async def load(self) -> None:
        docs = await self.core.storage.list(KIND)
        self._by_username = {d["username"]: SipCredential.model_validate(d) for d in docs}
        self._by_extension = {c.extension_id: c for c in self._by_username.values()}

    def lookup(self, username: str) -> SipCredential | None:
        """For the registrar: the credential of ``username`` in this server's realm."""
        cred = self._by_username.get(username)
        if cred is None or cred.realm != self.realm:
            return None
        return cred

    def of_extension(self, extension_id: str) -> SipCredential | None:
        """The extension's credential (the SIP switch asks this on every dial to a phone)."""
        return self._by_extension.get(extension_id)

    def get(self, actor: Actor, tenant_id: str, extension_id: str) -> SipAccount:
        actor.require(Permission.TENANT_EDIT)
        self.directory.extension(actor, tenant_id, extension_id)
        cred = self.of_extension(extension_id)
        if cred is None:
            raise NotFound("sip_account", extension_id)
        return SipAccount(extension_id=extension_id, username=cred.username, realm=cred.realm)

    async def set(
        self,
        actor: Actor,
        tenant_id: str,
        extension_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
    ) -> IssuedSipAccount:
        """Create or replace the extension's account; the password is returned this once."""
        actor.require(Permission.TENANT_EDIT)
        ext = self.directory.extension(actor, tenant_id, extension_id)
        name = username or ext.number
        if not _USERNAME.match(name):
            raise Invalid(
                "a SIP username is 1-64 letters, digits or ._~+-", code="sip_username_invalid"
            )
        taken = self._by_username.get(name)
        if taken is not None and taken.extension_id != extension_id:
            raise Conflict(f"SIP username {name!r} is taken", code="sip_username_taken")
        if password is not None and len(password) < 12:
            raise Invalid("a SIP password needs at least 12 characters", code="sip_password_weak")
        secret = password or secrets.token_urlsafe(18)
        cred = make_credential(tenant_id, extension_id, name, self.realm, secret)
        batch = self.core.batch()
        old = self.of_extension(extension_id)
        if old is not None and old.username != name:
            batch.deletes.append(Delete(KIND, old.username))
        batch.puts.append(Put(KIND, name, tenant_id, cred.model_dump(mode="json")))
        await self.core.committer.commit(batch)
        if old is not None:
            self._by_username.pop(old.username, None)
        self._by_username[name] = cred
        self._by_extension[extension_id] = cred
        return IssuedSipAccount(
            extension_id=extension_id, username=name, realm=self.realm, password=secret
        )

    async def delete(self, actor: Actor, tenant_id: str, extension_id: str) -> None:
        actor.require(Permission.TENANT_EDIT)
        self.directory.extension(actor, tenant_id, extension_id)
        cred = self.of_extension(extension_id)
        if cred is None:
            raise NotFound("sip_account", extension_id)
        batch = self.core.batch()
        batch.deletes.append(Delete(KIND, cred.username))
        await self.core.committer.commit(batch)
        self._by_username.pop(cred.username, None)
        self._by_extension.pop(extension_id, None)
