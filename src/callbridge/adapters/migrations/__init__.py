"""Numbered schema migrations of the SQL storage adapters.

Each dialect has a folder of files named ``NNNN_description.sql`` (``0001_initial.sql``, ...).
Versions start at 1 and have no gaps; both dialects always reach :data:`SCHEMA_VERSION`. An
adapter applies, in order, those not yet recorded in its ``schema_migrations`` table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Final, Literal

Dialect = Literal["sqlite", "postgres"]

SCHEMA_VERSION: Final = 2
"""The schema version this code expects (the last migration of every dialect)."""

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(dialect: Dialect) -> list[Migration]:
    """The migrations of ``dialect`` in version order.

    Raises :class:`RuntimeError` when the files are misnamed, duplicated or leave a gap.
    """
    folder = resources.files(__package__).joinpath(dialect)
    found: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _NAME.match(entry.name)
        if match is None:
            raise RuntimeError(f"badly named migration {dialect}/{entry.name}")
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{dialect} migrations must be numbered 1..n without gaps: {versions}")
    return found


def check_not_newer(dialect: Dialect, applied: int) -> None:
    """Refuse a database migrated by a newer callbridge than this one."""
    if applied > SCHEMA_VERSION:
        raise RuntimeError(
            f"{dialect} database is at schema version {applied}, "
            f"newer than this callbridge (version {SCHEMA_VERSION})"
        )
