"""The ``callbridge`` command line.

* ``callbridge serve``: run the server (uvicorn on uvloop + httptools).
* ``callbridge db|telcos|roles|principals|tenants|tokens ...``: administration commands that
  open the storage directly (``--data-dir`` / ``--storage``), change it and close it. A running
  server caches its configuration, so it sees these changes after a restart.
* ``callbridge sim ...``: drive the simulated switch of a running server over HTTP.

Every option of ``serve`` can also be set with an environment variable ``CALLBRIDGE_<OPTION>``.
Logs are JSON lines on stderr (``ts``, ``level``, ``logger``, ``msg``); bearer tokens, ``token=``
query parameters and database passwords are masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click
import httpx
import uvicorn
import uvloop
from pydantic import ValidationError

from . import __version__
from .bootstrap import Container, build
from .demo import CREDENTIALS_FILE, seed_demo, sip_client_host
from .domain.errors import DomainError
from .domain.tenancy import Level, Permission
from .runtime import raise_open_file_limit, tune_gc
from .service.auth import system_actor
from .settings import Settings

log = logging.getLogger("callbridge.cli")

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

LOG_LEVELS = ["critical", "error", "warning", "info", "debug"]
GRACEFUL_SHUTDOWN_S = 5

# --------------------------------------------------------------------------- logging

_SECRETS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?i)\b(bearer)\s+[^\s\"',;]+"), r"\1 ***"),
    (re.compile(r"(?i)\b((?:access_)?token|api[_-]?key|secret|password)=[^&\s\"',;]+"), r"\1=***"),
    (re.compile(r"\bcb_[A-Za-z0-9_\-]{8,}"), "cb_***"),
    (re.compile(r"(://[^:/@\s]+:)[^@\s]+@"), r"\1***@"),
]


def redact(text: str) -> str:
    """``text`` with bearer tokens, ``token=`` values and URL passwords masked."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg`` (and ``exc``)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            stream = sys.stderr
            stream.write(line + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


def configure_logging(level: str) -> None:
    """Send every log record to stderr as a JSON line (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StderrHandler):
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(JsonLinesFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


# --------------------------------------------------------------------------- helpers


def _default(field: str) -> Any:
    return Settings.model_fields[field].default


def _settings(**values: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "combination"
        raise click.UsageError(f"invalid setting {field}: {first['msg']}") from None


def _build(settings: Settings) -> Container:
    try:
        return build(settings)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--storage") from None


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run an admin coroutine; domain errors become a clean CLI error (exit 1)."""
    try:
        return asyncio.run(coro)
    except DomainError as exc:
        raise click.ClickException(f"{exc.message} ({exc.code})") from None


def storage_options(f: F) -> F:
    f = click.option(
        "--storage",
        envvar="CALLBRIDGE_STORAGE",
        show_envvar=True,
        default=_default("storage"),
        show_default=True,
        help="sqlite (a file in the data dir) | memory | sqlite:///FILE | postgresql://...",
    )(f)
    f = click.option(
        "--data-dir",
        envvar="CALLBRIDGE_DATA_DIR",
        show_envvar=True,
        type=click.Path(file_okay=False, path_type=Path),
        default=_default("data_dir"),
        show_default=True,
        help="Directory for the sqlite database and demo-credentials.json.",
    )(f)
    return f


@contextlib.asynccontextmanager
async def _opened(data_dir: Path, storage: str) -> AsyncIterator[Container]:
    """The storage opened (migrations applied) and the directory loaded; no switch, no calls."""
    if storage == "memory":
        raise click.UsageError("--storage memory keeps nothing; use sqlite or postgresql://...")
    container = _build(_settings(data_dir=data_dir, storage=storage))
    await container.core.storage.open()
    try:
        await container.directory.load()
        yield container
    finally:
        await container.core.storage.close()


def _table(rows: list[list[str]], as_json: list[dict[str, Any]] | None = None) -> None:
    if as_json is not None:
        click.echo(json.dumps(as_json, indent=2, default=str))
        return
    for row in rows:
        click.echo("\t".join(row))


def _json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(f)


# --------------------------------------------------------------------------- the group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="callbridge")
def main() -> None:
    """callbridge: a self-hosted contact-center call-control platform."""


# --------------------------------------------------------------------------- serve


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._on_started()


class _Lifecycle:
    """SIGINT/SIGTERM outside uvicorn's own handling: during start-up they cancel it."""

    def __init__(self) -> None:
        self.stop_requested = False
        self.serving = False
        self.task: asyncio.Task[Any] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: uvicorn.Server | None = None

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.serving:
            # uvicorn handles signals while it serves (and re-raises them when done); this is
            # the moment just before it installs its handlers, or that re-raise
            if self.server is not None:
                self.server.should_exit = True
            return
        first = not self.stop_requested
        self.stop_requested = True
        if first and self.task is not None and self.loop is not None:
            self.loop.call_soon_threadsafe(self.task.cancel)


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from None
    sock.set_inheritable(True)
    return sock


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _sip_address(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _client_host(host: str) -> str:
    """An address a local client can connect to for a server bound to ``host``."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


async def _serve(settings: Settings, life: _Lifecycle) -> None:
    life.task = asyncio.current_task()
    life.loop = asyncio.get_running_loop()
    raise_open_file_limit()
    sock = _bind(settings.host, settings.port)
    bound_host, port = sock.getsockname()[:2]
    listen_url = _url(bound_host, port)
    client_url = _url(_client_host(bound_host), port)
    container = _build(settings)
    from .api.native.app import create_app

    app = create_app(container, manage_lifecycle=False)
    config = uvicorn.Config(
        app,
        host=bound_host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_config=None,
        log_level=settings.log_level,
        access_log=True,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        # Event frames are small and sent to many subscribers: deflating each one per
        # connection costs more CPU than it saves bandwidth.
        ws_per_message_deflate=False,
    )
    credentials: Path | None = None
    demo_data: dict[str, Any] = {}

    def started() -> None:
        tune_gc(sip=container.sip is not None)
        click.echo(f"callbridge listening on {listen_url}")
        if container.sip is not None:
            sip_host = _sip_address(settings.sip_public_host or sip_client_host(settings.sip_host))
            click.echo(f"callbridge SIP on udp+tcp {sip_host}:{container.sip.endpoint.port}")
        if credentials is not None:
            click.echo(f"callbridge demo credentials in {credentials}")
        for did in demo_data.get("dids", []):  # (#3) where a trunk's calls go
            click.echo(f"callbridge demo DID {did['number']} -> {did['target']}")
        sip = demo_data.get("sip")
        if isinstance(sip, dict):
            for phone in sip.get("phones", []):
                click.echo(
                    f"callbridge demo phone {phone['extension']}: username {phone['username']}"
                    f" password {phone['password']} realm {sip['realm']}"
                )
        sys.stdout.flush()
        log.info("listening on %s (storage=%s)", listen_url, redact(settings.storage_url()))

    server = _Server(config, started)
    life.server = server
    try:
        try:
            try:
                await container.start()
            except Exception as exc:
                log.exception("start-up failed")
                reason = redact(str(exc)) or type(exc).__name__
                raise click.ClickException(f"cannot start: {reason}") from None
            if settings.demo:
                credentials = (settings.data_dir / CREDENTIALS_FILE).resolve()
                demo_data = await seed_demo(container, client_url, credentials)
            life.serving = True
            if life.stop_requested:
                return
            await server.serve(sockets=[sock])
        finally:
            life.serving = False
            await container.stop()
    finally:
        sock.close()
        log.info("stopped")


@main.command()
@click.option(
    "--host",
    envvar="CALLBRIDGE_HOST",
    show_envvar=True,
    default=_default("host"),
    show_default=True,
    help="Address to listen on.",
)
@click.option(
    "--port",
    envvar="CALLBRIDGE_PORT",
    show_envvar=True,
    type=click.IntRange(0, 65535),
    default=_default("port"),
    show_default=True,
    help="Port to listen on; 0 picks a free one (the listening line shows it).",
)
@storage_options
@click.option(
    "--demo/--no-demo",
    envvar="CALLBRIDGE_DEMO",
    show_envvar=True,
    default=_default("demo"),
    show_default=True,
    help="Create the demo tenant (idempotent) and write DATA_DIR/demo-credentials.json.",
)
@click.option(
    "--bus",
    envvar="CALLBRIDGE_BUS",
    show_envvar=True,
    type=click.Choice(["memory"]),
    default=_default("bus"),
    show_default=True,
    help="Event bus.",
)
@click.option(
    "--switch",
    envvar="CALLBRIDGE_SWITCH",
    show_envvar=True,
    type=click.Choice(["simulated", "sip"]),
    default=_default("switch"),
    show_default=True,
    help="Telephony switch: simulated, or sip (a SIP B2BUA with an embedded RTP engine).",
)
@click.option(
    "--sip-host",
    envvar="CALLBRIDGE_SIP_HOST",
    show_envvar=True,
    default=_default("sip_host"),
    show_default=True,
    help="Address the SIP switch listens on (UDP and TCP) and its RTP ports bind to.",
)
@click.option(
    "--sip-public-host",
    envvar="CALLBRIDGE_SIP_PUBLIC_HOST",
    show_envvar=True,
    default=_default("sip_public_host"),
    show_default=True,
    help="Address peers reach the SIP switch at (Via, Contact, SDP); needed with a 0.0.0.0 host.",
)
@click.option(
    "--sip-port",
    envvar="CALLBRIDGE_SIP_PORT",
    show_envvar=True,
    type=click.IntRange(0, 65535),
    default=_default("sip_port"),
    show_default=True,
    help="SIP port (UDP and TCP); 0 picks a free one (the SIP line shows it).",
)
@click.option(
    "--rtp-port-min",
    envvar="CALLBRIDGE_RTP_PORT_MIN",
    show_envvar=True,
    type=click.IntRange(1, 65535),
    default=_default("rtp_port_min"),
    show_default=True,
    help="Lowest RTP port of the embedded media engine.",
)
@click.option(
    "--rtp-port-max",
    envvar="CALLBRIDGE_RTP_PORT_MAX",
    show_envvar=True,
    type=click.IntRange(1, 65535),
    default=_default("rtp_port_max"),
    show_default=True,
    help="Highest RTP port of the embedded media engine.",
)
@click.option(
    "--sip-trunk",
    envvar="CALLBRIDGE_SIP_TRUNK",
    show_envvar=True,
    default=_default("sip_trunk"),
    show_default=True,
    help="HOST:PORT external numbers are sent to (empty: no trunk).",
)
@click.option(
    "--sim-answer-after",
    envvar="CALLBRIDGE_SIM_ANSWER_AFTER",
    show_envvar=True,
    type=click.FloatRange(min=0),
    default=_default("sim_answer_after"),
    show_default=True,
    help="Seconds a simulated endpoint without a script takes to answer.",
)
@click.option(
    "--log-level",
    envvar="CALLBRIDGE_LOG_LEVEL",
    show_envvar=True,
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default=_default("log_level"),
    show_default=True,
    help="Log level (logs are JSON lines on stderr).",
)
def serve(
    host: str,
    port: int,
    data_dir: Path,
    storage: str,
    demo: bool,
    bus: str,
    switch: str,
    sip_host: str,
    sip_public_host: str,
    sip_port: int,
    rtp_port_min: int,
    rtp_port_max: int,
    sip_trunk: str,
    sim_answer_after: float,
    log_level: str,
) -> None:
    """Run the server.

    It runs until SIGINT or SIGTERM, then shuts down gracefully and exits 0.
    """
    level = log_level.lower()
    configure_logging(level)
    settings = _settings(
        host=host,
        port=port,
        data_dir=data_dir,
        storage=storage,
        demo=demo,
        bus=bus,
        switch=switch,
        sip_host=sip_host,
        sip_public_host=sip_public_host,
        sip_port=sip_port,
        rtp_port_min=rtp_port_min,
        rtp_port_max=rtp_port_max,
        sip_trunk=sip_trunk,
        sim_answer_after=sim_answer_after,
        log_level=level,
    )
    life = _Lifecycle()
    previous = {sig: signal.signal(sig, life.on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_serve(settings, life))
    except asyncio.CancelledError:
        if not life.stop_requested:
            raise
        log.info("stopped during start-up")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# --------------------------------------------------------------------------- db


@main.group()
def db() -> None:
    """The database."""


@db.command()
@storage_options
def migrate(data_dir: Path, storage: str) -> None:
    """Apply pending schema migrations and print the schema version."""
    configure_logging("warning")

    async def go() -> int:
        async with _opened(data_dir, storage) as c:
            return await c.core.storage.schema_version()

    click.echo(f"schema version {_run(go())}")


# --------------------------------------------------------------------------- telcos


@main.group()
def telcos() -> None:
    """Telcos (they own tenants)."""


@telcos.command("create")
@click.argument("name")
@click.option("--id", "telco_id", help="Fixed id (default: a new UUID).")
@storage_options
def telcos_create(name: str, telco_id: str | None, data_dir: Path, storage: str) -> None:
    """Create a telco and print its id."""
    configure_logging("warning")

    async def go() -> str:
        async with _opened(data_dir, storage) as c:
            if telco_id is not None and telco_id in c.directory.telcos:
                raise click.ClickException(f"telco {telco_id} exists")
            return (await c.directory.create_telco(name, telco_id=telco_id)).id

    click.echo(_run(go()))


@telcos.command("list")
@storage_options
@_json_option
def telcos_list(data_dir: Path, storage: str, as_json: bool) -> None:
    """List telcos (id, name)."""
    configure_logging("warning")

    async def go() -> list[dict[str, Any]]:
        async with _opened(data_dir, storage) as c:
            items = sorted(c.directory.telcos.values(), key=lambda t: t.name)
            return [t.model_dump(mode="json") for t in items]

    items = _run(go())
    _table([[t["id"], t["name"]] for t in items], items if as_json else None)


# --------------------------------------------------------------------------- roles


@main.group()
def roles() -> None:
    """Roles (sets of permissions)."""


@roles.command("create")
@click.argument("name")
@click.option(
    "--permission",
    "permissions",
    multiple=True,
    required=True,
    type=click.Choice([p.value for p in Permission] + ["all"], case_sensitive=False),
    help="A permission (repeatable), or 'all'.",
)
@click.option("--tenant", "tenant_id", help="Make it a role of this tenant (default: global).")
@storage_options
def roles_create(
    name: str, permissions: tuple[str, ...], tenant_id: str | None, data_dir: Path, storage: str
) -> None:
    """Create a role and print its id."""
    configure_logging("warning")
    by_lower = {p.value.lower(): p for p in Permission}
    perms = (
        list(Permission)
        if any(p.lower() == "all" for p in permissions)
        else list(dict.fromkeys(by_lower[p.lower()] for p in permissions))
    )

    async def go() -> str:
        async with _opened(data_dir, storage) as c:
            if tenant_id is not None and tenant_id not in c.directory.tenants:
                raise click.ClickException(f"tenant {tenant_id} not found")
            return (await c.directory.create_role(name, perms, tenant_id=tenant_id)).id

    click.echo(_run(go()))


@roles.command("list")
@storage_options
@_json_option
def roles_list(data_dir: Path, storage: str, as_json: bool) -> None:
    """List roles (id, name, tenant or 'global', permissions)."""
    configure_logging("warning")

    async def go() -> list[dict[str, Any]]:
        async with _opened(data_dir, storage) as c:
            items = sorted(c.directory.roles.values(), key=lambda r: (r.tenant_id or "", r.name))
            return [r.model_dump(mode="json") for r in items]

    items = _run(go())
    rows = [
        [r["id"], r["name"], r["tenant_id"] or "global", ",".join(r["permissions"])] for r in items
    ]
    _table(rows, items if as_json else None)


# --------------------------------------------------------------------------- principals


@main.group()
def principals() -> None:
    """API users."""


@principals.command("create")
@click.argument("name")
@click.option(
    "--level", type=click.Choice([lv.value for lv in Level]), required=True, help="Reach."
)
@click.option("--telco", "telco_id", required=True, help="The telco id.")
@click.option("--tenant", "tenant_id", help="The tenant id (required for --level tenant).")
@click.option("--extension", "extension_id", help="An extension id: an agent acting as itself.")
@click.option(
    "--role", "role_refs", multiple=True, help="Role id or global role name (repeatable)."
)
@storage_options
def principals_create(
    name: str,
    level: str,
    telco_id: str,
    tenant_id: str | None,
    extension_id: str | None,
    role_refs: tuple[str, ...],
    data_dir: Path,
    storage: str,
) -> None:
    """Create an API user and print its id (then: callbridge tokens create --principal ID)."""
    configure_logging("warning")
    lvl = Level(level)
    if lvl is Level.TENANT and tenant_id is None:
        raise click.UsageError("--level tenant needs --tenant")

    async def go() -> str:
        async with _opened(data_dir, storage) as c:
            d = c.directory
            if telco_id not in d.telcos:
                raise click.ClickException(f"telco {telco_id} not found")
            if tenant_id is not None:
                tenant = d.tenants.get(tenant_id)
                if tenant is None or tenant.telco_id != telco_id:
                    raise click.ClickException(f"tenant {tenant_id} not found in telco {telco_id}")
            if extension_id is not None:
                ext = d.extensions.get(extension_id)
                if ext is None or ext.tenant_id != tenant_id:
                    raise click.ClickException(f"extension {extension_id} not found in the tenant")
            role_ids = [_role_id(c, ref, tenant_id) for ref in role_refs]
            principal = await d.create_principal(
                name,
                lvl,
                telco_id,
                role_ids,
                tenant_id=tenant_id,
                extension_id=extension_id,
            )
            return principal.id

    click.echo(_run(go()))


def _role_id(c: Container, ref: str, tenant_id: str | None) -> str:
    if ref in c.directory.roles:
        return ref
    matches = [
        r.id
        for r in c.directory.roles.values()
        if r.name == ref and r.tenant_id in (None, tenant_id)
    ]
    if len(matches) != 1:
        problem = "is ambiguous" if matches else "not found"
        raise click.ClickException(f"role {ref!r} {problem}; pass its id")
    return matches[0]


@principals.command("list")
@storage_options
@_json_option
def principals_list(data_dir: Path, storage: str, as_json: bool) -> None:
    """List API users (id, name, level, telco, tenant)."""
    configure_logging("warning")

    async def go() -> list[dict[str, Any]]:
        async with _opened(data_dir, storage) as c:
            items = sorted(c.directory.principals.values(), key=lambda p: p.name)
            return [p.model_dump(mode="json") for p in items]

    items = _run(go())
    rows = [[p["id"], p["name"], p["level"], p["telco_id"], p["tenant_id"] or "-"] for p in items]
    _table(rows, items if as_json else None)


# --------------------------------------------------------------------------- tenants


@main.group()
def tenants() -> None:
    """Tenants."""


@tenants.command("list")
@storage_options
@_json_option
def tenants_list(data_dir: Path, storage: str, as_json: bool) -> None:
    """List tenants (id, name, telco, timezone)."""
    configure_logging("warning")

    async def go() -> list[dict[str, Any]]:
        async with _opened(data_dir, storage) as c:
            items = c.directory.visible_tenants(system_actor())
            return [t.model_dump(mode="json") for t in items]

    items = _run(go())
    rows = [[t["id"], t["name"], t["telco_id"], t["timezone"]] for t in items]
    _table(rows, items if as_json else None)


@tenants.command("create")
@click.argument("name")
@click.option("--telco", "telco_id", required=True, help="The owning telco's id.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone.")
@storage_options
def tenants_create(name: str, telco_id: str, timezone: str, data_dir: Path, storage: str) -> None:
    """Create a tenant and print its id."""
    configure_logging("warning")

    async def go() -> str:
        async with _opened(data_dir, storage) as c:
            tenant = await c.directory.create_tenant(
                system_actor(), name, telco_id=telco_id, timezone=timezone
            )
            return tenant.id

    click.echo(_run(go()))


# --------------------------------------------------------------------------- tokens


@main.group()
def tokens() -> None:
    """API tokens (shown once, when created: only their hash is stored)."""


@tokens.command("create")
@click.option("--principal", "principal_id", required=True, help="The API user's id.")
@click.option("--name", default="", help="A label for the token.")
@storage_options
def tokens_create(principal_id: str, name: str, data_dir: Path, storage: str) -> None:
    """Issue a token and print it (once; it cannot be shown again)."""
    configure_logging("warning")

    async def go() -> tuple[str, str]:
        async with _opened(data_dir, storage) as c:
            token, secret = await c.directory.issue_token(principal_id, name=name)
            return token.id, secret

    token_id, secret = _run(go())
    click.echo(secret)
    click.echo(f"token id {token_id} (revoke with: callbridge tokens revoke {token_id})", err=True)


@tokens.command("revoke")
@click.argument("token_id")
@storage_options
def tokens_revoke(token_id: str, data_dir: Path, storage: str) -> None:
    """Revoke a token by its id."""
    configure_logging("warning")

    async def go() -> None:
        async with _opened(data_dir, storage) as c:
            await c.directory.revoke_token(token_id)

    _run(go())
    click.echo(f"revoked {token_id}")


@tokens.command("list")
@storage_options
@_json_option
def tokens_list(data_dir: Path, storage: str, as_json: bool) -> None:
    """List tokens (id, principal, name, created, revoked); never the secrets."""
    configure_logging("warning")

    async def go() -> list[dict[str, Any]]:
        async with _opened(data_dir, storage) as c:
            items = sorted(c.directory.tokens.values(), key=lambda t: t.created_at)
            return [t.model_dump(mode="json", exclude={"secret_hash"}) for t in items]

    items = _run(go())
    rows = [
        [t["id"], t["principal_id"], t["name"] or "-", t["created_at"], str(t["revoked"]).lower()]
        for t in items
    ]
    _table(rows, items if as_json else None)


# --------------------------------------------------------------------------- sim (HTTP)


class Api:
    """A tiny client of a running server's native API."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=10.0
        )

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = self.client.request(method, "/api/v1" + path, json=body)
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach {self.url}: {exc}") from None
        if response.is_success:
            return response.json() if response.content else None
        raise click.ClickException(_error_message(response))


def _error_message(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        text = f"{error['message']} ({error['code']}, HTTP {response.status_code})"
    except (ValueError, KeyError, TypeError):
        text = f"HTTP {response.status_code}: {response.text[:500]}"
    return f"the server refused: {text}"


def api_options(f: F) -> F:
    f = click.option(
        "--data-dir",
        envvar="CALLBRIDGE_DATA_DIR",
        show_envvar=True,
        type=click.Path(file_okay=False, path_type=Path),
        default=_default("data_dir"),
        show_default=True,
        help="Where to find demo-credentials.json when --url/--token are not given.",
    )(f)
    f = click.option(
        "--token",
        envvar="CALLBRIDGE_TOKEN",
        show_envvar=True,
        help="Bearer token (default: the demo tenant admin's).",
    )(f)
    f = click.option(
        "--url",
        envvar="CALLBRIDGE_URL",
        show_envvar=True,
        help="Server base URL (default: the demo credentials' base_url).",
    )(f)
    return f


def _api(url: str | None, token: str | None, data_dir: Path) -> Api:
    if url is None or token is None:
        path = data_dir / CREDENTIALS_FILE
        try:
            creds = json.loads(path.read_text(encoding="utf-8"))
            url = url or str(creds["base_url"])
            token = token or str(creds["tokens"]["tenant_admin"])
        except (OSError, ValueError, KeyError, TypeError):
            raise click.UsageError(
                f"pass --url and --token (no usable {path} to take them from)"
            ) from None
    return Api(url, token)


@main.group()
def sim() -> None:
    """Drive the simulated switch of a running server (over HTTP)."""


@sim.command("call")
@api_options
@click.option("--tenant", "tenant_id", help="Tenant id (default: the token's own tenant).")
@click.option("--from", "from_number", required=True, help="The external number calling.")
@click.option("--to", "to_number", required=True, help="An extension or queue extension.")
def sim_call(
    url: str | None,
    token: str | None,
    data_dir: Path,
    tenant_id: str | None,
    from_number: str,
    to_number: str,
) -> None:
    """Place an inbound call and print its call id."""
    with _api(url, token, data_dir) as api:
        if tenant_id is None:
            tenant_id = api.call("GET", "/me").get("tenant_id")
            if not tenant_id:
                raise click.UsageError("the token is not a tenant's; pass --tenant")
        started = api.call(
            "POST", f"/tenants/{tenant_id}/sim/calls", {"from": from_number, "to": to_number}
        )
    click.echo(started["call_id"])


@sim.group()
def endpoint() -> None:
    """Scripts saying how simulated numbers behave when dialled."""


@endpoint.command("set")
@api_options
@click.argument("number")
@click.option(
    "--behaviour",
    type=click.Choice(["answer", "busy", "no_answer", "reject", "fail"]),
    default="answer",
    show_default=True,
)
@click.option("--answer-after", type=click.FloatRange(min=0), help="Seconds until the outcome.")
@click.option("--hangup-after", type=click.FloatRange(min=0), help="Hang up S s after answering.")
@click.option("--dtmf", help="Digits sent after answering.")
def endpoint_set(
    url: str | None,
    token: str | None,
    data_dir: Path,
    number: str,
    behaviour: str,
    answer_after: float | None,
    hangup_after: float | None,
    dtmf: str | None,
) -> None:
    """Script NUMBER."""
    body: dict[str, Any] = {"behaviour": behaviour}
    for key, value in (
        ("answer_after", answer_after),
        ("hangup_after", hangup_after),
        ("dtmf", dtmf),
    ):
        if value is not None:
            body[key] = value
    with _api(url, token, data_dir) as api:
        script = api.call("PUT", f"/sim/endpoints/{number}", body)
    click.echo(f"{number}\t{_describe(script)}")


@endpoint.command("clear")
@api_options
@click.argument("number")
def endpoint_clear(url: str | None, token: str | None, data_dir: Path, number: str) -> None:
    """Back to the default behaviour for NUMBER."""
    with _api(url, token, data_dir) as api:
        api.call("DELETE", f"/sim/endpoints/{number}")
    click.echo(f"{number}\tdefault")


@endpoint.command("list")
@api_options
def endpoint_list(url: str | None, token: str | None, data_dir: Path) -> None:
    """The scripted numbers."""
    with _api(url, token, data_dir) as api:
        scripts: dict[str, Any] = api.call("GET", "/sim/endpoints")
    for number, script in sorted(scripts.items()):
        click.echo(f"{number}\t{_describe(script)}")


def _describe(script: dict[str, Any]) -> str:
    defaults: dict[str, Any] = {"ring": True, "dtmf_after": 0.0}
    extras = " ".join(
        f"{k}={v}"
        for k, v in script.items()
        if k != "behaviour" and v is not None and (k not in defaults or v != defaults[k])
    )
    return f"{script.get('behaviour', '?')} {extras}".strip()


if __name__ == "__main__":
    main()
