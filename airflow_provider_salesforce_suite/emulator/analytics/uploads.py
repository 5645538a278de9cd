"""External data uploads: an ``InsightsExternalData`` header plus ``InsightsExternalDataPart``
rows become a dataset version once the header's ``Action`` is set to ``Process``.

Parts are concatenated by ``PartNumber`` (each may be gzip, as Salesforce accepts), spooled to a
temporary file and read row by row, so a large upload never sits whole in memory.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import shutil
import tempfile
import zlib
from typing import IO, TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from ..store import Store

OPERATIONS = ("Overwrite", "Append", "Upsert", "Delete")


class UploadFailed(Exception):
    """The upload cannot be processed; ``str(exc)`` is the ``StatusMessage``."""


def header_record(store: Store, record_id: str, api_version: str) -> dict[str, Any]:
    """The ``InsightsExternalData`` fields processing needs (``MetadataJson`` decoded).

    :param store: the org store.
    :param record_id: the header id.
    :param api_version: for the store's retrieve.
    """
    record = store.retrieve("InsightsExternalData", record_id,
                            ["EdgemartAlias", "EdgemartLabel", "EdgemartContainer", "Operation", "Format"],
                            api_version=api_version)
    raw = b"".join(store.blob_chunks("InsightsExternalData", record_id, "MetadataJson")) \
        if store.blob_length("InsightsExternalData", record_id, "MetadataJson") else b""
    record["metadata"] = raw
    return record


def spool_parts(store: Store, record_id: str) -> IO[bytes]:
    """The parts' bytes in ``PartNumber`` order (gunzipped when gzip), in a temporary file.

    :param store: the org store.
    :param record_id: the header id.
    :raises UploadFailed: no part was uploaded, or a gzip part is corrupt.
    """
    _, parts = store.bulk_query("SELECT Id, PartNumber FROM InsightsExternalDataPart "
                                f"WHERE InsightsExternalDataId = '{record_id}' ORDER BY PartNumber")
    if not parts:
        raise UploadFailed("No data parts found: add InsightsExternalDataPart records before setting Action to Process")
    raw = tempfile.TemporaryFile()
    for part_id, _number in parts:
        for chunk in store.blob_chunks("InsightsExternalDataPart", part_id, "DataFile"):
            raw.write(chunk)
    raw.seek(0)
    if raw.read(2) != b"\x1f\x8b":
        raw.seek(0)
        return raw
    # The parts split one gzip file (or each is a gzip member: the concatenation is still gzip).
    raw.seek(0)
    spool = tempfile.TemporaryFile()
    try:
        with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
            shutil.copyfileobj(unzipped, spool, 1024 * 1024)
    except (OSError, EOFError, zlib.error) as exc:
        spool.close()
        raise UploadFailed(f"The data parts are not valid gzip data: {exc}") from None
    finally:
        raw.close()
    spool.seek(0)
    return spool


def parse_metadata(raw: bytes, header: list[str]) -> tuple[dict[str, str], list[dict[str, Any]], str | None, str]:
    """Columns, fields, unique id field and delimiter from the metadata JSON (or the header).

    Without metadata every column is a Text dimension. With metadata, the CSV header must name
    exactly the metadata's fields, in order.

    :param raw: the decoded ``MetadataJson`` (may be empty).
    :param header: the CSV header.
    :raises UploadFailed: malformed metadata, or metadata that does not match the CSV.
    """
    if not raw:
        fields = [{"name": h, "fullyQualifiedName": h, "label": h, "type": "Text"} for h in header]
        return {h: "string" for h in header}, fields, None, ","
    try:
        meta = json.loads(raw.decode("utf-8"))
        fields = meta["objects"][0]["fields"]
        delimiter = (meta.get("fileFormat") or {}).get("fieldsDelimitedBy", ",")
    except (ValueError, KeyError, IndexError, TypeError, UnicodeDecodeError) as exc:
        raise UploadFailed(f"Error parsing metadata JSON: {type(exc).__name__}: {exc}") from None
    names = [f.get("name") or f.get("fullyQualifiedName") for f in fields]
    if names != header:
        missing = [n for n in names if n not in header]
        extra = [h for h in header if h not in names]
        raise UploadFailed(f"Metadata does not match the data file: field(s) in metadata not in the file header: "
                           f"{missing or 'none'}; column(s) in the file header not in metadata: {extra or 'none'}"
                           + ("" if missing or extra else "; the order differs"))
    columns: dict[str, str] = {}
    for f, name in zip(fields, names):
        kind = str(f.get("type", "Text"))
        if kind not in ("Text", "Numeric", "Date"):
            raise UploadFailed(f"Unsupported type '{kind}' for field '{name}' in metadata")
        columns[name] = "numeric" if kind == "Numeric" else "string"
    unique = next((n for f, n in zip(fields, names) if f.get("isUniqueId")), None)
    return columns, fields, unique, delimiter


def metadata_delimiter(raw: bytes) -> str:
    """The ``fileFormat.fieldsDelimitedBy`` of the metadata JSON (default ``,``).

    :param raw: the decoded ``MetadataJson`` (may be empty or malformed: parsing reports that later).
    """
    try:
        return str((json.loads(raw.decode("utf-8")).get("fileFormat") or {}).get("fieldsDelimitedBy", ","))
    except (ValueError, AttributeError, UnicodeDecodeError):
        return ","


def read_header(spool: IO[bytes], delimiter_hint: str = ",") -> tuple[list[str], Iterator[list[str]], Any]:
    """The CSV header and a row iterator over the spooled file.

    :param spool: the spooled CSV bytes.
    :param delimiter_hint: the delimiter.
    """
    text = io.TextIOWrapper(spool, encoding="utf-8-sig", newline="")
    reader = csv.reader(text, delimiter=delimiter_hint)
    header = next(reader, None)
    if not header:
        raise UploadFailed("The data file is empty: no header row")
    return header, reader, text


def typed_rows(reader: Iterator[list[str]], columns: dict[str, str], warnings: list[str]) -> Iterator[list[Any]]:
    """Rows with measures as numbers; bad rows are skipped with a warning.

    :param reader: CSV rows.
    :param columns: column -> type.
    :param warnings: receives one line per skipped row (the first few kept).
    """
    kinds = list(columns.values())
    width = len(kinds)
    for number, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != width:
            _warn(warnings, f"Row {number}: {len(row)} values for {width} fields")
            continue
        try:
            yield [(float(v) if v != "" else None) if k == "numeric" else v for v, k in zip(row, kinds)]
        except ValueError:
            _warn(warnings, f"Row {number}: a Numeric field has a non-numeric value")


def _warn(warnings: list[str], line: str) -> None:
    warnings.append(line)
