"""Argument checks shared by the operators that save records (REST collections, Bulk ingest)."""

from __future__ import annotations

from typing import Any, Sequence


def check_save_arguments(operation: str, operations: Sequence[str], *, records: Any, source: Any,
                         external_id_field: str | None, max_failed_records: int) -> None:
    """Refuse inconsistent save arguments when the DAG is parsed, not when the task runs.

    :param operation: the requested operation.
    :param operations: the operations the API supports.
    :param records: the ``records`` argument (None when not given).
    :param source: the ``source`` argument (None when not given).
    :param external_id_field: the upsert key field.
    :param max_failed_records: rejected records tolerated.
    :raises ValueError: naming the inconsistent argument.
    """
    if operation not in operations:
        raise ValueError(f"operation must be one of {', '.join(operations)}, not {operation!r}")
    if (records is None) == (source is None):
        raise ValueError("Give exactly one of records= and source=")
    if operation == "upsert" and not external_id_field:
        raise ValueError("upsert needs external_id_field=")
    if max_failed_records < 0:
        raise ValueError("max_failed_records must be 0 or more")
