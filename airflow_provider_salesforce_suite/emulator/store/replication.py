"""Replication helpers for ``getUpdated``/``getDeleted`` (REST and SOAP): changed ids in a
time window and the earliest date anything can have been purged."""

from __future__ import annotations

import datetime as dt

from ..metadata.validation import format_datetime
from .core import StoreBase, _q


class Replication(StoreBase):
    """Which records changed or were deleted when."""

    def changed_ids(self, sobject: str, start: dt.datetime, end: dt.datetime, *, deleted: bool) -> list[tuple[str, str]]:
        """``(id, SystemModstamp)`` of records changed (or deleted) in ``[start, end)``, oldest first.

        :param sobject: object name.
        :param start: window start (aware).
        :param end: window end (aware).
        :param deleted: deleted records instead of live ones.
        """
        obj = self.metadata.require(sobject)
        with self._lock:
            return [tuple(r) for r in self._conn.execute(
                f'SELECT "Id", "SystemModstamp" FROM {_q(obj.name)} WHERE "IsDeleted" = ? '
                'AND "SystemModstamp" >= ? AND "SystemModstamp" < ? ORDER BY "SystemModstamp", "Id"',
                (1 if deleted else 0, format_datetime(start), format_datetime(end)))]

    def org_created_date(self) -> str:
        """When the org's data was (re)seeded: nothing is purged before it."""
        with self._lock:
            row = self._conn.execute(f'SELECT "CreatedDate" FROM {_q("Organization")} LIMIT 1').fetchone()
        return row[0] if row else self._now()
