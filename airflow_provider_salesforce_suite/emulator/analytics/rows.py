"""Dataset version rows: one SQLite table per dataset version, in the analytics service's own DB.

Kept apart from the org store: dataset rows are not sObjects, and a million uploaded rows must
not slow down or lock the store's tables.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from .saql import CompiledQuery

#: Rows per executemany.
CHUNK_ROWS = 5000


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class RowStore:
    """Tables of dataset versions (``ds_<versionId>``), typed TEXT or REAL per column."""

    def __init__(self) -> None:
        self._conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA synchronous=OFF")
        self._lock = threading.RLock()

    @staticmethod
    def table(version_id: str) -> str:
        """The table name of a version.

        :param version_id: the ``0Fc`` id.
        """
        return f"ds_{version_id}"

    def create(self, version_id: str, columns: dict[str, str], unique: str | None = None,
               copy_from: str | None = None) -> None:
        """Create a version's table, optionally starting with another version's rows.

        :param version_id: the new version.
        :param columns: column -> ``string``/``numeric``.
        :param unique: a column with a unique index (Upsert/Delete by ``isUniqueId``).
        :param copy_from: version whose rows the new one starts with (Append/Upsert/Delete).
        """
        cols = ", ".join(f"{_q(c)} {'REAL' if t == 'numeric' else 'TEXT'}" for c, t in columns.items())
        table = _q(self.table(version_id))
        with self._lock:
            self._conn.execute(f"CREATE TABLE {table} ({cols})")
            if unique:
                self._conn.execute(f"CREATE UNIQUE INDEX {_q('u_' + version_id)} ON {table} ({_q(unique)})")
            if copy_from:
                names = ", ".join(_q(c) for c in columns)
                self._conn.execute(f"INSERT OR REPLACE INTO {table} ({names}) "
                                   f"SELECT {names} FROM {_q(self.table(copy_from))}")

    def insert(self, version_id: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
               replace: bool = False) -> None:
        """Insert (or upsert on the unique index) rows.

        :param version_id: the version.
        :param columns: the columns the rows give.
        :param rows: the rows.
        :param replace: replace rows with the same unique id.
        """
        sql = (f"INSERT {'OR REPLACE ' if replace else ''}INTO {_q(self.table(version_id))} "
               f"({', '.join(_q(c) for c in columns)}) VALUES ({', '.join('?' * len(columns))})")
        with self._lock:
            self._conn.execute("BEGIN")
            self._conn.executemany(sql, rows)
            self._conn.execute("COMMIT")

    def delete_keys(self, version_id: str, column: str, keys: Iterable[Any]) -> None:
        """Delete the rows whose ``column`` is one of ``keys``.

        :param version_id: the version.
        :param column: the unique id column.
        :param keys: the values.
        """
        with self._lock:
            self._conn.executemany(f"DELETE FROM {_q(self.table(version_id))} WHERE {_q(column)} = ?",
                                   ((k,) for k in keys))

    def count(self, version_id: str) -> int:
        """Rows of a version.

        :param version_id: the version.
        """
        with self._lock:
            return self._conn.execute(f"SELECT COUNT(*) FROM {_q(self.table(version_id))}").fetchone()[0]

    def run(self, query: CompiledQuery, max_rows: int) -> list[dict[str, Any]]:
        """Run a compiled SAQL query.

        :param query: the compiled query.
        :param max_rows: cap on the rows returned.
        """
        with self._lock:
            cursor = self._conn.execute(query.sql, query.params)
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchmany(max_rows)
        return [{n: _value(v) for n, v in zip(names, row)} for row in rows]

    def drop_all(self) -> None:
        """Drop every table (emulator reset)."""
        with self._lock:
            tables = [r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for name in tables:
                self._conn.execute(f"DROP TABLE {_q(name)}")

    def close(self) -> None:
        """Close the database."""
        self._conn.close()


def _value(value: Any) -> Any:
    # Wave answers measures as numbers; whole numbers come back without a fraction.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
