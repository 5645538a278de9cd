"""CSV as the Bulk APIs read and write it: delimiters, line endings, BOM, Salesforce's quoting."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

#: ``columnDelimiter`` values -> the character.
DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
#: ``lineEnding`` values -> the characters.
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
#: A CSV cell that sets a field to null (an empty cell leaves the field alone).
NULL_MARKER = "#N/A"

csv.field_size_limit(2**31 - 1)  # a long text area may hold 131,072 characters and more


def read_csv(data: bytes, delimiter: str = ",") -> tuple[list[str], Iterator[list[str]]]:
    """The header and an iterator of the rows of a CSV upload (UTF-8, optional BOM).

    :param data: the uploaded bytes.
    :param delimiter: the column delimiter character.
    :raises UnicodeDecodeError: the data is not UTF-8.
    """
    text = data.decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    header = next(reader, [])
    return [h.strip() for h in header], (row for row in reader if row)


def cell(value: Any) -> str:
    """A value as Salesforce writes it in CSV (``true``/``false``, ISO dates, nothing for null).

    :param value: an API value.
    """
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    return str(value)


def quoted(values: Iterable[Any], delimiter: str) -> str:
    """One line, every non-null value double-quoted (nulls empty), without the line ending.

    :param values: the row's values.
    :param delimiter: the column delimiter character.
    """
    return delimiter.join(
        "" if v is None else '"' + cell(v).replace('"', '""') + '"' for v in values
    )


def minimal(values: Iterable[str], delimiter: str) -> str:
    """One line quoted only where needed (how the client's own columns are echoed back).

    :param values: the row's cells.
    :param delimiter: the column delimiter character.
    """
    out = []
    for v in values:
        if any(c in v for c in (delimiter, '"', "\n", "\r")):
            v = '"' + v.replace('"', '""') + '"'
        out.append(v)
    return delimiter.join(out)
