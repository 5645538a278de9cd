"""Salesforce-style SOQL error messages with the offending row and column."""

from __future__ import annotations

from ..errors import SalesforceApiError


def positioned(soql: str, line: int, column: int, message: str) -> str:
    """Salesforce's message layout: the query line, a caret, ``ERROR at Row:R:Column:C``, the message.

    :param soql: the query text.
    :param line: 1-based row.
    :param column: 1-based column.
    :param message: the explanation.
    """
    lines = soql.split("\n")
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    return f"\n{text}\n{' ' * max(column - 1, 0)}^\nERROR at Row:{line}:Column:{column}\n{message}"


def soql_error(code: str, soql: str, line: int, column: int, message: str) -> SalesforceApiError:
    """A 400 SalesforceApiError with a positioned message.

    :param code: ``MALFORMED_QUERY``, ``INVALID_FIELD``, ``INVALID_TYPE`` ...
    :param soql: the query text.
    :param line: 1-based row.
    :param column: 1-based column.
    :param message: the explanation.
    """
    return SalesforceApiError(code, positioned(soql, line, column, message))
