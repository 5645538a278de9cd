"""Query locators: materialized results of queries that did not fit in one page.

A query's rows are materialized once; each ``queryMore`` slices the next page, so paging through
n rows costs O(n) in total. Like Salesforce, a locator expires after 15 idle minutes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .. import ids
from ..errors import SalesforceApiError

IDLE_TIMEOUT = 15 * 60.0
MAX_OPEN = 50  # oldest locators are dropped beyond this, as Salesforce limits open cursors


@dataclass
class Cursor:
    """An open query locator.

    :param locator: the locator id (``01g...``).
    :param plan: the compiled query (shapes each page).
    :param rows: all result rows.
    :param batch_size: page size.
    :param last_used: monotonic time of the last access.
    """

    locator: str
    plan: Any
    rows: list
    batch_size: int
    last_used: float


class CursorRegistry:
    """Open query locators by id.

    :param id_generator: makes the ``01g`` locator ids.
    """

    def __init__(self, id_generator: ids.IdGenerator, clock: Any = time.monotonic) -> None:
        self._ids = id_generator
        self._clock = clock
        self._cursors: dict[str, Cursor] = {}

    def open(self, plan: Any, rows: list, batch_size: int) -> str:
        """Register a result; returns the locator of its second page (``01g...-<batch_size>``).

        :param plan: the compiled query.
        :param rows: all result rows.
        :param batch_size: page size.
        """
        self._expire()
        locator = self._ids.new_id("01g")
        self._cursors[locator] = Cursor(locator, plan, rows, batch_size, self._clock())
        while len(self._cursors) > MAX_OPEN:
            self._cursors.pop(next(iter(self._cursors)))
        return f"{locator}-{batch_size}"

    def get(self, locator: str) -> tuple[Cursor, int]:
        """The cursor and start row of a locator, or INVALID_QUERY_LOCATOR.

        :param locator: ``01g...-<start>``.
        """
        self._expire()
        base, _, start = locator.partition("-")
        cursor = self._cursors.get(base)
        if cursor is None or not start.isdigit() or int(start) > len(cursor.rows):
            raise SalesforceApiError("INVALID_QUERY_LOCATOR", "invalid query locator")
        cursor.last_used = self._clock()
        return cursor, int(start)

    def close(self, locator: str) -> None:
        """Forget a locator.

        :param locator: ``01g...-<start>`` or the bare id.
        """
        self._cursors.pop(locator.partition("-")[0], None)

    def clear(self) -> None:
        """Forget every locator."""
        self._cursors.clear()

    def _expire(self) -> None:
        now = self._clock()
        for key in [k for k, c in self._cursors.items() if now - c.last_used > IDLE_TIMEOUT]:
            del self._cursors[key]
