"""Lazy split of an iterable of records into CSV uploads bounded by exact encoded bytes and records.

Each chunk is written once, row by row, to a local spill file that holds exactly the bytes that
are uploaded (header + rows): memory holds one encoded row at a time, never the dataset. The spill
is what results are later correlated against (see :mod:`.results`).
"""

from __future__ import annotations

import csv
import json
import os
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from itertools import accumulate, repeat
from operator import add
from typing import Any, Callable, Iterable, Iterator

from airflow_provider_salesforce_suite.hooks._bulk.values import ValueCheck
from airflow_provider_salesforce_suite.io.readers import CsvTextRows, PlainLines, allow_large_csv_fields

#: Bulk CSV text of an explicit null (an empty cell leaves the field unchanged).
CSV_NULL = "#N/A"
#: Bulk 2.0 ``columnDelimiter`` names -> characters.
DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
#: Bulk 2.0 ``lineEnding`` names -> characters.
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
#: Salesforce accepts at most 150 MB of base64 per Bulk 2.0 upload, and advises <= 100 MB raw.
V2_MAX_BASE64_BYTES = 150 * 1024 * 1024
V2_MAX_UPLOAD_BYTES = 100 * 1024 * 1024
#: Records per Bulk 2.0 upload (Salesforce sets no limit). Smaller uploads pipeline: the client
#: cuts the next upload and writes the results of a finished job while Salesforce works on the
#: others (100,000 rows in two jobs loaded 1.08x the one-job floor's time, in one job 1.18x); the
#: correlation index is per upload, so this also bounds its memory. More jobs cost a few API calls each.
V2_DEFAULT_MAX_RECORDS = 50_000
#: Bulk 1.0 batch limits: 10,000 records, 10 MB and 10,000,000 characters (bytes >= characters).
V1_MAX_BATCH_RECORDS = 10_000
V1_MAX_BATCH_BYTES = 10_000_000
#: Write buffer of a spill file: few large writes instead of one per row.
SPILL_BUFFER_BYTES = 1 << 20


def base64_size(raw_bytes: int) -> int:
    """Bytes of the base64 encoding of ``raw_bytes`` bytes (how Salesforce measures an upload)."""
    return 4 * ((raw_bytes + 2) // 3)


def check_v2_upload_size(max_bytes: int) -> int:
    """``max_bytes`` if an upload of that size is within Salesforce's limits, else ``ValueError``."""
    if max_bytes < 1 or max_bytes > V2_MAX_UPLOAD_BYTES or base64_size(max_bytes) > V2_MAX_BASE64_BYTES:
        raise ValueError(f"max_upload_bytes must be between 1 and {V2_MAX_UPLOAD_BYTES} (Salesforce accepts "
                         f"150 MB of base64 per upload, about 100 MB raw); got {max_bytes}")
    return max_bytes


def csv_value(value: Any) -> str:
    """A record value as Bulk CSV text: None -> ``#N/A``, booleans ``true``/``false``, dates ISO 8601,
    lists and dicts as JSON."""
    if value is None:
        return CSV_NULL
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def flatten_input(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested parent references become dotted columns (``{"Account": {"Ext__c": "A1"}}`` ->
    ``{"Account.Ext__c": "A1"}``), as Bulk CSV headers name them; ``attributes`` are dropped."""
    row: dict[str, Any] = {}
    for key, value in record.items():
        # str first: file sources give strings, and an ABC isinstance check per value is slow
        if value.__class__ is str or not isinstance(value, Mapping):
            if key != "attributes":
                row[prefix + key] = value
        elif key != "attributes":
            row.update(flatten_input(value, f"{prefix}{key}."))
    return row


class _Echo:
    """A file whose ``write`` returns its argument: ``csv.writer(_Echo()).writerow`` returns the line."""

    @staticmethod
    def write(text: str) -> str:
        return text


@dataclass(frozen=True)
class Chunk:
    """One upload (a 2.0 job's data or a 1.0 batch), spilled to a local file.

    :param index: 0-based position among the chunks.
    :param path: local file holding exactly the uploaded bytes (header + rows).
    :param columns: the header.
    :param first_row: 1-based input position of the chunk's first record.
    :param records: records in the chunk.
    :param size: bytes of the file.
    :param delimiter: the column delimiter character.
    :param rejected: input rows of the chunk's range that are not uploaded (a value Salesforce
        refuses, see :mod:`.values`), each ``[input row, sf__Error, values]``; they are failed records.
    """

    index: int
    path: str
    columns: list[str]
    first_row: int
    records: int
    size: int
    delimiter: str = ","
    rejected: tuple[list[Any], ...] = ()

    @property
    def last_row(self) -> int:
        """1-based input position of the chunk's last row (uploaded or rejected)."""
        return self.first_row + self.records + len(self.rejected) - 1

    def input_row(self) -> Callable[[int], int]:
        """``offset of an uploaded row -> its 1-based input position`` (rejected rows leave gaps)."""
        first = self.first_row
        if not self.rejected:
            return first.__add__  # C, no Python frame per row
        # rejected row n sits before the uploaded row at offset (its position - first - n)
        gaps = [row - first - n for n, (row, _, _) in enumerate(self.rejected)]
        return lambda offset: first + offset + bisect_right(gaps, offset)

    def data(self) -> bytes:
        """The upload body (bounded by the chunk's size limit)."""
        with open(self.path, "rb") as spill:
            return spill.read()

    def rows(self) -> Iterator[list[str]]:
        """The chunk's rows (header excluded) as CSV values, in input order."""
        if not self.records:
            return
        allow_large_csv_fields()
        with open(self.path, encoding="utf-8", newline="", buffering=SPILL_BUFFER_BYTES) as spill:
            reader = csv.reader(spill, delimiter=self.delimiter)
            next(reader, None)
            yield from reader


class CsvChunker:
    """Split records into :class:`Chunk` spills no larger than ``max_bytes`` / ``max_records``.

    Mappings: the header is the keys of the first record (nested parents flattened); a record
    with a key the header lacks closes the chunk, and the next one's header adds the new keys (a
    missing key is an empty cell: the field is not sent). The rows of a CSV file
    (:class:`~airflow_provider_salesforce_suite.io.readers.CsvTextRows`) keep the file's header.

    :param spill_dir: local directory for the spill files.
    :param max_bytes: most bytes per chunk, header included (exact UTF-8 size).
    :param max_records: most records per chunk.
    :param delimiter: ``columnDelimiter`` name (``COMMA``...).
    :param line_ending: ``LF`` or ``CRLF``.
    :param check: rows with a value it refuses are not uploaded but kept in their chunk's ``rejected``.
    """

    def __init__(self, spill_dir: str, *, max_bytes: int, max_records: int, delimiter: str = "COMMA",
                 line_ending: str = "LF", check: ValueCheck | None = None) -> None:
        if max_records < 1:
            raise ValueError(f"max_records_per_upload must be at least 1; got {max_records}")
        self.spill_dir = spill_dir
        self.max_bytes = max_bytes
        self.max_records = max_records
        self.delimiter = DELIMITERS[delimiter]
        self._writer = csv.writer(_Echo(), delimiter=self.delimiter, lineterminator=LINE_ENDINGS[line_ending])
        self.records_seen = 0
        self._columns: list[str] = []
        self._check = check

    def _encode(self, values: Iterable[str]) -> bytes:
        return self._writer.writerow(values).encode("utf-8")

    def chunks(self, records: Iterable[Mapping[str, Any]] | CsvTextRows) -> Iterator[Chunk]:
        """Yield the chunks of ``records`` lazily (each spill is complete when yielded).

        :param records: mappings, or the rows of a CSV file (:class:`~...io.readers.CsvTextRows`),
            which are re-encoded as they are (one header, no record built per row; windows of
            plain lines are copied as they are when that gives the same bytes).
        :raises ValueError: a record is not a mapping, or is larger than ``max_bytes`` on its own.
        """
        cut = _Cut(self)
        if isinstance(records, CsvTextRows):
            for block in self._text_blocks(records):
                yield from cut.lines(block) if isinstance(block, PlainLines) else cut.rows(block)
        else:
            yield from cut.rows(self._record_lines(records))
        yield from cut.end()

    # Both line sources yield (the new header's bytes when the columns change, else None; the row's
    # bytes; its values).
    def _record_lines(self, records: Iterable[Mapping[str, Any]]) -> Iterator[tuple[bytes | None, bytes, list[str]]]:
        """Mappings: the header is the keys seen so far (nested parents flattened); a new key
        changes it, which closes the chunk."""
        known: set[str] = set()
        for record in records:
            if record.__class__ is not dict and not isinstance(record, Mapping):
                raise ValueError(f"record {self.records_seen + 1} is a {type(record).__name__}, not a mapping")
            row = flatten_input(record)
            new = [key for key in row if key not in known]
            if new:
                self._columns += new
                known.update(new)
            values = [value if (value := row.get(c, "")).__class__ is str else csv_value(value)
                      for c in self._columns]
            yield (self._encode(self._columns) if new else None), self._encode(values), values

    def _text_blocks(self, rows: CsvTextRows) -> Iterator[PlainLines | Iterator[tuple[bytes | None, bytes | None, list[str]]]]:
        """CSV rows: one header (the file's), each row re-encoded with the upload's delimiter and
        line ending (the cells are not touched). A window of plain lines goes on as bytes (its
        ``data`` in the upload's delimiter and line ending, its ``lines`` as read): that is what
        encoding its rows would give, unless a cell holds the upload's delimiter (then they are)."""
        first = rows.peek()
        if first is None:
            return
        self._columns = list(rows.columns)
        yield iter([(self._encode(self._columns), None, self._columns)])
        encode = self._writer.writerow
        delimiter = self.delimiter.encode()
        crlf = self._writer.dialect.lineterminator == "\r\n"
        for block in rows.blocks():
            if isinstance(block, PlainLines):
                if delimiter == b"," or delimiter not in block.data:
                    data = block.data if delimiter == b"," else block.data.replace(b",", delimiter)
                    yield PlainLines(data.replace(b"\n", b"\r\n") if crlf else data, block.lines)
                    continue
                block = [line.decode("utf-8").split(",") for line in block.lines]
            yield ((None, encode(row).encode("utf-8"), row) for row in block)


class _Cut:
    """The chunk being filled by :meth:`CsvChunker.chunks`: rows one by one, or windows of plain lines."""

    def __init__(self, chunker: CsvChunker) -> None:
        self.chunker = chunker
        self.columns: list[str] = []
        self.spill: Any = None
        self.header = b""
        self.count = self.size = 0
        self.first = 1
        self.index = 0
        self.rejected: list[list[Any]] = []  # rows refused since the last chunk closed (see ``Chunk.rejected``)

    def _finish(self) -> Chunk:
        spill, rejected = self.spill, self.rejected
        if spill is not None:
            spill.close()
        start = rejected[0][0] if rejected and (spill is None or rejected[0][0] < self.first) else self.first
        chunk = Chunk(self.index, spill.name if spill is not None else "", self.columns, start, self.count,
                      self.size, self.chunker.delimiter, tuple(rejected))
        self.index, self.spill, self.count, self.rejected = self.index + 1, None, 0, []
        return chunk

    def _open(self, line_size: int) -> Any:
        chunker = self.chunker
        if len(self.header) + line_size > chunker.max_bytes:
            raise ValueError(f"record {chunker.records_seen + 1} needs {len(self.header) + line_size} bytes "
                             f"with its header: more than the upload limit of {chunker.max_bytes}")
        self.spill = open(os.path.join(chunker.spill_dir, f"chunk-{self.index:05d}.csv"), "wb",  # noqa: SIM115
                          buffering=SPILL_BUFFER_BYTES)
        self.spill.write(self.header)
        self.size, self.first = len(self.header), chunker.records_seen + 1
        return self.spill

    def rows(self, lines: Iterable[tuple[bytes | None, bytes | None, list[str]]]) -> Iterator[Chunk]:
        """Add rows: (the new header's bytes when the columns change, else None; the row's bytes,
        None for a header alone; its values)."""
        chunker = self.chunker
        check, max_records, max_bytes = chunker._check, chunker.max_records, chunker.max_bytes
        spill, count, size = self.spill, self.count, self.size
        for new_header, line, values in lines:
            if new_header is not None:
                if count:
                    self.count, self.size = count, size
                    yield self._finish()
                    spill, count = None, 0
                self.header, self.columns = new_header, list(chunker._columns)
                if line is None:
                    continue
            if check is not None and (error := check.problem(chunker._columns, values, line)):
                chunker.records_seen += 1
                self.rejected.append([chunker.records_seen, error, values])
                continue
            if spill is not None and (count >= max_records or size + len(line) > max_bytes):
                self.count, self.size = count, size
                yield self._finish()
                spill, count = None, 0
            if spill is None:
                spill = self._open(len(line))
                size = self.size
            spill.write(line)
            size += len(line)
            count += 1
            chunker.records_seen += 1
        self.count, self.size = count, size

    def lines(self, block: PlainLines) -> Iterator[Chunk]:
        """Add a window of plain lines (see :meth:`CsvChunker._text_blocks`), cut where rows one by
        one would be; rows one by one when a value would be refused or a row needs a chunk alone."""
        chunker = self.chunker
        data, lines = block.data, block.lines
        eol = 2 if data[-2:] == b"\r\n" else 1  # every line ends alike
        too_big = len(self.header) + len(data) > chunker.max_bytes and \
            len(self.header) + max(map(len, lines)) + eol > chunker.max_bytes
        if too_big or (chunker._check is not None and not chunker._check.plain_ok(data, lines, eol)):
            encode = chunker._writer.writerow
            yield from self.rows((None, encode(values).encode("utf-8"), values)
                                 for values in (line.decode("utf-8").split(",") for line in lines))
            return
        max_records, max_bytes = chunker.max_records, chunker.max_bytes
        done = position = 0
        while done < len(lines):
            first_line = len(lines[done]) + eol
            if self.spill is not None and (self.count >= max_records or self.size + first_line > max_bytes):
                yield self._finish()
            if self.spill is None:
                self._open(first_line)
            room = max_bytes - self.size
            if len(lines) - done <= max_records - self.count and len(data) - position <= room:
                take, end = len(lines) - done, len(data)
            else:  # the lines that fit: by count, and by bytes (line sizes summed in C)
                sizes = list(accumulate(map(add, map(len, lines[done:done + max_records - self.count]), repeat(eol))))
                take = bisect_right(sizes, room)
                end = position + sizes[take - 1]
            self.spill.write(data[position:end] if position or end < len(data) else data)
            self.size += end - position
            self.count += take
            chunker.records_seen += take
            done += take
            position = end

    def end(self) -> Iterator[Chunk]:
        if self.spill is not None or self.rejected:  # an input whose every row was refused: a chunk with no upload
            yield self._finish()
