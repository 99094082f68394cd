"""Fixtures that run the storage contract against every adapter.

``backend`` describes one database (memory, a SQLite file, a private PostgreSQL schema) and can
build any number of adapters on it; ``storage`` is an open adapter on a fresh backend. The
``sqlite-reopen`` variant closes the database and opens a new adapter on the same file after every
write, so each contract test also proves that a restart loses nothing.

PostgreSQL comes from ``DATABASE_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
Each test gets its own schema, dropped afterwards. When no server answers the PostgreSQL tests
are skipped, or fail when the ``CI`` environment variable is set.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from callbridge.adapters.storage_memory import MemoryStorage
from callbridge.adapters.storage_postgres import PostgresStorage
from callbridge.adapters.storage_sqlite import SqliteStorage
from callbridge.ports.storage import Storage

PG_DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"

STORAGE_KINDS = [
    "memory",
    "sqlite",
    "sqlite-reopen",
    pytest.param("postgres", marks=pytest.mark.postgres),
]

_pg_problem: list[str | None] = []  # cached outcome of the reachability probe


def postgres_dsn() -> str:
    return os.environ.get("DATABASE_URL") or PG_DEFAULT_DSN


async def require_postgres() -> str:
    """The server DSN, or skip (fail under CI) when nothing answers there."""
    dsn = postgres_dsn()
    if not _pg_problem:
        try:
            conn = await psycopg.AsyncConnection.connect(dsn, connect_timeout=3)
        except psycopg.OperationalError as exc:
            _pg_problem.append(f"PostgreSQL not reachable at {dsn}: {exc}".strip())
        else:
            await conn.close()
            _pg_problem.append(None)
    problem = _pg_problem[0]
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    return dsn


@contextlib.asynccontextmanager
async def postgres_schema() -> AsyncIterator[str]:
    """A DSN whose ``search_path`` is a new private schema, dropped on exit."""
    dsn = await require_postgres()
    schema = f"cb_test_{uuid.uuid4().hex[:16]}"
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as admin:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield make_conninfo(dsn, options=f"-csearch_path={schema}")
        finally:
            await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@dataclass
class Backend:
    """One database and the way to build adapters on it."""

    name: str
    make: Callable[[], Storage]
    applied_versions: Callable[[], Awaitable[list[int]]] | None = None  # schema_migrations


class ReopeningStorage:
    """A SQLite adapter that is closed and reopened on the same file after every write."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._inner = SqliteStorage(path)

    async def _reopen(self) -> None:
        await self._inner.close()
        self._inner = SqliteStorage(self._path)
        await self._inner.open()

    async def open(self) -> None:
        await self._inner.open()

    async def close(self) -> None:
        await self._inner.close()

    async def commit(self, batch: Any) -> Any:
        try:
            return await self._inner.commit(batch)
        finally:
            await self._reopen()

    async def put_idempotency(self, record: Any) -> bool:
        try:
            return await self._inner.put_idempotency(record)
        finally:
            await self._reopen()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _sqlite_versions(path: Path) -> Callable[[], Awaitable[list[int]]]:
    async def versions() -> list[int]:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version")
            return [int(row[0]) for row in rows]

    return versions


def _postgres_versions(dsn: str) -> Callable[[], Awaitable[list[int]]]:
    async def versions() -> list[int]:
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            cur = await conn.execute("SELECT version FROM schema_migrations ORDER BY version")
            return [int(row[0]) for row in await cur.fetchall()]

    return versions


@pytest.fixture(params=STORAGE_KINDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    name: str = request.param
    if name == "memory":
        memory = MemoryStorage()
        yield Backend(name, lambda: memory)
    elif name in ("sqlite", "sqlite-reopen"):
        path = tmp_path / "callbridge.db"
        kind = ReopeningStorage if name == "sqlite-reopen" else SqliteStorage
        yield Backend(name, lambda: kind(str(path)), _sqlite_versions(path))
    else:
        async with postgres_schema() as dsn:
            yield Backend(name, lambda: PostgresStorage(dsn), _postgres_versions(dsn))


@pytest.fixture
async def postgres_schema_dsn() -> AsyncIterator[str]:
    """A DSN on a private, empty schema of the test server."""
    async with postgres_schema() as dsn:
        yield dsn


@pytest.fixture
async def storage(backend: Backend) -> AsyncIterator[Storage]:
    store = backend.make()
    await store.open()
    try:
        yield store
    finally:
        await store.close()
