"""File formats, compression and locations of record files."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal, Union

from airflow_provider_salesforce_suite.core.errors import SalesforceSuiteError
from airflow_provider_salesforce_suite.core.extras import require_extra

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

FileFormat = Literal["csv", "jsonl", "parquet"]
Source = Union[str, "ObjectStoragePath", os.PathLike]

FORMATS: tuple[str, ...] = ("csv", "jsonl", "parquet")
_SUFFIXES: dict[str, str] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
# Parquet compresses internally: a .gz wrapper around it is not supported.
_GZIP_FORMATS = ("csv", "jsonl")


class RecordFileError(SalesforceSuiteError, ValueError):
    """A record file cannot be read or written: unknown format, malformed content (with its line)."""


def to_path(location: Source) -> ObjectStoragePath:
    """``location`` as an ``ObjectStoragePath`` (``file://``, ``s3://``, ``gs://``, a local path...).

    :param location: a URI, a local path or an ``ObjectStoragePath``.
    """
    from airflow.sdk import ObjectStoragePath

    if isinstance(location, ObjectStoragePath):
        return location
    return ObjectStoragePath(os.fspath(location) if isinstance(location, os.PathLike) else str(location))


def detect_format(location: Source, format: str | None = None) -> tuple[FileFormat, bool]:
    """``(format, gzipped)`` of a file: ``format`` when given, else from the name's suffixes.

    ``.csv``, ``.jsonl``/``.ndjson`` and ``.parquet``; ``.gz`` after ``.csv`` or ``.jsonl`` means
    gzip. An explicit ``format`` may itself end in ``.gz`` (``"csv.gz"``).

    :param location: the file's URI or path (only its name is used).
    :param format: ``csv``, ``jsonl``, ``parquet`` (optionally ``+ ".gz"``), or None.
    :raises RecordFileError: the format is unknown or cannot be gzipped.
    :raises SalesforceMissingExtraError: Parquet without the ``parquet`` extra.
    """
    name = str(location).rsplit("/", 1)[-1].lower()
    gzipped = name.endswith(".gz")
    if format:
        fmt = format.lower().lstrip(".")
        if fmt.endswith(".gz"):
            fmt, gzipped = fmt[: -len(".gz")], True
        fmt = "jsonl" if fmt in ("ndjson", "json_lines", "jsonlines") else fmt
        if fmt not in FORMATS:
            raise RecordFileError(f"Unknown record file format {format!r}; expected one of {', '.join(FORMATS)}")
    else:
        stem = name[: -len(".gz")] if gzipped else name
        suffix = "." + stem.rsplit(".", 1)[-1] if "." in stem else ""
        if suffix not in _SUFFIXES:
            raise RecordFileError(
                f"Cannot tell the format of {name!r} from its suffix; use .csv, .jsonl, .ndjson or .parquet "
                "(.gz for csv/jsonl) or pass format="
            )
        fmt = _SUFFIXES[suffix]
    if gzipped and fmt not in _GZIP_FORMATS:
        raise RecordFileError(f"gzip is supported for csv and jsonl files, not {fmt}")
    if fmt == "parquet":
        # Callers detect the format before any Salesforce work: fail here, not after an extract.
        require_extra("parquet", f"Reading or writing Parquet ({name})")
    return fmt, gzipped  # type: ignore[return-value]
