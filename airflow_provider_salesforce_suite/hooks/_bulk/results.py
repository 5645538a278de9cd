"""Summaries, CSV byte-stream helpers and the correlation of Bulk results to input rows.

Correlation (every result row is tied to its input row; ``sf__InputRow`` is its 1-based position
in the input):

* Bulk 1.0: a batch's ``/result`` lists one row per request row, in request order: the n-th
  result row is the n-th row of the batch's spill.
* Bulk 2.0: ``successfulResults`` and ``failedResults`` come in no particular order, but each row
  repeats the uploaded fields. Nothing is added to the payload: for each chunk an index maps a
  digest of a row's uploaded values (in the chunk's column order) to the positions of the spill
  rows with those values; each result row takes the first not yet matched position with the same
  digest (identical input rows are interchangeable). Input rows matched by no successful or
  failed row are the unprocessed ones, so ``unprocessedrecords`` need not be downloaded and
  ``processed + failed + unprocessed == records`` holds by construction. Memory is bounded by the
  chunk (``max_records_per_upload``), not by the dataset. Successful and failed rows are written
  as their results arrive (the matched result row carries the uploaded values), so they follow
  Salesforce's result order; unprocessed rows follow the input order.

Result files (in ``results_dir``; chunks in input order, rows within a chunk as above; sort by
``sf__InputRow`` for the input order): ``successful.<fmt>`` (``sf__Id``,
``sf__Created``, ``sf__InputRow``, fields), ``failed.<fmt>`` (``sf__Id``, ``sf__Error``,
``sf__InputRow``, fields) and ``unprocessed.<fmt>`` (``sf__InputRow``, fields).
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import itemgetter, methodcaller
from hashlib import blake2b as _blake2b
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

from airflow_provider_salesforce_suite.hooks._bulk.chunking import DELIMITERS, Chunk
from airflow_provider_salesforce_suite.io.csvwindows import CsvWindows
from airflow_provider_salesforce_suite.io.readers import allow_large_csv_fields

if TYPE_CHECKING:
    from airflow_provider_salesforce_suite.io.formats import Source

log = logging.getLogger(__name__)

INPUT_ROW_COLUMN = "sf__InputRow"
RESULT_KINDS = ("successful", "failed", "unprocessed")
_RESULT_COLUMNS = {
    "successful": ["sf__Id", "sf__Created", INPUT_ROW_COLUMN],
    "failed": ["sf__Id", "sf__Error", INPUT_ROW_COLUMN],
    "unprocessed": [INPUT_ROW_COLUMN],
}
_PAGE_ROWS = 1000
_READ_BUFFER_BYTES = 1 << 18


@dataclass(frozen=True)
class BulkIngestSummary:
    """What :meth:`SalesforceBulkHook.ingest` did; ``processed + failed + unprocessed == records``.

    :param job_ids: the Bulk jobs (2.0: one per upload; 1.0: the one job).
    :param records: input records.
    :param processed: records Salesforce saved.
    :param failed: records Salesforce rejected (their ``sf__Error`` is in the failed file).
    :param unprocessed: records not processed (job failed or aborted, or not sent after a failure).
    :param successful_uri: the successful results file (None when results were not collected).
    :param failed_uri: the failed results file.
    :param unprocessed_uri: the unprocessed records file.
    """

    job_ids: list[str]
    records: int
    processed: int
    failed: int
    unprocessed: int
    successful_uri: str | None = None
    failed_uri: str | None = None
    unprocessed_uri: str | None = None


@dataclass(frozen=True)
class BulkExtractSummary:
    """What :meth:`SalesforceBulkHook.extract` wrote.

    :param job_id: the query job.
    :param records: rows written.
    :param uri: the destination file.
    :param format: ``csv``, ``jsonl`` or ``parquet``.
    """

    job_id: str
    records: int
    uri: str
    format: str


# -- byte streams ------------------------------------------------------------------------------------
def strip_header(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The byte stream of a CSV document without its first line (the header)."""
    skipping = True
    for chunk in chunks:
        if skipping:
            newline = chunk.find(b"\n")
            if newline < 0:
                continue
            chunk, skipping = chunk[newline + 1:], False
        if chunk:
            yield chunk


def concat_csv(documents: Iterable[Iterable[bytes]]) -> Iterator[bytes]:
    """Several CSV byte streams with the same header as one: the header only at the start."""
    for number, document in enumerate(documents):
        yield from (document if number == 0 else strip_header(document))


class _IterStream(io.RawIOBase):
    """A readable binary stream over an iterator of byte chunks."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._rest = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._rest:
            try:
                self._rest = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._rest))
        buffer[:size] = self._rest[:size]
        self._rest = self._rest[size:]  # a view: no copy of the rest of the chunk
        return size


def csv_rows(chunks: Iterable[bytes], delimiter: str = ",") -> Iterator[list[str]]:
    """Parse a CSV byte stream row by row (constant memory; nothing is read before the first row)."""
    allow_large_csv_fields()
    raw = io.BufferedReader(_IterStream(chunks), buffer_size=_READ_BUFFER_BYTES)
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    return csv.reader(text, delimiter=delimiter)


def csv_dicts(chunks: Iterable[bytes], delimiter: str = ",") -> Iterator[dict[str, str]]:
    """Parse a CSV byte stream into dicts keyed by its header."""
    rows = csv_rows(chunks, delimiter)
    header = next(rows, None)
    if header is None:
        return
    for row in rows:
        if row:
            yield dict(zip(header, row))


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "boolean": lambda text: text.lower() == "true",
    "int": int, "long": int, "double": float, "currency": float, "percent": float,
}


def typed_values(header: list[str], field_types: Mapping[str, str] | None) -> Callable[[list[str]], dict[str, Any]]:
    """A converter of CSV rows into records: empty cells are nulls; columns whose Salesforce type
    is ``boolean``, ``int``, ``long``, ``double``, ``currency`` or ``percent`` get Python values.

    :param header: the CSV header.
    :param field_types: column -> Salesforce field type (case-insensitive), or None for all text.
    """
    types = {k.lower(): v.lower() for k, v in (field_types or {}).items()}
    converters = [_CONVERTERS.get(types.get(column.lower(), "")) for column in header]

    def convert(row: list[str]) -> dict[str, Any]:
        return {column: (None if value == "" else convert_value(value) if convert_value else value)
                for column, value, convert_value in zip(header, row, converters)}

    return convert


# -- result files ------------------------------------------------------------------------------------
class IngestResultFiles:
    """The three result files of an ingest, written page by page (a context manager).

    :param results_dir: local path, URI or ``ObjectStoragePath`` of the directory.
    :param format: ``csv``, ``jsonl`` or ``parquet`` (``csv.gz``/``jsonl.gz`` for gzip).
    """

    def __init__(self, results_dir: Source, format: str = "csv") -> None:
        from airflow_provider_salesforce_suite.io.formats import detect_format, to_path
        from airflow_provider_salesforce_suite.io.writers import RecordWriter

        base = to_path(results_dir)
        fmt, gzipped = detect_format(f"x.{format}", format)
        suffix = fmt + (".gz" if gzipped else "")
        self.writers = {kind: RecordWriter(base / f"{kind}.{suffix}", suffix, columns=_RESULT_COLUMNS[kind])
                        for kind in RESULT_KINDS}
        self.counts = dict.fromkeys(RESULT_KINDS, 0)
        self._pages: dict[str, list[list[Any]]] = {kind: [] for kind in RESULT_KINDS}
        self._page_columns: dict[str, list[str]] = dict.fromkeys(RESULT_KINDS, [])
        self._text = fmt == "csv"  # rows go to CSV as text, without a record per row

    def __enter__(self) -> IngestResultFiles:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            for writer in self.writers.values():
                writer.abort()

    def uri(self, kind: str) -> str:
        return self.writers[kind].uri

    def add(self, kind: str, prefix: list[Any], columns: list[str], values: list[str]) -> None:
        """Record one input row's outcome.

        :param kind: ``successful``, ``failed`` or ``unprocessed``.
        :param prefix: the values of the result columns (``sf__Id``..., ``sf__InputRow``), a new
            list (the row's values are appended to it).
        :param columns: the chunk's header (the same list object for every row of a chunk).
        :param values: the row's uploaded values (an empty cell is an empty or null value).
        """
        prefix += values
        self.add_rows(kind, columns, [prefix])

    def add_rows(self, kind: str, columns: list[str], rows: list[list[Any]]) -> None:
        """Record the outcomes of several input rows of one chunk.

        :param kind: ``successful``, ``failed`` or ``unprocessed``.
        :param columns: the chunk's header (the same list object for every row of a chunk).
        :param rows: each the result columns' values then the row's uploaded values.
        """
        if self._page_columns[kind] is not columns:
            self._flush(kind)
            self._page_columns[kind] = columns
        page = self._pages[kind]
        page += rows
        self.counts[kind] += len(rows)
        if len(page) >= _PAGE_ROWS:
            self._flush(kind)

    def add_csv(self, kind: str, columns: list[str], data: bytes, rows: int) -> None:
        """Record the outcomes of several input rows of one chunk given as the result file's CSV
        lines (result columns then the chunk's; each line ending with ``\\n``), as
        :meth:`add_rows` would write them.

        :param kind: ``successful``, ``failed`` or ``unprocessed``.
        :param columns: the chunk's header.
        :param data: the lines.
        :param rows: how many lines.
        """
        if not self.csv:
            raise ValueError("add_csv writes CSV result files only")
        self._flush(kind)
        self._page_columns[kind] = columns
        self.counts[kind] += rows
        self.writers[kind].write_csv(_RESULT_COLUMNS[kind] + columns, data, rows)

    @property
    def csv(self) -> bool:
        """Whether the result files are CSV (:meth:`add_csv` takes lines as they are)."""
        return self._text

    def _flush(self, kind: str) -> None:
        page = self._pages[kind]
        if page:
            columns = _RESULT_COLUMNS[kind] + self._page_columns[kind]
            if self._text:
                self.writers[kind].write_rows(columns, page)
            else:  # JSON Lines / Parquet: an empty cell was not sent: null
                width = len(_RESULT_COLUMNS[kind])
                self.writers[kind].write_page([
                    {column: value for number, (column, value) in enumerate(zip(columns, row))
                     if number < width or value != ""} for row in page])
            self._pages[kind] = []

    def close(self) -> None:
        for kind in RESULT_KINDS:
            self._flush(kind)
            self.writers[kind].close()


# -- correlation ---------------------------------------------------------------------------------------
def _digest(values: Iterable[str]) -> bytes:
    return _blake2b("\x00".join(values).encode("utf-8"), digest_size=16).digest()


def _result_rows(stream: Iterable[bytes], columns: list[str], extra: tuple[str, str],
                 delimiter: str) -> Iterator[tuple[list[str], str, str]]:
    """A results CSV stream's rows as (uploaded values in ``columns`` order, ``sf__Id``, ``extra[1]``)."""
    rows = csv_rows(stream, delimiter)
    header = next(rows, None)
    if header is None:
        return
    position = {name: number for number, name in enumerate(header)}
    width = len(header)
    picks = [position.get(column, width) for column in columns]  # width: a missing column reads as ""
    id_at, extra_at = position.get(extra[0], width), position.get(extra[1], width)
    start = picks[0] if picks else 0
    end = start + len(picks)
    if picks == list(range(start, end)) and end <= width:
        # The usual layout (the uploaded columns in upload order, as one run): slice, don't pick.
        for row in rows:
            if len(row) == width:
                yield row[start:end], row[id_at] if id_at < width else "", row[extra_at] if extra_at < width else ""
            elif row:
                row += [""] * (width + 1 - len(row))
                yield row[start:end], row[id_at], row[extra_at]
        return
    for row in rows:
        if not row:
            continue
        if len(row) <= width:  # short rows read "" for their missing cells, as does position ``width``
            row += [""] * (width + 1 - len(row))
        yield [row[i] for i in picks], row[id_at], row[extra_at]


#: digest of a row's values -> its spill offset, or a list of offsets for identical rows (rare: a
#: list per row would cost memory).
ChunkIndex = dict[bytes, "int | list[int]"]


@dataclass
class QuotedIndex:
    """The index of a chunk of plain rows (no quote, line break or NUL in any value; on a
    delimiter other than the comma, no comma either): each row's values as Salesforce echoes
    them in its results, every value double-quoted (``"a","b"``). A result row is matched by its
    bytes after ``sf__Id`` and ``sf__Created``, a window of rows at a time (see
    :func:`_match_window`): while the results come in upload order, by comparing them with the
    next rows in one go; after that through a dict of the rows not yet matched. The bytes are
    compared whole, so a result row matches only a row with exactly its values.

    :param quoted: the rows' quoted values, one line each (``\n`` between them), in spill order.
    :param lines: the rows as result file cells (comma-separated, no quotes needed), by offset.
    """

    quoted: bytes
    lines: list[bytes]
    #: Rows before this offset were matched in order (while ``rows`` is None).
    next: int = 0
    #: Where row ``next`` starts in ``quoted``.
    cursor: int = 0
    #: Quoted values -> offset (or offsets, for identical rows) of the rows not yet matched,
    #: built when the results leave the upload order.
    rows: ChunkIndex | None = None
    #: Whether ``rows`` holds one offset per key (no identical rows).
    unique: bool = True

    def key(self, values: Iterable[str], delimiter: str) -> bytes:
        """The key of parsed values (a row read with ``csv``), quoted as Salesforce does."""
        return delimiter.join('"' + value.replace('"', '""') + '"' for value in values).encode("utf-8")

    def by_key(self) -> ChunkIndex:
        """The dict of the rows not yet matched (built on first use)."""
        if self.rows is None:
            start = self.next
            keys = self.quoted[self.cursor:].split(b"\n") if start < len(self.lines) else []
            self.rows = dict(zip(keys, range(start, len(self.lines))))
            if len(self.rows) != len(keys):  # identical rows: lists of offsets
                self.unique = False
                self.rows = {}
                for offset, key in enumerate(keys, start):
                    found = self.rows.setdefault(key, offset)
                    if found != offset:
                        if isinstance(found, int):
                            self.rows[key] = [found, offset]
                        else:
                            found.append(offset)
        return self.rows

    def take_in_order(self, keys: list[bytes]) -> bool:
        """Whether ``keys`` are the next rows' in upload order (then matched): one comparison
        of their bytes with the index's, no lookup."""
        if self.rows is not None:
            return False
        joined = b"\n".join(keys)
        end = self.cursor + len(joined)
        if not self.quoted.startswith(joined, self.cursor) or end < len(self.quoted) and self.quoted[end] != 10:
            return False
        self.next += len(keys)
        self.cursor = end + 1
        return True

    def take(self, key: bytes) -> int | None:
        """The first not yet matched offset of a row with ``key`` (now matched), or None."""
        return _take(self.by_key(), key)

    def left(self) -> set[int]:
        """The offsets of the rows not matched."""
        if self.rows is None:
            return set(range(self.next, len(self.lines)))
        return {offset for found in self.rows.values() for offset in ([found] if isinstance(found, int) else found)}


def _quoted_index(chunk: Chunk) -> QuotedIndex | None:
    """The :class:`QuotedIndex` of a chunk of plain, distinct rows, built from its spill with a few
    passes over its bytes; None for any other chunk."""
    if not chunk.records or not chunk.path:
        return None
    with open(chunk.path, "rb") as spill:
        header = spill.readline()
        body = spill.read()
    if b'"' in header or b'"' in body or b"\x00" in body:  # a quoted cell (or an odd header): row by row
        return None
    delimiter = chunk.delimiter.encode()
    if b"\r" in body:
        body = body.replace(b"\r\n", b"\n")
        if b"\r" in body:
            return None
    if delimiter != b",":
        if b"," in body:  # the result files are comma-separated: such cells need quotes
            return None
        body = body.replace(delimiter, b",")
    lines = body.split(b"\n")
    lines.pop()
    if len(lines) != chunk.records:
        return None
    return QuotedIndex(b'"' + body[:-1].replace(b",", b'"' + delimiter + b'"').replace(b"\n", b'"\n"') + b'"', lines)


def index_chunk(chunk: Chunk) -> ChunkIndex | QuotedIndex:
    """The index of a chunk's rows (one read of its spill): build it while the job runs."""
    quoted = _quoted_index(chunk)
    if quoted is not None:
        return quoted
    index: ChunkIndex = {}
    for offset, row in enumerate(chunk.rows()):
        key = _digest(row)
        found = index.setdefault(key, offset)
        if found != offset:
            if isinstance(found, int):
                index[key] = [found, offset]
            else:
                found.append(offset)
    return index


_SPLIT_PREFIX = {d: methodcaller("split", d.encode(), 2) for d in DELIMITERS.values()}
_THIRD = itemgetter(2)


_SPLIT_PREFIX = {d: methodcaller("split", d.encode(), 2) for d in DELIMITERS.values()}
_THIRD = itemgetter(2)
_FIRST = itemgetter(0)
_UNQUOTE = methodcaller("strip", b'"')
#: A result row of a created record starts ``"<18-character id>","true",``: where its cells start.
_ID = itemgetter(slice(1, 19))
_AFTER_ID = {d: ('"' + d + '"true"' + d).encode() for d in DELIMITERS.values()}


def _match_window(window: bytes, index: QuotedIndex, input_row: Callable[[int], int],
                  delimiter: str) -> tuple[bytes, int] | None:
    """The successful result file's lines (``sf__Id,sf__Created,sf__InputRow,<values>``) for a
    window of Salesforce's successful results of a chunk of plain rows, and their number; None
    when some row is not simply matched (unknown or repeated values, another quoting): the
    window is then read row by row. Every step runs over the whole window in C."""
    if b"\r" in window:
        window = window.replace(b"\r\n", b"\n")
        if b"\r" in window:
            return None
    lines = window.split(b"\n")
    if lines[-1]:
        return None  # a window ends with a line feed but the stream's last
    lines.pop()
    if not lines:
        return b"", 0
    after_id = _AFTER_ID[delimiter]
    start = 19 + len(after_id)
    if set(map(itemgetter(slice(19, start)), lines)) == {after_id} and set(map(_FIRST, lines)) == {ord('"')}:
        # every row a created record: ids and cells are slices at fixed places
        keys = list(map(itemgetter(slice(start, None)), lines))
        ids: Any = map(_ID, lines)
        created: bytes | None = b"true"
    else:
        parts = list(map(_SPLIT_PREFIX[delimiter], lines))  # ['"id"', '"true"', '"v1","v2"...']
        try:
            keys = list(map(_THIRD, parts))
        except IndexError:
            return None
        ids = list(map(_UNQUOTE, map(_FIRST, parts)))  # ids and sf__Created: quoted cells, one by one in C
        created_cells = list(map(_UNQUOTE, map(itemgetter(1), parts)))
        if b'"' in b"".join(ids) or b'"' in b"".join(created_cells):
            return None
        created = None
    at = index.next
    if index.take_in_order(keys):  # upload order: no lookups
        offsets: Any = range(at, at + len(keys))
        cells_of = index.lines[at:at + len(keys)]
    else:
        rows = index.by_key()
        if not index.unique:
            return None
        offsets = list(map(rows.pop, keys, repeat(None)))
        if None in offsets:
            for key, offset in zip(keys, offsets):  # put back what this window took: it is read row by row
                if offset is not None:
                    rows[key] = offset
            return None
        cells_of = list(map(index.lines.__getitem__, offsets))
    count = len(lines)
    # one %-format of the whole window (it renders the numbers too): id,created,number,cells
    if created is None:
        values: list[Any] = [None] * (4 * count)
        values[1::4] = created_cells
        template = b"%s,%s,%d,%s\n"
    else:
        values = [None] * (3 * count)
        template = b"%s," + created + b",%d,%s\n"
    width = len(values) // count
    values[0::width] = ids
    values[width - 2::width] = map(input_row, offsets)
    values[width - 1::width] = cells_of
    return (template * count) % tuple(values), count


def _result_header(window: bytes, delimiter: str) -> tuple[list[str], bytes]:
    """The header of a results stream's first window, and the rest of the window."""
    end = window.find(b"\n") + 1
    if not end:
        return [], b""
    header = next(csv.reader([window[:end].decode("utf-8")], delimiter=delimiter), [])
    return header, window[end:]


def correlate_v2(chunk: Chunk, results: Callable[[str], Iterable[bytes]], out: IngestResultFiles,
                 index: ChunkIndex | QuotedIndex | None = None) -> None:
    """Write the outcome of every row of a Bulk 2.0 chunk (see the module docstring).

    :param chunk: the chunk (its spill is read for the index, and again only when some rows
        were not processed).
    :param results: ``which -> CSV byte stream`` of the job's ``successful``/``failed`` results.
    :param out: the result files.
    :param index: the chunk's :func:`index_chunk` when already built (it is consumed).
    """
    if index is None:
        index = index_chunk(chunk)
    columns = chunk.columns
    input_row = chunk.input_row()
    matched = unmatched = 0
    for which, second in (("successful", "sf__Created"), ("failed", "sf__Error")):
        stream = results(which)
        if isinstance(index, QuotedIndex) and which == "successful" and out.csv:
            found, missed = _plain_results(stream, chunk, index, input_row, out)
        else:
            found, missed = _rows_results(_result_rows(stream, columns, ("sf__Id", second), chunk.delimiter), which,
                                          chunk, index, input_row, out)
        matched += found
        unmatched += missed
    if unmatched:
        log.warning("Chunk %d: %d result rows matched no uploaded row (their input rows are reported "
                    "unprocessed)", chunk.index, unmatched)
    rejected(chunk, out)
    if matched == chunk.records:
        return
    if isinstance(index, QuotedIndex):
        left = index.left()
    else:
        left = {offset for found in index.values() for offset in ([found] if isinstance(found, int) else found)}
    del index
    for offset, row in enumerate(chunk.rows()):
        if offset in left:
            out.add("unprocessed", [input_row(offset)], columns, row)


def _rows_results(rows: Iterable[tuple[list[str], str, str]], which: str, chunk: Chunk,
                  index: ChunkIndex | QuotedIndex, input_row: Callable[[int], int],
                  out: IngestResultFiles) -> tuple[int, int]:
    """Match result rows one by one and write them; (matched, unmatched)."""
    columns = chunk.columns
    page: list[list[Any]] = []
    matched = unmatched = 0
    for values, record_id, detail in rows:
        if isinstance(index, QuotedIndex):
            offset = index.take(index.key(values, chunk.delimiter))
        else:
            offset = _take(index, _digest(values))
        if offset is None:
            unmatched += 1
            continue
        matched += 1
        # the echoed values are the uploaded ones (same key): no need to read the spill again
        row = [record_id, detail, input_row(offset)]
        row += values
        page.append(row)
        if len(page) >= _PAGE_ROWS:
            out.add_rows(which, columns, page)
            page = []
    out.add_rows(which, columns, page)
    return matched, unmatched


def _plain_results(stream: Iterable[bytes], chunk: Chunk, index: QuotedIndex, input_row: Callable[[int], int],
                   out: IngestResultFiles) -> tuple[int, int]:
    """Match and write the successful results of a chunk of plain rows a window at a time (rows
    one by one in a window that needs it); (matched, unmatched)."""
    columns = chunk.columns
    windows = CsvWindows(stream, delimiter=chunk.delimiter)
    parts = iter(windows)
    first = next(parts, b"")
    header, rest = _result_header(first, chunk.delimiter)
    if header != ["sf__Id", "sf__Created", *columns]:  # another layout: read it row by row
        return _rows_results(_result_rows(chain([first], parts), columns, ("sf__Id", "sf__Created"), chunk.delimiter),
                             "successful", chunk, index, input_row, out)
    matched = unmatched = 0
    width = len(header)
    for window in chain([rest] if rest else [], parts):
        written = _match_window(window, index, input_row, chunk.delimiter)
        if written is not None:
            windows.note_lines(written[1])
            out.add_csv("successful", columns, *written)
            matched += written[1]
            continue
        rows = ((row[2:width] + [""] * (width - len(row)), row[0], row[1] if len(row) > 1 else "")
                for row in windows.rows(window) if row)
        found, missed = _rows_results(rows, "successful", chunk, index, input_row, out)
        matched += found
        unmatched += missed
    return matched, unmatched


def _take(index: ChunkIndex, key: bytes) -> int | None:
    """The first not yet matched spill offset with ``key`` (removed from ``index``), or None."""
    found = index.get(key)
    if found.__class__ is int:
        del index[key]
        return found  # type: ignore[return-value]
    if found:
        return found.pop(0)  # type: ignore[union-attr]
    return None


def correlate_v1(chunk: Chunk, results: Iterable[bytes] | None, out: IngestResultFiles) -> None:
    """Write the outcome of every row of a Bulk 1.0 batch: results are in request order.

    :param chunk: the batch's chunk.
    :param results: the batch's ``/result`` CSV stream (``Id``, ``Success``, ``Created``, ``Error``),
        or None when the batch was not processed (every row is unprocessed).
    :param out: the result files.
    """
    outcomes = csv_dicts(results) if results is not None else iter(())
    columns = chunk.columns
    input_row = chunk.input_row()
    for offset, row in enumerate(chunk.rows()):
        number = input_row(offset)
        result = next(outcomes, None)
        if result is None:
            out.add("unprocessed", [number], columns, row)
        elif result.get("Success", "").lower() == "true":
            out.add("successful", [result.get("Id", ""), result.get("Created", ""), number], columns, row)
        else:
            out.add("failed", [result.get("Id", ""), result.get("Error", ""), number], columns, row)


    rejected(chunk, out)


def unprocessed(chunk: Chunk, out: IngestResultFiles) -> None:
    """Every uploaded row of ``chunk`` is unprocessed (it was not sent, or its job failed without
    results); its rejected rows are failed."""
    correlate_v1(chunk, None, out)


def rejected(chunk: Chunk, out: IngestResultFiles) -> None:
    """The rows of ``chunk`` not uploaded because Salesforce would refuse a value: failed records."""
    width = len(chunk.columns)
    for row, error, values in chunk.rejected:
        out.add("failed", ["", error, row], chunk.columns, list(values) + [""] * (width - len(values)))


@dataclass
class IngestFailure:
    """The first failed job/batch of an ingest, surfaced once everything else is written."""

    job_id: str
    state: str
    message: str | None
    batch_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
