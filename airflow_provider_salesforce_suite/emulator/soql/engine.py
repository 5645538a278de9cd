"""The SOQL entry point: text -> AST (lark) -> compiled plan."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from ..metadata.model import Metadata
from .compiler import Compiler
from .parser import parse
from .plan import Plan


def _utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


class QueryEngine:
    """Compiles SOQL for one org's metadata.

    :param metadata: the org's metadata.
    :param today: returns today's UTC date (relative date literals); tests may pin it.
    """

    def __init__(self, metadata: Metadata, today: Callable[[], dt.date] = _utc_today) -> None:
        self.metadata = metadata
        self.today = today

    def compile(self, soql: str, *, include_deleted: bool = False) -> Plan:
        """Parse and compile a query.

        :param soql: the query text.
        :param include_deleted: include recycle-bin rows (queryAll).
        """
        query = parse(soql)
        return Compiler(self.metadata, soql, include_deleted, self.today()).compile(query)
