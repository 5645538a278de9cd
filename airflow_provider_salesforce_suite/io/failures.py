"""The failed-records file: rejected input rows with ``sf__Error`` and ``sf__Fields`` columns.

The same convention as the Bulk API's failed results: one row per rejected input record, its
fields as they were sent, ``sf__Error`` = ``errorCode: message`` (several errors joined by
``"; "``) and ``sf__Fields`` = the fields Salesforce named, comma-separated.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from airflow_provider_salesforce_suite.io.formats import Source
from airflow_provider_salesforce_suite.io.writers import RecordWriter

ERROR_COLUMN = "sf__Error"
FIELDS_COLUMN = "sf__Fields"


def format_errors(errors: Iterable[Mapping[str, Any]]) -> tuple[str, str]:
    """``(sf__Error, sf__Fields)`` texts of Salesforce's error objects.

    :param errors: ``[{"statusCode"|"errorCode": ..., "message": ..., "fields": [...]}]``.
    """
    messages, fields = [], []
    for error in errors:
        code = error.get("statusCode") or error.get("errorCode") or "UNKNOWN_ERROR"
        messages.append(f"{code}: {error.get('message', '')}")
        fields += [f for f in error.get("fields") or [] if f not in fields]
    return "; ".join(messages), ",".join(fields)


class FailedRecordsWriter(RecordWriter):
    """A :class:`RecordWriter` whose rows are ``sf__Error``, ``sf__Fields``, then the input fields.

    :param destination: URI, local path or ``ObjectStoragePath`` of the failures file.
    :param format: ``csv``, ``jsonl`` or ``parquet``; default from the suffix.
    """

    def __init__(self, destination: Source, format: str | None = None) -> None:
        super().__init__(destination, format, columns=[ERROR_COLUMN, FIELDS_COLUMN])

    def write_failure(self, record: Mapping[str, Any] | str, errors: Iterable[Mapping[str, Any]]) -> None:
        """Append one rejected record.

        :param record: the input record (a bare id for deletes is written as ``Id``).
        :param errors: Salesforce's errors for it.
        """
        message, fields = format_errors(errors)
        values = {"Id": record} if isinstance(record, str) else record
        self.write_page([{ERROR_COLUMN: message, FIELDS_COLUMN: fields, **values}])
