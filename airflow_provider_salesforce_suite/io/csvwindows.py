"""A CSV byte stream cut into windows of whole lines, for work done on many rows at once.

Per-row Python (parsing every row with ``csv``, re-encoding it, hashing it) dominates the client
CPU of a Bulk load. Most CSV data needs none of it: with no quote, no carriage return and no blank
line, every line is one row and the delimiter splits its cells, so a window of such lines can be
checked, copied and matched with ``bytes`` methods running in C. :class:`CsvWindows` hands out
windows of whole lines (about ``window_bytes`` each, ending at a line feed); a window that is not
plain is parsed with ``csv`` by :meth:`CsvWindows.rows`, exactly as a ``csv.reader`` over the text
stream would, including a quoted field that runs on past the window's end (more windows are taken).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

from airflow_provider_salesforce_suite.io.formats import RecordFileError

#: Bytes per window: large enough that per-window costs vanish, small enough to stay cache-friendly.
WINDOW_BYTES = 1 << 20


def _lines(window: bytes, end: int) -> int:
    """Line ends in ``window[:end]`` as ``csv`` counts them: LF, CRLF or a bare CR."""
    count = window.count(b"\n", 0, end)
    if b"\r" in window:
        count += window.count(b"\r", 0, end) - window.count(b"\r\n", 0, end)
    return count


def _all_lines(window: bytes) -> int:
    """The lines of a window (the stream's last may lack its line end)."""
    return _lines(window, len(window)) + (1 if window[-1:] not in (b"\n", b"\r", b"") else 0)


class CsvWindows:
    """Windows of whole lines of a CSV byte stream (a UTF-8 BOM at its start is dropped).

    :param chunks: the stream's bytes, in pieces of any size.
    :param source: names the stream in errors.
    :param delimiter: the column delimiter (for :meth:`rows`).
    :param window_bytes: about how many bytes a window holds (at least one whole line; default
        :data:`WINDOW_BYTES`).
    """

    def __init__(self, chunks: Iterable[bytes], *, source: Any = "", delimiter: str = ",",
                 window_bytes: int | None = None) -> None:
        self._chunks = iter(chunks)
        self._rest = b""
        self._started = False
        self.source = source
        self.delimiter = delimiter
        self.window_bytes = window_bytes or WINDOW_BYTES
        self._before = 0  # lines before the current window (for line numbers in errors)
        self._current = b""
        self._window_lines: int | None = 0  # the current window's lines, when known without counting
        #: The line number of the end of the row :meth:`rows` yielded last.
        self.row_line = 0

    def __iter__(self) -> Iterator[bytes]:
        while True:
            window = self._next_window()
            if not window:
                return
            yield window

    def _next_window(self) -> bytes:
        """The next window (every line complete, ending with ``\\n`` except perhaps the stream's
        last), or ``b""`` at the end."""
        self._before += self._window_lines if self._window_lines is not None else _all_lines(self._current)
        parts = [self._rest] if self._rest else []
        size = len(self._rest)
        tail = b""
        while True:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            if not self._started:
                chunk = self._drop_bom(parts, chunk)
                if chunk is None:
                    continue
            end = chunk.rfind(b"\n") + 1
            if end and size + end >= self.window_bytes:
                parts.append(chunk[:end] if end < len(chunk) else chunk)
                tail = chunk[end:]
                break
            parts.append(chunk)
            size += len(chunk)
        if chunk is None and not self._started:  # a stream shorter than a BOM
            self._started = True
            joined = b"".join(parts)
            parts = [joined[3:] if joined.startswith(codecs.BOM_UTF8) else joined]
        window = parts[0] if len(parts) == 1 else b"".join(parts)
        self._rest = tail
        self._current, self._window_lines = window, None  # counted when the next window is taken, unless noted
        return window

    def note_lines(self, count: int) -> None:
        """Tell the number of lines of the current window (saves counting them)."""
        self._window_lines = count

    @property
    def lines_before(self) -> int:
        """Lines handed out before the current window."""
        return self._before

    def _drop_bom(self, parts: list[bytes], chunk: bytes) -> bytes | None:
        """``chunk`` without the stream's BOM once three bytes are known (None: not yet known)."""
        head = b"".join(parts) + chunk
        if len(head) < 3:
            parts[:] = [head]
            return None
        self._started = True
        parts.clear()
        return head[3:] if head.startswith(codecs.BOM_UTF8) else head

    def line_of(self, window: bytes, position: int) -> int:
        """The 1-based line number of byte ``position`` of the current ``window``."""
        return self._before + _lines(window, position) + 1

    def skip(self, window: bytes, end: int) -> bytes:
        """``window[end:]``, its lines before ``end`` counted as read (``end`` follows a line feed)."""
        self._before += _lines(window, end)
        self._current, self._window_lines = window[end:], None
        return self._current

    def decodes(self, window: bytes) -> bool:
        """Whether ``window`` is valid UTF-8."""
        try:
            window.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True

    def rows(self, window: bytes) -> Iterator[list[str]]:
        """The rows of ``window`` (and of the windows after it, while a quoted field runs on), as
        ``csv.reader`` reads them from the text stream (blank lines are empty lists).

        :raises RecordFileError: a malformed row or an undecodable line, naming the line.
        """
        pending: list[str] = []
        failed: list[RecordFileError] = []  # an undecodable line, raised once the lines before it are read
        base = self._before

        def lines() -> Iterator[str]:
            current: bytes | None = window
            while True:
                if not pending:
                    if failed:
                        raise failed[0]
                    if current is None:
                        current = self._next_window()
                        if not current:
                            return
                    try:
                        text = current.decode("utf-8")
                    except UnicodeDecodeError as exc:  # the lines before the undecodable one are read first
                        good = current.rfind(b"\n", 0, exc.start) + 1
                        text = current[:good].decode("utf-8")
                        failed.append(RecordFileError(f"{self.source}: line {self.line_of(current, exc.start)}: {exc}"))
                    pending.extend(reversed(list(io.StringIO(text, newline=""))))
                    current = None
                    continue
                yield pending.pop()

        reader = csv.reader(lines(), delimiter=self.delimiter)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise RecordFileError(f"{self.source}: line {base + (reader.line_num or 1)}: {exc}") from None
            self.row_line = base + reader.line_num
            yield row
            if not pending and not failed:  # the row ended with the windows taken so far: back to the caller's
                return
