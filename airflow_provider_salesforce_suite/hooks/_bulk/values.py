"""Values Salesforce refuses in a Bulk upload, found before the upload leaves.

A value over the API's per-field limit (Bulk API 2.0: 131,072 characters; Bulk API 1.0: 32,000)
or holding a character Salesforce cannot store (NUL; for Bulk 1.0, whose batches and results are
XML-backed, also the control characters and non-characters XML 1.0 forbids) is not sent: its row
becomes a failed record, with a Salesforce-shaped ``sf__Error`` naming the field, the limit or
the character (see :meth:`ValueCheck.problem`). The check scans each encoded row once in C (a size
compare and a regular expression on the bytes); the cells are looked at only when it matches.
"""

from __future__ import annotations

import re
from typing import Sequence

#: Most characters in one field ("Bulk API 2.0 limits": 131,072; "Bulk API limits" (1.0): 32,000).
MAX_FIELD_CHARS = {"2.0": 131_072, "1.0": 32_000}
#: Characters refused per API, as UTF-8 byte patterns (for the encoded row) and text patterns (per cell).
_REFUSED_BYTES = {"2.0": re.compile(b"\x00"), "1.0": re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")}
#: UTF-8 lead of U+FFC0-U+FFFF, which holds the non-characters U+FFFE and U+FFFF (a plain byte
#: search: an alternation in the pattern above would make every row's scan slower).
_NONCHARACTER_LEAD = b"\xef\xbf"
_REFUSED_TEXT = {"2.0": re.compile("\x00"), "1.0": re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")}
_NAMES = {"\x00": "NUL", "\ufffe": "a non-character", "\uffff": "a non-character"}


class ValueCheck:
    """Finds the first value of a row that Salesforce would refuse.

    :param api: ``"2.0"`` or ``"1.0"``.
    """

    def __init__(self, api: str) -> None:
        self.api = api
        self.max_chars = MAX_FIELD_CHARS[api]
        self._refused_bytes = _REFUSED_BYTES[api]
        self._refused_text = _REFUSED_TEXT[api]
        self._noncharacters = api == "1.0"

    def plain_ok(self, data: bytes, lines: Sequence[bytes], eol: int) -> bool:
        """Whether Salesforce takes every value of a window of plain rows (see
        :class:`~airflow_provider_salesforce_suite.io.readers.PlainLines`): the checks of
        :meth:`problem` on the whole window at once. False means: ask :meth:`problem` row by row.

        :param data: the encoded rows.
        :param lines: the rows without their line endings.
        :param eol: bytes of a line ending.
        """
        refused = b"\x00" in data if not self._noncharacters else (
            self._refused_bytes.search(data) is not None or _NONCHARACTER_LEAD in data)
        if refused:
            return False
        return len(data) <= self.max_chars or max(map(len, lines), default=0) + eol <= self.max_chars

    def problem(self, columns: Sequence[str], values: Sequence[str], line: bytes) -> str | None:
        """The ``sf__Error`` for the row, or None when Salesforce would take every value.

        :param columns: the row's column names.
        :param values: the row's CSV values (in ``columns`` order).
        :param line: the encoded row (its bytes are at least as many as any value's characters).
        """
        if len(line) <= self.max_chars and not self._refused_bytes.search(line) and not (
                self._noncharacters and _NONCHARACTER_LEAD in line):
            return None
        for column, value in zip(columns, values):
            if len(value) > self.max_chars:
                return (f"STRING_TOO_LONG:{column}: data value too large: {len(value)} characters (max length="
                        f"{self.max_chars}, the Bulk API {self.api} limit per field); not sent:{column} --")
            found = self._refused_text.search(value)
            if found:
                char = found.group()
                name = _NAMES.get(char, "a control character")
                return (f"FIELD_INTEGRITY_EXCEPTION:{column}: value contains the invalid character {name} "
                        f"(U+{ord(char):04X}) at position {found.start() + 1}; not sent:{column} --")
        return None
