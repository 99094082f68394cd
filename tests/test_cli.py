"""The administration commands of the CLI, run in-process on a temporary sqlite data dir."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from callbridge.bootstrap import build
from callbridge.cli import main, redact
from callbridge.domain.errors import Unauthenticated
from callbridge.settings import Settings


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The commands configure the root logger; put it back for the other tests."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[CliRunner]:
    yield CliRunner(env={"CALLBRIDGE_DATA_DIR": str(tmp_path / "data"), "CALLBRIDGE_STORAGE": None})


def run(cli: CliRunner, *args: str) -> Result:
    return cli.invoke(main, list(args), catch_exceptions=False)


def ok(cli: CliRunner, *args: str) -> str:
    result = run(cli, *args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout.strip()


def test_db_migrate_prints_the_schema_version(cli: CliRunner, tmp_path: Path) -> None:
    out = ok(cli, "db", "migrate")
    assert out.startswith("schema version ")
    version = int(out.removeprefix("schema version "))
    assert version >= 1
    assert (tmp_path / "data" / "callbridge.db").exists()
    assert ok(cli, "db", "migrate") == out  # idempotent


def test_db_migrate_with_an_explicit_sqlite_file(cli: CliRunner, tmp_path: Path) -> None:
    db = tmp_path / "elsewhere.db"
    out = ok(cli, "db", "migrate", "--storage", f"sqlite:///{db}")
    assert out.startswith("schema version ")
    assert db.exists()


def test_unknown_storage_is_a_usage_error(cli: CliRunner) -> None:
    result = run(cli, "db", "migrate", "--storage", "mongodb://x")
    assert result.exit_code == 2
    assert "unknown storage" in result.stderr


def _setup(cli: CliRunner) -> tuple[str, str, str]:
    telco = ok(cli, "telcos", "create", "Telco One")
    role = ok(cli, "roles", "create", "Admin", "--permission", "all")
    assert role in ok(cli, "roles", "list")
    tenant = ok(cli, "tenants", "create", "Acme", "--telco", telco, "--timezone", "Europe/Paris")
    principal = ok(
        cli,
        "principals",
        "create",
        "acme-admin",
        "--level",
        "tenant",
        "--telco",
        telco,
        "--tenant",
        tenant,
        "--role",
        "Admin",
    )
    return telco, tenant, principal


def test_tenants_create_and_list(cli: CliRunner) -> None:
    telco, tenant, _ = _setup(cli)
    ok(cli, "tenants", "create", "Beta", "--telco", telco)
    lines = ok(cli, "tenants", "list").splitlines()
    assert len(lines) == 2
    assert lines[0].split("\t") == [tenant, "Acme", telco, "Europe/Paris"]
    assert lines[1].split("\t")[1] == "Beta"
    items = json.loads(ok(cli, "tenants", "list", "--json"))
    assert [t["name"] for t in items] == ["Acme", "Beta"]


def test_tenants_list_when_empty(cli: CliRunner) -> None:
    assert ok(cli, "tenants", "list") == ""


def test_tenants_create_twice_fails_cleanly(cli: CliRunner) -> None:
    telco, _, _ = _setup(cli)
    result = run(cli, "tenants", "create", "Acme", "--telco", telco)
    assert result.exit_code == 1
    assert "tenant_exists" in result.stderr


def test_tenants_create_for_an_unknown_telco(cli: CliRunner) -> None:
    result = run(cli, "tenants", "create", "Acme", "--telco", "nope")
    assert result.exit_code == 1
    assert "telco_not_found" in result.stderr


async def _authenticate(data_dir: Path, secret: str) -> str:
    c = build(Settings(data_dir=data_dir))
    await c.core.storage.open()
    try:
        await c.directory.load()
        return c.directory.authenticate(secret).principal.id
    finally:
        await c.core.storage.close()


def test_tokens_create_prints_a_working_token_once_and_revoke(
    cli: CliRunner, tmp_path: Path
) -> None:
    _, _, principal = _setup(cli)
    result = run(cli, "tokens", "create", "--principal", principal, "--name", "ci")
    assert result.exit_code == 0, result.stderr
    secret = result.stdout.strip()
    assert secret.startswith("cb_") and "\n" not in secret
    token_id = result.stderr.split()[2]

    data = tmp_path / "data"
    assert asyncio.run(_authenticate(data, secret)) == principal
    listing = ok(cli, "tokens", "list")
    assert token_id in listing and secret not in listing
    assert secret not in (data / "callbridge.db").read_bytes().decode("latin-1")

    assert ok(cli, "tokens", "revoke", token_id) == f"revoked {token_id}"
    with pytest.raises(Unauthenticated):
        asyncio.run(_authenticate(data, secret))


def test_tokens_create_for_an_unknown_principal(cli: CliRunner) -> None:
    ok(cli, "db", "migrate")
    result = run(cli, "tokens", "create", "--principal", "nobody")
    assert result.exit_code == 1
    assert "principal_not_found" in result.stderr
    assert result.stdout == ""


def test_tokens_revoke_an_unknown_token(cli: CliRunner) -> None:
    result = run(cli, "tokens", "revoke", "nope")
    assert result.exit_code == 1
    assert "token_not_found" in result.stderr


def test_principals_need_a_tenant_at_tenant_level(cli: CliRunner) -> None:
    telco = ok(cli, "telcos", "create", "T")
    result = run(cli, "principals", "create", "x", "--level", "tenant", "--telco", telco)
    assert result.exit_code == 2
    assert "--tenant" in result.stderr


def test_memory_storage_is_refused_for_admin_commands(cli: CliRunner) -> None:
    result = run(cli, "tenants", "list", "--storage", "memory")
    assert result.exit_code == 2
    assert "memory" in result.stderr


def test_sim_commands_without_credentials_say_what_is_missing(cli: CliRunner) -> None:
    result = run(cli, "sim", "endpoint", "list")
    assert result.exit_code == 2
    assert "--token" in result.stderr


def test_sim_commands_report_an_unreachable_server(cli: CliRunner) -> None:
    result = run(cli, "sim", "endpoint", "list", "--url", "http://127.0.0.1:1", "--token", "x")
    assert result.exit_code == 1
    assert "cannot reach http://127.0.0.1:1" in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer cb_abcdefghijklmnop", "Authorization: Bearer ***"),
        ('"GET /api/v1/t/x/events/ws?token=cb_secret123&after=3"', "?token=***&after=3"),
        ("issued cb_0123456789abcdef", "issued cb_***"),
        ("postgresql://app:hunter2@db:5432/cb", "postgresql://app:***@db:5432/cb"),
    ],
)
def test_log_redaction(text: str, expected: str) -> None:
    assert expected in redact(text)
    assert "hunter2" not in redact(text) and "cb_abc" not in redact(text)
