"""Demo data: one telco, one tenant with agents, queues and DIDs, API users with tokens.

:func:`seed_demo` is idempotent: every object has a fixed id (or, for presence options, a unique
name) and is created only when missing, so running ``callbridge serve --demo`` again on the same
data directory duplicates nothing.

Only the SHA-256 of a token is stored, so the plaintext of the demo tokens lives in one place:
``<data-dir>/demo-credentials.json`` (mode 0600). On a re-run the tokens in that file are reused
when they still authenticate as the right user; otherwise new ones are issued and the file is
rewritten. The file is a JSON object so that API dialects can add their own sections.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from .adapters.simswitch import EndpointScript, SimulatedSwitch
from .bootstrap import Container
from .domain.directory import PresenceType, QueueType
from .domain.errors import DomainError
from .domain.tenancy import Level, Permission
from .service.auth import system_actor
from .sip.credentials import ha1

log = logging.getLogger(__name__)

CREDENTIALS_FILE = "demo-credentials.json"

#: demo extensions that get a SIP account when the server runs the SIP switch
SIP_PHONES = ["112", "113", "114"]

TELCO_ID = "az123456-eee4-46f5-baf9-a9d661bfa92a"
TELCO_NAME = "Broadview"
TENANT_ID = "az123456-53d6-48e2-85cd-f8d6bde10fd9"
TENANT_NAME = "CCSLab15"
TENANT_TIMEZONE = "US/Eastern"

#: (id, name)
PRODUCTS: list[tuple[str, str]] = [
    ("az123456-0001-4c1a-9d0e-5f7a8b9c0d01", "+AG"),
    ("az123456-0002-4c1a-9d0e-5f7a8b9c0d02", "AllPermissions-Product"),
    ("az123456-0003-4c1a-9d0e-5f7a8b9c0d03", "Campaign"),
    ("az123456-0004-4c1a-9d0e-5f7a8b9c0d04", "ECR,ACP"),
]

AGENT_PERMISSIONS = [
    Permission.API,
    Permission.AGENT_CONTROL,
    Permission.CALL_CONTROL,
    Permission.CALL_EVENTS,
    Permission.AGENT_EVENTS,
    Permission.CALLS_VIEW,
]

#: key -> (id, name, permissions); global roles (no tenant)
ROLES: dict[str, tuple[str, str, list[Permission]]] = {
    "tenant_admin": ("az123456-a001-4d2b-8e3f-000000000001", "Tenant Admin", list(Permission)),
    "telco_admin": ("az123456-a002-4d2b-8e3f-000000000002", "Telco Admin", list(Permission)),
    "api": ("az123456-a003-4d2b-8e3f-000000000003", "API", [Permission.API]),
    "agent": (
        "az123456-a004-4d2b-8e3f-000000000004",
        "Agent",
        [p for p in AGENT_PERMISSIONS if p is not Permission.API],
    ),
}

#: number -> (id, firstname, lastname, is_agent)
EXTENSIONS: dict[str, tuple[str, str, str, bool]] = {
    "112": ("az123456-7bee-4351-bcd6-ecc2d8620b83", "Rob", "Masters", True),
    "113": ("az123456-57be-4919-aa73-b2e6341fe461", "Sonny", "Patel", True),
    "114": ("az123456-7c49-49a8-80fc-ae173a422a36", "Reese", "Nath", True),
    "120": ("az123456-1200-4a5b-9c6d-7e8f90a1b2c3", "Front", "Desk", False),
}
AGENT_NUMBERS = [n for n, (_, _, _, agent) in EXTENSIONS.items() if agent]

#: name -> (id, fields)
QUEUES: dict[str, tuple[str, dict[str, Any]]] = {
    "Q386": (
        "az123456-d988-4239-ab9c-c393eeb2d217",
        {"extension": "386", "members": ["112", "113", "114"]},
    ),
    "Q3878": (
        "az123456-0817-40a5-86aa-0f43becbd6f6",
        {"extension": "387", "members": ["113", "114"]},
    ),
    "Outbound": (
        "az123456-0a0b-4c0d-8e0f-1a2b3c4d5e6f",
        {"type": QueueType.VOICE_OUTBOUND, "caller_id": "2677318044", "members": []},
    ),
}

PRESENCE_OPTIONS: list[tuple[PresenceType, str]] = [
    (PresenceType.SIGN_OUT, "Holiday In Bahamas"),
    (PresenceType.SIGN_OUT, "Sign Out"),
    (PresenceType.AWAY, "Coffee Break"),
    (PresenceType.AWAY, "Lunch Break"),
]

#: key -> (principal id, name, level, role keys, extension number)
PRINCIPALS: dict[str, tuple[str, str, Level, list[str], str | None]] = {
    "telco_admin": (
        "az123456-b001-4e5f-9a0b-000000000001",
        "Broadview Admin",
        Level.TELCO,
        ["telco_admin"],
        None,
    ),
    "tenant_admin": (
        "az123456-b002-4e5f-9a0b-000000000002",
        "CCSLab15 Admin",
        Level.TENANT,
        ["tenant_admin"],
        None,
    ),
    "agent": (
        "az123456-b003-4e5f-9a0b-000000000003",
        "Rob Masters (agent 112)",
        Level.TENANT,
        ["api", "agent"],
        "112",
    ),
}

#: trunk numbers (DIDs, #3) -> (id, target number, description): point a SIP trunk at them
DIDS: dict[str, tuple[str, str, str]] = {
    "+12677318112": ("az123456-d1d0-4e5f-9a0b-000000000112", "112", "Rob Masters direct"),
    "+12677318386": ("az123456-d1d0-4e5f-9a0b-000000000386", "386", "Support line (Q386)"),
}

#: simulated external numbers (scripts live in the switch, so they are set on every start)
ENDPOINTS: dict[str, EndpointScript] = {
    "19735552106": EndpointScript(behaviour="answer"),
    "19735550000": EndpointScript(behaviour="busy"),
    "19735550001": EndpointScript(behaviour="no_answer"),
}


async def seed_demo(container: Container, base_url: str, path: Path) -> dict[str, Any]:
    """Create the demo objects that are missing, write ``path`` and return what was written.

    ``container`` must be started (storage open, directory loaded).
    """
    d = container.directory
    system = system_actor()
    created: list[str] = []

    if TELCO_ID not in d.telcos:
        await d.create_telco(TELCO_NAME, telco_id=TELCO_ID)
        created.append("telco")
    for product_id, name in PRODUCTS:
        if product_id not in d.products:
            await d.create_product(name, product_id=product_id)
            created.append(f"product {name}")
    for role_id, name, permissions in ROLES.values():
        if role_id not in d.roles:
            await d.create_role(name, permissions, role_id=role_id)
            created.append(f"role {name}")

    if TENANT_ID not in d.tenants:
        await d.create_tenant(
            system, TENANT_NAME, telco_id=TELCO_ID, timezone=TENANT_TIMEZONE, tenant_id=TENANT_ID
        )
        created.append("tenant")
    tenant = d.tenants[TENANT_ID]
    for product_id, _ in PRODUCTS:
        if product_id not in tenant.product_ids:
            tenant = await d.add_product(system, TENANT_ID, product_id)

    new_agents: list[str] = []
    for number, (ext_id, first, last, is_agent) in EXTENSIONS.items():
        if ext_id in d.extensions:
            continue
        if d.number_owner(TENANT_ID, number) is not None:
            log.warning("demo: number %s is taken by another object; not creating it", number)
            continue
        fields = {"number": number, "firstname": first, "lastname": last, "is_agent": is_agent}
        await d.create_extension(system, TENANT_ID, fields, extension_id=ext_id)
        created.append(f"extension {number}")
        if is_agent:
            new_agents.append(ext_id)

    existing = {p.name for p in d.presence_options_of(TENANT_ID)}
    for kind, name in PRESENCE_OPTIONS:
        if name not in existing:
            await d.create_presence_option(system, TENANT_ID, kind, name)
            created.append(f"presence option {name}")

    extensions = _extension_ids(container)
    for name, (queue_id, spec) in QUEUES.items():
        if queue_id in d.queues:
            continue
        queue_fields: dict[str, Any] = {k: v for k, v in spec.items() if k != "members"}
        queue_fields["name"] = name
        queue_fields["member_extension_ids"] = [
            extensions[n] for n in spec["members"] if n in extensions
        ]
        queue_number = queue_fields.get("extension")
        if queue_number is not None and d.number_owner(TENANT_ID, queue_number) is not None:
            log.warning("demo: number %s is taken; not creating queue %s", queue_number, name)
            continue
        await d.create_queue(system, TENANT_ID, queue_fields, queue_id=queue_id)
        created.append(f"queue {name}")

    for number, (did_id, target, description) in DIDS.items():
        if did_id in d.dids:
            continue
        if d.did_for(number) is not None or d.number_owner(TENANT_ID, target) is None:
            log.warning("demo: DID %s is taken or %s is missing; not creating it", number, target)
            continue
        await container.dids.create(system, TENANT_ID, number, target, description, did_id=did_id)
        created.append(f"DID {number}")

    for ext_id in new_agents:  # agents start Ready the first time, so calls can reach them
        with contextlib.suppress(DomainError):
            await container.agents.set_state(system, TENANT_ID, ext_id, "Ready")

    role_ids = {key: role_id for key, (role_id, _, _) in ROLES.items()}
    for principal_id, name, level, roles, ext_number in PRINCIPALS.values():
        if principal_id in d.principals:
            continue
        await d.create_principal(
            name,
            level,
            TELCO_ID,
            [role_ids[r] for r in roles],
            tenant_id=TENANT_ID if level is Level.TENANT else None,
            extension_id=extensions.get(ext_number) if ext_number else None,
            principal_id=principal_id,
        )
        created.append(f"principal {name}")

    if isinstance(container.switch, SimulatedSwitch):
        for number, script in ENDPOINTS.items():
            container.switch.set_script(number, script)

    previous = _read(path)
    tokens = await _tokens(container, previous)
    data = credentials(base_url, container, tokens)
    if container.sip is not None:
        data["sip"] = {
            "host": container.settings.sip_public_host
            or sip_client_host(container.settings.sip_host),
            "port": container.sip.endpoint.port,
            "realm": container.settings.sip_realm,
            "phones": await _sip_phones(container, previous),
        }
    write_credentials(path, data)
    if created:
        log.info("demo: created %d objects (%s)", len(created), ", ".join(created))
    else:
        log.info("demo: data already present, nothing created")
    return data


def sip_client_host(host: str) -> str:
    """An address a local phone can register to for a SIP endpoint bound to ``host``."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


async def _sip_phones(container: Container, previous: dict[str, Any]) -> list[dict[str, str]]:
    """SIP accounts of the demo phones: the previous file's when they still verify, else new."""
    accounts = container.sip_accounts
    realm = accounts.realm
    old = previous.get("sip")
    old_phones: dict[str, dict[str, Any]] = {}
    if isinstance(old, dict) and isinstance(old.get("phones"), list):
        for phone in old["phones"]:
            if isinstance(phone, dict) and isinstance(phone.get("extension"), str):
                old_phones[phone["extension"]] = phone
    phones: list[dict[str, str]] = []
    issued: list[str] = []
    for number in SIP_PHONES:
        ext = container.directory.extension_by_number(TENANT_ID, number)
        if ext is None:
            continue
        current = accounts.of_extension(ext.id)
        prev = old_phones.get(number, {})
        username, password = prev.get("username"), prev.get("password")
        if (
            current is not None
            and isinstance(username, str)
            and isinstance(password, str)
            and current.username == username
            and current.realm == realm
            and current.ha1_md5 == ha1("MD5", username, realm, password)
        ):
            phones.append({"extension": number, "username": username, "password": password})
            continue
        try:
            account = await accounts.set(
                system_actor(),
                TENANT_ID,
                ext.id,
                username=current.username if current is not None else None,
            )
        except DomainError as exc:
            log.warning("demo: no SIP account for extension %s (%s)", number, exc.message)
            continue
        phones.append(
            {"extension": number, "username": account.username, "password": account.password}
        )
        issued.append(number)
    if issued:
        log.info("demo: issued new SIP passwords for %s", ", ".join(issued))
    return phones


def _extension_ids(container: Container) -> dict[str, str]:
    out: dict[str, str] = {}
    for number in EXTENSIONS:
        ext = container.directory.extension_by_number(TENANT_ID, number)
        if ext is not None:
            out[number] = ext.id
    return out


async def _tokens(container: Container, previous: dict[str, Any]) -> dict[str, str]:
    """The demo tokens: those in the previous file that still work, new ones for the others."""
    d = container.directory
    old = previous.get("tokens")
    old_tokens: dict[str, Any] = old if isinstance(old, dict) else {}
    tokens: dict[str, str] = {}
    reissued: list[str] = []
    for key, (principal_id, *_) in PRINCIPALS.items():
        secret = old_tokens.get(key)
        if isinstance(secret, str):
            try:
                if d.authenticate(secret).principal.id == principal_id:
                    tokens[key] = secret
                    continue
            except DomainError:
                pass
        _, tokens[key] = await d.issue_token(principal_id, name=f"demo {key}")
        reissued.append(key)
    if reissued:
        log.info("demo: issued new tokens for %s", ", ".join(reissued))
    return tokens


def credentials(base_url: str, container: Container, tokens: dict[str, str]) -> dict[str, Any]:
    base = base_url.rstrip("/")
    d = container.directory
    return {
        "base_url": base,
        "telco_id": TELCO_ID,
        "tenant_id": TENANT_ID,
        "extensions": _extension_ids(container),
        "queues": {name: qid for name, (qid, _) in QUEUES.items() if qid in d.queues},
        "dids": [
            {"id": did.id, "number": did.number, "target": did.target}
            for did_id, _, _ in DIDS.values()
            if (did := d.dids.get(did_id)) is not None
        ],
        "principals": {key: spec[0] for key, spec in PRINCIPALS.items()},
        "tokens": tokens,
        "sim_numbers": {number: s.behaviour for number, s in ENDPOINTS.items()},
        "native": {
            "openapi": f"{base}/api/v1/openapi.json",
            "docs": f"{base}/api/v1/docs",
        },
    }


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("demo: ignoring unreadable %s (%s)", path, type(exc).__name__)
        return {}
    return data if isinstance(data, dict) else {}


def write_credentials(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically, readable by the owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
