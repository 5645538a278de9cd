"""Page-by-page writers of record files (CSV, JSON Lines, Parquet) in constant memory.

Column rule: the columns are, in order, ``columns=`` when given, else the select list of
``soql=`` (see :func:`soql_columns`), else the keys of the first page; keys are matched to them
case-insensitively and take Salesforce's casing from the first page. A key seen later that is not
a column yet (a parent that was null so far, a polymorphic field) is appended as a new column:
earlier rows get nulls in it. A column that turns out to be a parent relationship (``Account``
once ``Account.Name`` exists) is dropped. Rows are spooled to a local temporary file and the
destination is written once, on a successful close, with the final header; after an exception
nothing is written.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from typing import IO, Any, Iterable, Iterator, Mapping, Sequence

from airflow_provider_salesforce_suite.io.flatten import flatten_record, soql_columns
from airflow_provider_salesforce_suite.io.formats import RecordFileError, Source, detect_format, to_path
from airflow_provider_salesforce_suite.io.readers import allow_large_csv_fields

log = logging.getLogger(__name__)

DEFAULT_ROW_GROUP_ROWS = 10_000
_COPY_CHUNK = 1 << 18  # spool -> destination copy size: bounds the close-time memory
# Salesforce field types with a natural Arrow type; any other type is written as a string.
_ARROW_TYPES = {"boolean": "bool_", "int": "int64", "long": "int64", "double": "float64",
                "currency": "float64", "percent": "float64"}


def _from_text(kind: str, value: Any) -> Any:
    """A typed column's value; text (CSV sources such as Bulk results) is parsed, '' is null."""
    if not isinstance(value, str):
        return value
    if value == "":
        return None
    if kind == "bool_":
        lowered = value.lower()
        if lowered not in ("true", "false", "1", "0"):
            raise ValueError(f"{value!r} is not a boolean")
        return lowered in ("true", "1")
    return int(value) if kind == "int64" else float(value)


def _text(value: Any) -> str | None:
    """A value as CSV/Parquet text: JSON for lists and objects, ``true``/``false`` for booleans."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


class RecordWriter:
    """Write records to ``destination`` as pages arrive; use as a context manager.

    :param destination: URI, local path or ``ObjectStoragePath`` (parents are created).
    :param format: ``csv``, ``jsonl`` or ``parquet`` (``+ ".gz"`` for gzip); default from the suffix.
    :param columns: the columns, in order (see the module's column rule).
    :param soql: the query whose rows are written, for the column order when ``columns`` is None.
    :param field_types: Parquet only: column -> Salesforce field type (e.g. from ``describe``);
        ``boolean``, ``int``, ``double``, ``currency`` and ``percent`` columns get Arrow types,
        every other column is a string column (stable across pages whatever the values).
    :param row_group_rows: Parquet rows per row group (the writer holds at most this many rows).
    :param spool_dir: local directory of the temporary spool file (default: the system's).
    """

    def __init__(
        self,
        destination: Source,
        format: str | None = None,
        *,
        columns: Sequence[str] | None = None,
        soql: str | None = None,
        field_types: Mapping[str, str] | None = None,
        row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
        spool_dir: str | None = None,
    ) -> None:
        self.path = to_path(destination)
        self.format, self.gzipped = detect_format(destination, format)
        if row_group_rows < 1:
            raise ValueError("row_group_rows must be at least 1")
        known = list(columns) if columns is not None else (soql_columns(soql) if soql else None)
        self.columns: list[str] = []
        self._index: dict[str, str] = {}
        for column in known or []:
            self._add_column(column)
        self._casing_open = True  # the first page may still fix the columns' casing
        self.rows = 0
        self._field_types = {k.lower(): v.lower() for k, v in (field_types or {}).items()}
        self._row_group_rows = row_group_rows
        self._spool_dir = spool_dir
        self._grown = False
        self._closed = False
        # CSV/JSONL: one text spool; Parquet: parts, a new one whenever the columns grow.
        self._spool: IO[str] | None = None
        self._csv: Any = None
        self._parts: list[tuple[str, list[str]]] = []
        self._parquet: Any = None
        self._buffer: list[dict[str, Any]] = []

    # -- public --------------------------------------------------------------------------------------
    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    @property
    def output_columns(self) -> list[str]:
        """The destination's columns (parent relationship columns dropped), as far as known now."""
        return self._final_columns()

    @property
    def uri(self) -> str:
        """The destination as a string."""
        return str(self.path)

    def write_page(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Append one page of records (REST records, or plain dicts); returns the rows written.

        :param records: the page.
        """
        if self._closed:
            raise RecordFileError(f"{self.uri}: the writer is closed")
        flats = [flatten_record(record) for record in records]
        if self._casing_open and flats:
            for flat in flats:
                for key in flat:
                    self._adopt_casing(key)
            self._casing_open = False
        rows = [self._row(flat) for flat in flats]
        if rows:
            if self.format == "parquet":
                self._write_parquet(rows)
            else:
                self._write_text(rows)
            self.rows += len(rows)
        return len(rows)

    def write_rows(self, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
        """Append flat rows given as value lists aligned with ``columns``; returns the rows written.

        The fast path for rows that are already text (e.g. CSV cells): CSV files take them as they
        are, without building a record per row (None and ``""`` are empty cells); JSON Lines and
        Parquet get a record per row.

        :param columns: the rows' columns, in order (a column not known yet is added).
        :param rows: the rows.
        """
        if self.format != "csv":
            return self.write_page([dict(zip(columns, row)) for row in rows])
        if self._closed:
            raise RecordFileError(f"{self.uri}: the writer is closed")
        if not rows:
            return 0
        positions = self._positions(columns)
        width = len(self.columns)
        if positions != list(range(width)):
            placed = []
            for row in rows:
                line: list[Any] = [None] * width
                for position, value in zip(positions, row):
                    line[position] = value
                placed.append(line)
            rows = placed
        self._text_spool().writerows(rows)
        self.rows += len(rows)
        return len(rows)

    def write_csv(self, columns: Sequence[str], data: bytes, rows: int) -> int:
        """Append CSV lines as they are: what :meth:`write_rows` would write for the same rows
        (the caller vouches for it: comma-separated, quoted where ``csv`` would, ``\\n`` line
        endings), without a value handled in Python. Lines whose columns are not the file's
        columns in order are parsed and placed by :meth:`write_rows`.

        :param columns: the lines' columns, in order.
        :param data: the lines (UTF-8, each ending with ``\\n``).
        :param rows: how many rows ``data`` holds.
        """
        if self.format == "csv" and not self._closed and rows and \
                self._positions(columns) == list(range(len(self.columns))):
            self._text_spool()
            text = self._spool.file  # type: ignore[union-attr]
            text.flush()
            text.buffer.write(data)
            self.rows += rows
            return rows
        allow_large_csv_fields()
        return self.write_rows(columns, list(csv.reader(io.StringIO(data.decode("utf-8"), newline=""))))

    def _positions(self, columns: Sequence[str]) -> list[int]:
        """Where ``columns`` go among the file's columns (the first rows fix their casing; a new
        column is added)."""
        if self._casing_open:
            for column in columns:
                self._adopt_casing(column)
            self._casing_open = False
        for column in columns:
            if column.lower() not in self._index:
                self._grown = self._grown or bool(self.rows)  # spooled rows lack it: rewrite at close
                self._add_column(column)
        return [self.columns.index(self._index[column.lower()]) for column in columns]

    def close(self) -> None:
        """Write the destination from the spool (an empty file with a header when no rows)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.format == "parquet":
                self._finish_parquet()
            else:
                self._finish_text()
        finally:
            self._cleanup()
        log.info("Wrote %d rows (%d columns) to %s", self.rows, len(self._final_columns()), self.uri)

    def abort(self) -> None:
        """Discard what was written; the destination is not touched."""
        self._closed = True
        self._cleanup()

    # -- columns -------------------------------------------------------------------------------------
    def _add_column(self, column: str) -> None:
        self.columns.append(column)
        self._index[column.lower()] = column

    def _adopt_casing(self, key: str) -> None:
        known = self._index.get(key.lower())
        if known is not None and known != key:
            self.columns[self.columns.index(known)] = key
            self._index[key.lower()] = key

    def _is_parent(self, key: str) -> bool:
        prefix = key.lower() + "."
        return any(column.startswith(prefix) for column in self._index)

    def _row(self, flat: Mapping[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for key, value in flat.items():
            column = self._index.get(key.lower())
            if column is None:
                if value is None and self._is_parent(key):
                    continue  # a null parent: its known sub-columns stay null
                self._grown = self._grown or bool(self.rows)  # spooled rows lack it: rewrite at close
                self._add_column(key)
                column = key
            row[column] = value
        return row

    def _final_columns(self) -> list[str]:
        return [c for c in self.columns if not self._is_parent(c)]

    # -- spools --------------------------------------------------------------------------------------
    def _new_spool(self, suffix: str, text: bool) -> IO[Any]:
        return tempfile.NamedTemporaryFile(
            "w+" if text else "w+b", suffix=suffix, dir=self._spool_dir, delete=False,
            **({"encoding": "utf-8", "newline": ""} if text else {}),
        )

    def _cleanup(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        if self._spool is not None:
            self._spool.close()
            os.unlink(self._spool.name)
            self._spool = None
        for part, _ in self._parts:
            if os.path.exists(part):
                os.unlink(part)
        self._parts = []
        self._buffer = []

    @contextmanager
    def _open_destination(self) -> Iterator[IO[bytes]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("wb") as raw:
            if self.gzipped:
                with gzip.GzipFile(fileobj=raw, mode="wb") as zipped:
                    yield zipped  # type: ignore[misc]
            else:
                yield raw

    # -- CSV / JSON Lines ------------------------------------------------------------------------------
    def _text_spool(self) -> Any:
        """The CSV writer over the text spool (created on first use)."""
        if self._spool is None:
            self._spool = self._new_spool("." + self.format, text=True)
            # the file itself, not the temporary-file wrapper: it adds a call per row written
            self._csv = csv.writer(self._spool.file, lineterminator="\n")
        return self._csv

    def _write_text(self, rows: list[dict[str, Any]]) -> None:
        writer = self._text_spool()
        if self.format == "csv":
            # Rows are written against the columns known now; later columns are appended at the end.
            writer.writerows([[_text(row.get(c)) for c in self.columns] for row in rows])
        else:
            columns = self._final_columns()
            self._spool.writelines(
                json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False, default=str) + "\n" for row in rows
            )

    def _finish_text(self) -> None:
        columns = self._final_columns()
        with self._open_destination() as out:
            text = _TextOut(out)
            if self.format == "csv":
                writer = csv.writer(text, lineterminator="\n")
                writer.writerow(columns)
            if self._spool is None:
                return
            self._spool.flush()
            self._spool.seek(0)
            if self.format == "jsonl" or columns == self.columns and not self._grown:
                text.flush()
                spooled = self._spool.file.buffer  # the spool's UTF-8 bytes, copied as they are
                spooled.seek(0)
                if self.gzipped or not _copy_in_kernel(spooled, out):
                    shutil.copyfileobj(spooled, out, _COPY_CHUNK)
                return
            keep = [self.columns.index(c) for c in columns]
            width = len(self.columns)
            allow_large_csv_fields()  # the spool holds whatever was written, refused oversize values too
            for spooled in csv.reader(self._spool):
                spooled += [""] * (width - len(spooled))
                writer.writerow([spooled[i] for i in keep])

    # -- Parquet -----------------------------------------------------------------------------------------
    def _arrow_type(self, column: str) -> Any:
        import pyarrow as pa

        return getattr(pa, _ARROW_TYPES.get(self._field_types.get(column.lower(), ""), "string"))()

    def _write_parquet(self, rows: list[dict[str, Any]]) -> None:
        if self._parquet is not None and len(self._parts[-1][1]) != len(self.columns):
            self._flush_parquet()
            self._close_part()
        self._buffer.extend(rows)
        while len(self._buffer) >= self._row_group_rows:
            self._flush_parquet(self._row_group_rows)

    def _close_part(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None

    def _flush_parquet(self, limit: int | None = None) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        chunk = self._buffer[:limit] if limit else self._buffer
        self._buffer = self._buffer[len(chunk):]
        if self._parquet is None:
            spool = self._new_spool(".parquet", text=False)
            spool.close()
            columns = list(self.columns)
            schema = pa.schema([(c, self._arrow_type(c)) for c in columns])
            self._parquet = pq.ParquetWriter(spool.name, schema)
            self._parts.append((spool.name, columns))
        if not chunk:
            return
        columns = self._parts[-1][1]
        schema = self._parquet.schema
        arrays = []
        for column, field in zip(columns, schema):
            kind = _ARROW_TYPES.get(self._field_types.get(column.lower(), ""))
            try:
                values = [_from_text(kind, row.get(column)) if kind else _text(row.get(column)) for row in chunk]
                arrays.append(pa.array(values, type=field.type))
            except (pa.ArrowException, TypeError, ValueError) as exc:
                raise RecordFileError(f"{self.uri}: column {column!r} does not fit {field.type}: {exc}") from None
        self._parquet.write_table(pa.Table.from_arrays(arrays, schema=schema), row_group_size=len(chunk))

    def _finish_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._flush_parquet()
        self._close_part()
        columns = self._final_columns()
        with self._open_destination() as out:
            if len(self._parts) == 1 and self._parts[0][1] == columns:
                with open(self._parts[0][0], "rb") as part:
                    shutil.copyfileobj(part, out, _COPY_CHUNK)
                return
            schema = pa.schema([(c, self._arrow_type(c)) for c in columns])
            with pq.ParquetWriter(out, schema) as writer:
                for part, _ in self._parts:
                    source = pq.ParquetFile(part)
                    for group in range(source.num_row_groups):
                        table = source.read_row_group(group)
                        arrays = [table.column(c) if c in table.column_names else pa.nulls(table.num_rows, schema.field(c).type)
                                  for c in columns]
                        writer.write_table(pa.Table.from_arrays(arrays, schema=schema))


def _copy_in_kernel(source: IO[bytes], out: IO[bytes]) -> bool:
    """Copy the rest of ``source`` to a local file ``out`` inside the kernel (no pass of the bytes
    through Python: a large results file costs a copy of its pages, not a read and a write of
    each); False, with nothing copied, when either side is not a plain local file."""
    try:
        source_fd, out_fd = source.fileno(), out.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return False
    position = source.tell()
    left = os.fstat(source_fd).st_size - position
    out.flush()  # what ``out`` buffered (the header) goes first
    sent = 0
    try:
        while sent < left:
            done = os.sendfile(out_fd, source_fd, position + sent, left - sent)
            if not done:
                break
            sent += done
    except OSError:
        if sent:
            raise  # part of the bytes went out: no clean fallback
        return False
    return True


class _TextOut:
    """A text sink over a binary stream for ``csv.writer`` (UTF-8)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw

    def write(self, text: str) -> int:
        return self._raw.write(text.encode("utf-8"))

    def flush(self) -> None:
        pass
