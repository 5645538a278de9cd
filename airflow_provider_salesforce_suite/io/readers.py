"""Lazy readers of CSV, JSON Lines and Parquet record files (constant memory)."""

from __future__ import annotations

import csv
import gzip
import zlib
import io
import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from typing import IO, Any, Iterator, Sequence

from airflow_provider_salesforce_suite.io import csvwindows
from airflow_provider_salesforce_suite.io.csvwindows import CsvWindows
from airflow_provider_salesforce_suite.io.formats import RecordFileError, Source, detect_format, to_path

log = logging.getLogger(__name__)

PARQUET_BATCH_ROWS = 5000
#: CSV cells with this text are explicit nulls (the Bulk API convention); empty cells are omitted.
CSV_NULL = "#N/A"
#: Largest CSV cell the readers accept. Python's default (131,072) refuses any longer cell, but an
#: input cell over Salesforce's limit must be read to be reported, and Salesforce's error text for a
#: value at its limit (``STRING_TOO_LONG: ... data value too large: <value> ...``) is longer still.
CSV_FIELD_LIMIT = 2**31 - 1


def allow_large_csv_fields() -> None:
    """Raise the process's ``csv.field_size_limit`` to :data:`CSV_FIELD_LIMIT` (never lower it).

    Every CSV reader of records and Bulk data calls this before reading (one cheap call per file).
    """
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)


@contextmanager
def _open_binary(source: Source, gzipped: bool) -> Iterator[IO[bytes]]:
    path = to_path(source)
    if path.protocol in ("", "file", "local"):
        # A plain file object: ObjectStoragePath's lineage wrapper costs an attribute lookup per
        # CSV line read; the input is reported to hook lineage once instead.
        _report_input(path)
        opened: Any = open(path.path, "rb")  # noqa: SIM115
    else:
        opened = path.open("rb")
    with opened as raw:
        if gzipped:
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                try:
                    yield unzipped  # type: ignore[misc]
                except (gzip.BadGzipFile, EOFError, zlib.error) as exc:  # raised by the reads, lazily
                    raise RecordFileError(f"{source}: not a readable gzip file ({exc})") from None
        else:
            yield raw


def _report_input(path: Any) -> None:
    """Report a file read to Airflow's hook lineage, as ``ObjectStoragePath.open`` would."""
    try:
        from airflow.sdk.lineage import get_hook_lineage_collector

        get_hook_lineage_collector().add_input_asset(context=path, uri=str(path))
    except Exception as exc:  # lineage is best effort; reading must not fail on it
        log.debug("Could not report %s to hook lineage: %s", path, exc)


def iter_records(
    source: Source,
    *,
    format: str | None = None,
    columns: Sequence[str] | None = None,
    batch_rows: int = PARQUET_BATCH_ROWS,
) -> Iterator[dict[str, Any]]:
    """Yield the records of a file one by one, never holding the whole file.

    CSV: the first row is the header (a UTF-8 BOM is stripped); values are strings; an empty cell
    is left out of the record (the field is not sent) and ``#N/A`` is an explicit null. JSON Lines:
    one JSON object per line, blank lines skipped. Parquet: read one batch of rows at a time.

    :param source: URI (``file://``, ``s3://``, ``gs://``...), local path or ``ObjectStoragePath``.
    :param format: ``csv``, ``jsonl`` or ``parquet`` (``+ ".gz"`` for gzip); default from the suffix.
    :param columns: keep only these fields (all when None).
    :param batch_rows: rows per Parquet batch.
    :raises RecordFileError: unknown format, a ragged CSV row or a bad JSON line (naming its line
        number), an unreadable Parquet file.
    """
    fmt, gzipped = detect_format(source, format)
    readers = {"csv": _csv_records, "jsonl": _jsonl_records, "parquet": _parquet_records}
    keep = set(columns) if columns is not None else None
    for record in readers[fmt](source, gzipped, columns, batch_rows):
        yield record if keep is None else {key: value for key, value in record.items() if key in keep}


def _csv_rows(reader: Any, source: Source) -> Iterator[list[str]]:
    """The reader's rows, decoding and quoting errors naming their line."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as exc:
            raise RecordFileError(f"{source}: line {reader.line_num or 1}: {exc}") from None
        yield row


def _csv_header(rows: Iterator[list[str]], source: Source, columns: Sequence[str] | None) -> list[str] | None:
    """The header row (None for an empty file), checked: names present, unique, and covering ``columns``."""
    header = next(rows, None)
    if header is None:
        return None
    if len(set(header)) != len(header) or "" in header:
        raise RecordFileError(f"{source}: line 1: the header has empty or repeated column names: {header}")
    if columns is not None and (missing := [c for c in columns if c not in header]):
        raise RecordFileError(f"{source}: columns {missing} are not in the header {header}")
    return header


def _csv_data_rows(source: Source, gzipped: bool, columns: Sequence[str] | None) -> Iterator[list[str]]:
    """The header, then every data row (blank lines skipped, ragged rows refused), as read."""
    allow_large_csv_fields()
    with _open_binary(source, gzipped) as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))
        rows = _csv_rows(reader, source)
        header = _csv_header(rows, source, columns)
        if header is None:
            return
        yield header
        width = len(header)
        for row in rows:
            if len(row) != width:
                if not row:  # a blank line
                    continue
                raise RecordFileError(f"{source}: line {reader.line_num}: {len(row)} values for {width} columns")
            yield row


def _csv_records(source: Source, gzipped: bool, columns: Sequence[str] | None, _: int) -> Iterator[dict[str, Any]]:
    rows = _csv_data_rows(source, gzipped, columns)
    header = next(rows, None)
    for row in rows:
        yield {key: (None if value == CSV_NULL else value) for key, value in zip(header, row) if value != ""}


def _plain_lines(window: bytes) -> list[bytes] | None:
    """The lines of a window (LF or CRLF line ends) when every line is one row whose cells split on
    commas: no quote, no stray carriage return, no blank line; else None (read with csv)."""
    if b"\r" in window:  # CRLF: split on it, and every CR and LF must be one of those line ends
        lines = window.split(b"\r\n")
        if window.count(b"\r") != len(lines) - 1 or window.count(b"\n") != len(lines) - 1:
            return None
    else:
        lines = window.split(b"\n")
    if lines[-1]:  # the file's last line, without a line end
        lines.append(b"")
    lines.pop()
    if not lines or b"" in lines or b'"' in window:  # a blank line, or a quote: csv reads it
        return None
    return lines


@dataclass(frozen=True)
class PlainLines:
    """Whole data rows of a CSV file as they are in it, every line one row of exactly the header's
    width, with no quote, carriage return or blank line (see :mod:`.csvwindows`).

    :param data: the lines, each ending with ``\\n``.
    :param lines: the same lines without their line feeds.
    """

    data: bytes
    lines: list[bytes]


class CsvTextRows:
    """The data rows of a CSV file as lists of text, for consumers that send values on as CSV text
    (Bulk uploads): no record is built, and a cell goes out exactly as read (an empty cell stays
    empty: the field is not sent; ``#N/A`` stays the explicit null). Single use, lazy: the file is
    opened on first use and read a window of lines at a time.

    Iterate it for rows, or read :meth:`blocks` for whole windows of plain lines as bytes (no
    per-row work) and lists of rows where the file needs ``csv`` (quotes, blank lines...).

    :param source: URI, local path or ``ObjectStoragePath`` of a ``.csv`` (or ``.csv.gz``) file.
    :param format: ``csv`` or ``csv.gz`` when the suffix does not tell.
    :raises RecordFileError: not a CSV file (at construction); a bad header, a ragged row or an
        undecodable line, naming its line number (while reading).
    """

    #: Bytes per window read from the file (None: :data:`~.csvwindows.WINDOW_BYTES`).
    window_bytes: int | None = None

    def __init__(self, source: Source, format: str | None = None) -> None:
        fmt, self._gzipped = detect_format(source, format)
        if fmt != "csv":
            raise RecordFileError(f"{source}: CsvTextRows reads CSV files, not {fmt}")
        self.source = source
        self._blocks: Iterator[PlainLines | list[list[str]]] | None = None
        self._columns: list[str] = []
        self._ahead: list[list[str]] = []  # rows taken from a block but not handed out yet (reversed)
        self._block: PlainLines | list[list[str]] | None = None  # a block peeked at, not yet handed out

    def _open(self) -> Iterator[PlainLines | list[list[str]]]:
        if self._blocks is None:
            self._blocks = self._read()
            self._columns = next(self._blocks, None) or []  # type: ignore[assignment]
        return self._blocks

    def _read(self) -> Iterator[Any]:
        """The header, then blocks of data rows (:class:`PlainLines` or lists of rows)."""
        allow_large_csv_fields()
        with _open_binary(self.source, self._gzipped) as raw:
            size = self.window_bytes or csvwindows.WINDOW_BYTES
            windows = CsvWindows(iter(lambda: raw.read(size), b""), source=self.source, window_bytes=size)
            width = 0
            for window in windows:
                if not width:
                    header, window = self._header(windows, window)
                    if header is None:
                        return
                    yield header
                    width = len(header)
                    if isinstance(window, Iterator):  # the rest of a header read with csv
                        yield from self._checked(window, windows, width)
                        continue
                    if not window:
                        continue
                lines = _plain_lines(window)
                if lines is not None and (window.isascii() or windows.decodes(window)) and \
                        set(map(bytes.count, lines, repeat(b","))) == {width - 1}:
                    windows.note_lines(len(lines))
                    # an LF window with its last line end is its lines already: no join
                    plain = window.endswith(b"\n") and b"\r" not in window
                    yield PlainLines(window if plain else b"\n".join(lines) + b"\n", lines)
                    continue
                yield from self._checked(windows.rows(window), windows, width)

    def _header(self, windows: CsvWindows, window: bytes) -> tuple[list[str] | None, bytes | Iterator[list[str]]]:
        """The header and the rest of its window: bytes when the header is a plain line, else the
        rows after it as ``csv`` reads them."""
        end = window.find(b"\n") + 1
        head = window[:end]
        if end and head.rstrip(b"\r\n") and b'"' not in head and b"\r" not in head[:-2] and windows.decodes(head):
            return _csv_header(csv.reader([head.decode("utf-8")]), self.source, None), windows.skip(window, end)
        rows = windows.rows(window)
        return _csv_header(rows, self.source, None), rows

    def _checked(self, rows: Iterator[list[str]], windows: CsvWindows, width: int) -> Iterator[list[list[str]]]:
        """The rows as one block, blank lines skipped; a ragged row is refused (naming its line)
        once the rows before it are handed on, as a reader of one row at a time would."""
        kept = []
        try:
            for row in rows:
                if len(row) != width:
                    if not row:  # a blank line
                        continue
                    raise RecordFileError(f"{self.source}: line {windows.row_line}: {len(row)} values for {width} "
                                          "columns")
                kept.append(row)
        except RecordFileError:
            if kept:
                yield kept
            raise
        yield kept

    @property
    def columns(self) -> list[str]:
        """The header (empty for an empty file)."""
        self._open()
        return self._columns

    def blocks(self) -> Iterator[PlainLines | list[list[str]]]:
        """The data rows not yet read, a block at a time: :class:`PlainLines` (bytes, no per-row
        work), or a list of rows as ``csv`` read them."""
        blocks = self._open()
        if self._ahead:
            yield self._ahead[::-1]
            self._ahead = []
        if self._block is not None:
            block, self._block = self._block, None
            yield block
        yield from blocks

    def peek(self) -> list[str] | None:
        """The next row without consuming it (None at the end)."""
        if self._ahead:
            return self._ahead[-1]
        while self._block is None or not (self._block.lines if isinstance(self._block, PlainLines) else self._block):
            self._block = next(self._open(), None)
            if self._block is None:
                return None
        if isinstance(self._block, PlainLines):
            return self._block.lines[0].decode("utf-8").split(",")
        return self._block[0]

    def __iter__(self) -> Iterator[list[str]]:
        return self

    def __next__(self) -> list[str]:
        if not self._ahead:
            if self.peek() is None:
                raise StopIteration
            block, self._block = self._block, None
            if isinstance(block, PlainLines):
                block = [line.decode("utf-8").split(",") for line in block.lines]
            self._ahead = block[::-1]  # type: ignore[index]
        return self._ahead.pop()


def _jsonl_records(source: Source, gzipped: bool, columns: Sequence[str] | None, _: int) -> Iterator[dict[str, Any]]:
    with _open_binary(source, gzipped) as raw:
        for number, line in enumerate(raw, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (ValueError, UnicodeDecodeError) as exc:
                raise RecordFileError(f"{source}: line {number}: not valid JSON ({exc})") from None
            if not isinstance(record, dict):
                raise RecordFileError(f"{source}: line {number}: expected a JSON object, got {type(record).__name__}")
            yield record


def _parquet_records(source: Source, _: bool, columns: Sequence[str] | None, batch_rows: int) -> Iterator[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with to_path(source).open("rb") as raw:
        try:
            parquet = pq.ParquetFile(raw)
            batches = parquet.iter_batches(batch_size=batch_rows, columns=list(columns) if columns else None)
            for batch in batches:
                for record in batch.to_pylist():
                    yield {key: value for key, value in record.items() if value is not None}
        except (pa.ArrowException, OSError) as exc:
            raise RecordFileError(f"{source}: not a readable Parquet file ({exc})") from None
