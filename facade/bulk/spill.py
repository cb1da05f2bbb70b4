"""The job's lookup spill: practice lists an export joins in, kept on disk, not in memory.

Some listings need other practice lists to turn a record into resources (a lab result needs
its order, for the patient; a clinical note needs its appointment). Those lists are read
once per export, page by page, into a SQLite file in the job's directory; joins then look
records up by a field through an index built on first use. No practice list is held in
memory, and every vendor page is fetched once: a listing that another listing also
joins in is filled into the spill, then replayed from it.

Each page's records and the list's progress (the next vendor URL) are committed together, so
a crash resumes the fill at the page after the last committed one, with nothing twice. The
file is scratch: owner-only, never served (its name starts with a dot), deleted with the job.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import orjson

from facade.core.mapping import Record
from facade.store.private_files import SQLITE_COMPANIONS, create_private, sqlite_files, tighten

FILE_NAME = ".lookups.sqlite"
#: Field names a join may look records up by (they become index expressions).
_FIELD = re.compile(r"^[a-z_][a-z0-9_]*$")
#: Distinct lookups remembered between records (consecutive records share orders, patients).
_MEMO_SIZE = 256


def list_name(
    endpoint: str, params: dict[str, str] | None = None, paging: frozenset[str] = frozenset()
) -> str:
    """A list's identity: endpoint and its parameters (the vendor's `paging` ones aside:
    its Wire's `paging_params`), sorted."""
    query = sorted((k, v) for k, v in (params or {}).items() if k not in paging)
    return f"{endpoint}?{urlencode(query)}" if query else endpoint


def parse_list_name(name: str) -> tuple[str, dict[str, str]]:
    endpoint, _, query = name.partition("?")
    return endpoint, dict(parse_qsl(query))


@functools.lru_cache(maxsize=256)
def canonical(name: str, paging: frozenset[str] = frozenset()) -> str:
    """The same list, however its name's parameters are ordered."""
    return list_name(*parse_list_name(name), paging)


class LookupSpill:
    """Practice lists by name, on disk; implements the joins' LookupTables."""

    def __init__(self, directory: Path, paging: frozenset[str] = frozenset()):
        self.path = directory / FILE_NAME
        #: The vendor's paging parameters, which a list's name leaves out.
        self._paging = paging
        # Made 0600 before SQLite opens it: SQLite gives -wal and -shm the database's mode.
        create_private(self.path)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        for path in sqlite_files(self.path):
            tighten(path)
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS record (
                list TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL,
                PRIMARY KEY (list, seq)
            );
            CREATE TABLE IF NOT EXISTS fill (
                list TEXT PRIMARY KEY, next_url TEXT, done INTEGER NOT NULL, count INTEGER NOT NULL
            );
            """
        )
        self._indexed: set[str] = set()
        self._memo: dict[tuple[str, str, str], list[Record]] = {}

    # -- filling -------------------------------------------------------------------------

    def progress(self, name: str) -> tuple[str | None, bool, int] | None:
        """(next URL, done, records so far) of a list being filled, or None if not started."""
        name = canonical(name, self._paging)
        row = self._db.execute(
            "SELECT next_url, done, count FROM fill WHERE list = ?", (name,)
        ).fetchone()
        return (row[0], bool(row[1]), int(row[2])) if row else None

    def add_page(self, name: str, records: list[Record], next_url: str | None) -> None:
        """One vendor page and the list's progress, in one transaction."""
        name = canonical(name, self._paging)
        found = self.progress(name)
        count = found[2] if found else 0
        with self._transaction():
            self._db.executemany(
                "INSERT INTO record (list, seq, body) VALUES (?, ?, ?)",
                (
                    (name, count + i, orjson.dumps(record).decode())
                    for i, record in enumerate(records)
                ),
            )
            self._db.execute(
                "INSERT INTO fill (list, next_url, done, count) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (list) DO UPDATE SET next_url = excluded.next_url, "
                "done = excluded.done, count = excluded.count",
                (name, next_url, int(next_url is None), count + len(records)),
            )
        self._memo.clear()

    # -- reading -------------------------------------------------------------------------

    def records(self, name: str, start: int, limit: int) -> list[Record]:
        """Records `start` to `start + limit` of a list, in the vendor's order."""
        name = canonical(name, self._paging)
        rows = self._db.execute(
            "SELECT body FROM record WHERE list = ? AND seq >= ? ORDER BY seq LIMIT ?",
            (name, start, limit),
        )
        return [orjson.loads(body) for (body,) in rows]

    def find(self, name: str, field: str, value: object) -> list[Record]:
        """The records of list `name` whose `field` equals `value` (compared as text)."""
        name = canonical(name, self._paging)
        key = (name, field, str(value))
        found = self._memo.get(key)
        if found is not None:
            return found
        expression = self._index(field)
        rows = self._db.execute(
            f"SELECT body FROM record WHERE list = ? AND {expression} = ? ORDER BY seq",
            (name, str(value)),
        )
        found = [orjson.loads(body) for (body,) in rows]
        if len(self._memo) >= _MEMO_SIZE:
            self._memo.clear()
        self._memo[key] = found
        return found

    def one(self, name: str, record_id: object) -> Record | None:
        """The record of list `name` with id `record_id`, or None."""
        found = self.find(name, "id", record_id)
        return found[0] if found else None

    def close(self) -> None:
        self._db.close()

    def delete(self) -> None:
        self.close()
        for suffix in ("", *SQLITE_COMPANIONS):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    # -- internals -----------------------------------------------------------------------

    def _index(self, field: str) -> str:
        """The SQL expression for `field`, with an index on it (built once per field)."""
        if not _FIELD.match(field):
            raise ValueError(f"not a lookup field: {field!r}")
        expression = f"CAST(json_extract(body, '$.{field}') AS TEXT)"
        if field not in self._indexed:
            self._db.execute(
                f"CREATE INDEX IF NOT EXISTS ix_{field} ON record (list, {expression}, seq)"
            )
            self._indexed.add(field)
        return expression

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
