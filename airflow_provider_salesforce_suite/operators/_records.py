"""What the operators that save records share (REST collections, Bulk ingest, Pub/Sub publish):
argument checks, where result files and journals go, and opening a journal."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

if TYPE_CHECKING:
    from airflow_provider_salesforce_suite.hooks._rest.journal import SaveJournal

log = logging.getLogger(__name__)


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


def base_uri(*given: Any) -> str:
    """The first of ``given`` that is set, else the ``[salesforce_suite] failed_records_base_uri``
    option, else ``file://<tmp>/salesforce_suite/failed_records`` (without a trailing slash).

    :param given: the operator's own settings, most specific first.
    """
    base = next((str(value) for value in given if value), None)
    if not base:
        import tempfile

        from airflow.configuration import conf

        base = conf.get("salesforce_suite", "failed_records_base_uri", fallback=None) or (
            f"file://{tempfile.gettempdir()}/salesforce_suite/failed_records")
    return base.rstrip("/")


def beside_source(source: Any, source_format: str | None, kind: str, default_stem: str = "records") -> str:
    """The file beside an input file for its ``kind`` of rows, in the input's format
    (``accounts.csv.gz`` -> ``accounts.<kind>.csv.gz``).

    :param source: the input file's URI or path.
    :param source_format: its format when the suffix does not tell.
    :param kind: ``failed``, ``outcome_unknown``, ``results`` ...
    :param default_stem: the name when the input's has no stem.
    """
    from airflow_provider_salesforce_suite.io import detect_format

    fmt, gzipped = detect_format(source, source_format)
    parent, _, name = str(source).rpartition("/")
    stem = name[: -len(".gz")] if name.lower().endswith(".gz") else name
    stem = (stem.rsplit(".", 1)[0] if "." in stem else stem) or default_stem
    name = f"{stem}.{kind}.{fmt}{'.gz' if gzipped else ''}"
    return f"{parent}/{name}" if parent else name


def open_journal(context: Any, durable: bool, location: str, run_key: str, params: Mapping[str, Any]) -> SaveJournal | None:
    """The save journal of this task instance (an earlier try's, taken over), or None outside a task
    instance or with ``durable=False``.

    :param context: the task context.
    :param durable: the operator's ``durable``.
    :param location: the journal directory.
    :param run_key: ``dag_id/run_id/task_id[-map_index]``, the journal's owner.
    :param params: the parameters that decide how the input is cut and sent.
    :raises SalesforceSaveJournalError: the journal belongs to another task or other parameters.
    """
    if not durable or context.get("ti") is None:
        return None  # outside a task instance there is no retry to resume, and no key to own a journal
    from airflow_provider_salesforce_suite.hooks._rest.journal import SaveJournal

    journal = SaveJournal(location, run_key, params)
    if journal.open():
        log.info("Resuming from the journal of an earlier try in %s", journal.location)
    return journal


def push_summary(context: Any, summary: dict[str, Any]) -> None:
    """Push ``summary`` to XCom under the key ``summary`` (when run as a task instance)."""
    ti = context.get("ti")
    if ti is not None:
        ti.xcom_push(key="summary", value=summary)


def conclude(context: Any, summary: dict[str, Any], problems: list[str], journal: SaveJournal | None,
             error: Callable[[str, dict[str, Any]], Exception]) -> None:
    """End a save: fail with ``problems`` (the summary pushed first, the journal kept for the retry), or
    drop the journal (nothing is left for a retry to resume).

    :param context: the task context.
    :param summary: the counts.
    :param problems: why the task fails (empty: it succeeds).
    :param journal: the run's journal, if any.
    :param error: the exception class, called with the message and the summary.
    """
    if problems:
        push_summary(context, summary)
        raise error(". ".join(problems), summary)
    if journal is not None:
        try:
            journal.remove()
        except OSError as exc:  # a leftover journal is harmless: the next run has its own
            log.warning("Could not remove the journal %s: %s", journal.location, exc)
