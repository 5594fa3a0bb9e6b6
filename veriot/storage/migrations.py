"""Schema migrations: numbered .sql files applied in order, recorded in schema_migrations.

Each backend keeps its files in `veriot/storage/<backend>/migrations/NNNN_name.sql`. The
numbers run 1, 2, 3, ... without gaps; a store applies, at open, every file whose number
is not yet in its `schema_migrations` table, each in its own transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from veriot.core.errors import StoreError

_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql\Z")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(package: str) -> list[Migration]:
    """The migrations shipped in `<package>.migrations`, in order. Raises StoreError when a
    file is misnamed or the numbers have a gap."""
    found: list[Migration] = []
    for entry in resources.files(package).joinpath("migrations").iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE.match(entry.name)
        if match is None:
            raise StoreError(f"migration file {entry.name!r} is not named NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise StoreError(f"migrations of {package} are numbered {versions}; want 1..{len(found)}")
    return found


def check_newest(newest: int | None, known: int) -> None:
    """Raises StoreError when the database's newest applied migration (None when there is
    none) is one this code, which knows migrations 1..`known`, does not."""
    if newest is not None and newest > known:
        raise StoreError(
            f"database schema is at migration {newest}; this veriot knows up to {known}"
        )
