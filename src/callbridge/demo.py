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
from .domain.tenancy import Level, NamedRef, Permission, RecordingQuality, TenantProfile
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
#: the tenant's provisioning record as CCS 4.4's example shows it
TENANT_PROFILE = TenantProfile(
    site_ip_address="58.00.231.32",
    silhouette=NamedRef(uuid="az123456-bd5e-480c-aeca-fb726cde928f", name="nvlab180-1"),
    sil_tenant_url="/ccsl06",
    sil_tenant_id="500900355",
    sil_authentication=True,
    sil_auth_editable=True,
    sil_crplatform_enabled=True,
    nightly_call_details=True,
    cdr_retention_days=365,
    rec_retention_days=30,
    rec_quality=RecordingQuality.MONO,
    rec_down_limit=100,
    library_limit=600,
    campaign_size=99,
    default_gateway=NamedRef(uuid="az123456-ca8a-42e3-a432-ecc0c4479daa", name="Metaswitch"),
    default_signin_method="Phone",
    default_outgoing_clid="2677318044",
    service_extension="536",
    ve_ivr=True,
    sftp_export=False,
    cleanup_sftp=False,
    sftp_dir_configured=True,
)

#: (id, name, notes): the products of the CCS spec's examples (4.1 and the tenant in 4.3)
PRODUCTS: list[tuple[str, str, str]] = [
    ("az123456-d7ef-4638-9cff-ef6aaba3e77f", "+AG", "R7.3 Feature"),
    ("az123456-e76e-440c-8d9a-970015b8b533", "AllPermissions-Product", ""),
    ("az123456-c58d-48c1-90b9-4b3c65c22875", "Jerin_product", ""),
    ("az123456-b08e-467d-87e0-8763bce63892", "CCA,EM ph", "R6.3 Version"),
    ("az123456-7a90-4e41-a91d-19c8e35e81ef", "Campaign", ""),
    ("az123456-8cd5-4f06-9b23-af8c1283c4c6", "ECR,ACP", ""),
]
#: the products the demo tenant has (CCS 4.3/4.4 examples)
TENANT_PRODUCTS = ["az123456-7a90-4e41-a91d-19c8e35e81ef", "az123456-8cd5-4f06-9b23-af8c1283c4c6"]

AGENT_PERMISSIONS = [
    Permission.AGENT_CONTROL,
    Permission.CALL_CONTROL,
    Permission.CALL_EVENTS,
    Permission.AGENT_EVENTS,
    Permission.INBOUND_QUEUE_EVENTS,
    Permission.CALLS_VIEW,
    Permission.CALLS_LISTING_VIEW,
]

#: key -> (id, name, permissions, tenant role?): the global roles of CCS 4.2 and the tenant
#: roles of CCS 4.5, with the spec's ids; the agent holds "API" and "US1398 (Voice Help)"
ROLES: dict[str, tuple[str, str, list[Permission], bool]] = {
    "tenant_admin": (
        "az123456-a5f9-488c-9bb6-e947f3f33d2b",
        "Tenant Admin",
        list(Permission),
        False,
    ),
    "telco_admin": ("az123456-9817-4964-86ff-d2c4f11b67d0", "Telco Admin", list(Permission), False),
    "api": ("az123456-ef95-44b7-afc8-54ce4cdb67f1", "API", [Permission.API], False),
    "agent": (
        "az123456-ac4e-4caf-922b-52ef715da6c7",
        "US1398 (Voice Help)",
        AGENT_PERMISSIONS,
        True,
    ),
    "chat": (
        "az123456-c173-43ae-b0f8-139e8eccab5f",
        "US1398 (Chat Help)",
        [Permission.AGENT_CONTROL, Permission.AGENT_EVENTS],
        True,
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
    "Outbound": (  # the outbound queue of the CCS 4.28 example
        "az123456-c0ed-42b7-8e8c-d50c4991828c",
        {"type": QueueType.VOICE_OUTBOUND, "caller_id": "2677318044", "members": []},
    ),
}

#: (id, type, name): CCS 4.7's options with its ids, and the "Lunch Break" of its 4.16 example
PRESENCE_OPTIONS: list[tuple[str, PresenceType, str]] = [
    ("az123456-a751-4bcd-a8d8-8c1c9d48186e", PresenceType.SIGN_OUT, "Holiday In Bahamas"),
    ("az123456-2aa9-4aa3-aa9d-cc8513e95a6d", PresenceType.SIGN_OUT, "Sign Out"),
    ("az123456-6227-4ddc-9204-bd3cb9496e23", PresenceType.AWAY, "Coffee Break"),
    ("az123456-0b1c-4d2e-8f3a-4b5c6d7e8f90", PresenceType.AWAY, "Lunch Break"),
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
    for product_id, name, notes in PRODUCTS:
        if product_id not in d.products:
            await d.create_product(name, notes, product_id=product_id)
            created.append(f"product {name}")

    if TENANT_ID not in d.tenants:
        await d.create_tenant(
            system,
            TENANT_NAME,
            telco_id=TELCO_ID,
            timezone=TENANT_TIMEZONE,
            profile=TENANT_PROFILE,
            tenant_id=TENANT_ID,
        )
        created.append("tenant")
        for product_id in TENANT_PRODUCTS:
            await d.add_product(system, TENANT_ID, product_id)
    elif d.tenants[TENANT_ID].profile == TenantProfile():  # created before tenants had one
        await d.set_profile(system, TENANT_ID, TENANT_PROFILE)
        created.append("tenant profile")
    for role_id, name, permissions, tenant_role in ROLES.values():
        if role_id not in d.roles:
            tenant_id = TENANT_ID if tenant_role else None
            await d.create_role(name, permissions, tenant_id=tenant_id, role_id=role_id)
            created.append(f"role {name}")

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
    for option_id, kind, name in PRESENCE_OPTIONS:
        if name not in existing:
            await d.create_presence_option(system, TENANT_ID, kind, name, option_id=option_id)
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

    role_ids = {key: spec[0] for key, spec in ROLES.items()}
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
        # (#5) the Windstream CCS dialect: send a token as "Authorization: Bearer <token>", and
        # as {"request": "connect", "token": <token>} on the WebSocket
        "ccs": {
            "api": f"{base}/6/v2/api/",
            "sock": _ws_url(base) + "/6/v2/sock",
            "tenant_uuid": TENANT_ID,
            "tokens": {
                "telco_user": tokens.get("telco_admin"),
                "tenant_admin": tokens.get("tenant_admin"),
                "agent": tokens.get("agent"),
            },
        },
    }


def _ws_url(base: str) -> str:
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :]
    if base.startswith("http://"):
        return "ws://" + base[len("http://") :]
    return base


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
