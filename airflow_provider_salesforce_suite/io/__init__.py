"""Streamed record files (CSV, JSON Lines, Parquet) on any ``ObjectStoragePath`` location.

Shared by the REST and Bulk operators: :func:`iter_records` reads input files lazily
(:class:`CsvTextRows` reads a CSV file's rows as text, for Bulk uploads),
:class:`RecordWriter` writes query results page by page, :class:`FailedRecordsWriter` writes the
rows Salesforce rejected with ``sf__Error``/``sf__Fields`` columns.
"""

from __future__ import annotations

from airflow_provider_salesforce_suite.io.failures import FailedRecordsWriter, format_errors
from airflow_provider_salesforce_suite.io.flatten import flatten_record, soql_columns, strip_attributes
from airflow_provider_salesforce_suite.io.formats import RecordFileError, detect_format, to_path
from airflow_provider_salesforce_suite.io.readers import CsvTextRows, iter_records
from airflow_provider_salesforce_suite.io.writers import RecordWriter

__all__ = [
    "CsvTextRows",
    "FailedRecordsWriter",
    "RecordFileError",
    "RecordWriter",
    "detect_format",
    "flatten_record",
    "format_errors",
    "iter_records",
    "soql_columns",
    "strip_attributes",
    "to_path",
]
