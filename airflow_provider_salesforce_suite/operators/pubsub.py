"""Pub/Sub API operators: publish platform events from XCom or a file.

The :class:`~airflow_provider_salesforce_suite.hooks.pubsub.SalesforcePubSubHook` is built in
``execute``; ``__init__`` only checks arguments, and nothing here imports gRPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from hashlib import blake2b
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

from airflow.sdk import BaseOperator

from airflow_provider_salesforce_suite.core.errors import SalesforceSuiteError
from airflow_provider_salesforce_suite.hooks.pubsub import SalesforcePubSubHook
from airflow_provider_salesforce_suite.operators._records import (
    base_uri,
    beside_source,
    conclude,
    open_journal,
    push_summary,
)
from airflow_provider_salesforce_suite.operators.rest import SalesforceRecordsFailedError, _run_part

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider_salesforce_suite.hooks._rest.journal import SaveJournal

log = logging.getLogger(__name__)

#: Columns of the results file: one row per input event.
RESULT_COLUMNS = ["index", "correlation_key", "replay_id", "error_code", "error_message"]
MAX_BATCH_SIZE = 200


class SalesforceEventsPublishFailedError(SalesforceRecordsFailedError):
    """Events failed (more than ``max_failed_events``), were sent without an answer, or the input turned
    bad part-way; ``summary`` has the counts (also pushed to XCom under the key ``summary``)."""


class SalesforcePublishEventsOperator(BaseOperator):
    """Publish platform events over the Pub/Sub API (``PublishStream``, batched, several batches in
    flight), from a list of dicts (e.g. XCom) or a CSV / JSON Lines / Parquet file read lazily from any
    ``ObjectStoragePath`` location.

    Every event is checked against the topic's schema first (CSV text is converted to the field's type;
    ``CreatedDate`` and ``CreatedById`` are filled); one that does not fit is not sent and counts as
    failed (``SCHEMA_MISMATCH``). Each event's outcome goes to the results file (columns
    ``index, correlation_key, replay_id, error_code, error_message``; ``replay_id`` is base64 text). The
    return value (XCom) is ``{"topic", "events", "published", "failed", "unknown", "results_uri"}``. The
    task fails when more than ``max_failed_events`` failed, or when any event's outcome is unknown.

    Retry-safe: each batch's outcome is noted in a journal under ``journal_base_uri`` (the same directory
    on every try), so a retry does not publish again the events an earlier try published. A batch sent
    without an answer (a lost reply, a worker killed mid-call) is never sent again: its events are
    reported as ``OUTCOME_UNKNOWN`` (``unknown`` in the summary) and the task fails saying so.

    :param topic: the platform event's topic, ``/event/<Name>__e``.
    :param events: the events (a list of dicts of field values). Exactly one of ``events`` and ``source``.
    :param source: URI, path or ``ObjectStoragePath`` of a ``.csv``, ``.jsonl``/``.ndjson`` or ``.parquet``
        file (``.gz`` for csv/jsonl), one event per row; read lazily, never whole.
    :param source_format: the source's format when its suffix does not tell.
    :param correlation_key_field: a field whose value is each event's id (echoed as its correlation key);
        left out of the event when the schema has no such field. Default: ``<run digest>-<index>``.
    :param batch_size: events per request (at most 200).
    :param max_in_flight: requests sent and not yet answered.
    :param max_failed_events: failed events tolerated before the task fails (default 0).
    :param results_uri: where to write the results file. Default: beside ``source`` (``orders.csv`` ->
        ``orders.results.csv``), or ``<results_base_uri>/<dag_id>/<run_id>/<task_id>.results.csv``.
    :param results_format: ``csv``, ``jsonl`` or ``parquet``; default from the suffix.
    :param results_base_uri: base of the default results location for ``events`` input; default the
        ``[salesforce_suite] failed_records_base_uri`` option, else ``file://<tmp>/salesforce_suite/failed_records``.
    :param journal_base_uri: base of the journal directory ``<journal_base_uri>/<dag_id>/<run_id>/<task_id>.journal``;
        default as ``results_base_uri``. Removed when the task succeeds.
    :param durable: keep the journal (default; only when run as a task instance). ``False``: a retry
        publishes everything again.
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :param api_version: overrides the connection's API version.
    :param pubsub_endpoint: overrides the connection's ``pubsub_endpoint`` extra.
    """

    template_fields: Sequence[str] = (
        "salesforce_conn_id", "topic", "events", "source", "source_format", "correlation_key_field",
        "results_uri", "results_base_uri", "journal_base_uri",
    )

    def __init__(
        self,
        *,
        topic: str,
        events: Iterable[Mapping[str, Any]] | None = None,
        source: str | ObjectStoragePath | None = None,
        source_format: str | None = None,
        correlation_key_field: str | None = None,
        batch_size: int = MAX_BATCH_SIZE,
        max_in_flight: int = 4,
        max_failed_events: int = 0,
        results_uri: str | None = None,
        results_format: str | None = None,
        results_base_uri: str | None = None,
        journal_base_uri: str | None = None,
        durable: bool = True,
        salesforce_conn_id: str = SalesforcePubSubHook.default_conn_name,
        api_version: str | None = None,
        pubsub_endpoint: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (events is None) == (source is None):
            raise ValueError("Give exactly one of events= and source=")
        if isinstance(topic, str) and "{{" not in topic and not topic.startswith("/event/"):
            raise ValueError(f"topic must be a platform event topic like '/event/Order_Event__e', got {topic!r}")
        if not 0 < batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be 1-{MAX_BATCH_SIZE}, got {batch_size}")
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be 1 or more, got {max_in_flight}")
        if max_failed_events < 0:
            raise ValueError("max_failed_events must be 0 or more")
        self.topic = topic
        self.events = events
        self.source = source
        self.source_format = source_format
        self.correlation_key_field = correlation_key_field
        self.batch_size = batch_size
        self.max_in_flight = max_in_flight
        self.max_failed_events = max_failed_events
        self.results_uri = results_uri
        self.results_format = results_format
        self.results_base_uri = results_base_uri
        self.journal_base_uri = journal_base_uri
        self.durable = durable
        self.salesforce_conn_id = salesforce_conn_id
        self.api_version = api_version
        self.pubsub_endpoint = pubsub_endpoint

    def _hook(self) -> SalesforcePubSubHook:
        return SalesforcePubSubHook(self.salesforce_conn_id, api_version=self.api_version,
                                    pubsub_endpoint=self.pubsub_endpoint)

    def _input(self) -> Iterator[Mapping[str, Any]]:
        if self.source is not None:
            from airflow_provider_salesforce_suite.io import iter_records

            return iter_records(self.source, format=self.source_format)
        if isinstance(self.events, (str, bytes, Mapping)) or not isinstance(self.events, Iterable):
            raise TypeError(
                f"events must be a list of dicts, got {type(self.events).__name__} (for a file use source=; for "
                "Jinja-templated XCom set render_template_as_native_obj=True on the DAG)")
        return iter(self.events)

    def _results_location(self, run_key: str) -> str:
        if self.results_uri:
            return str(self.results_uri)
        if self.source is not None:
            return beside_source(self.source, self.source_format, "results", "events")
        return f"{base_uri(self.results_base_uri)}/{run_key}.results.csv"

    def _journal(self, context: Context, run_key: str) -> SaveJournal | None:
        params = {"publish": self.topic, "batch_size": self.batch_size,
                  "correlation_key_field": self.correlation_key_field}
        location = f"{base_uri(self.journal_base_uri, self.results_base_uri)}/{run_key}.journal"
        return open_journal(context, self.durable, location, run_key, params)

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_salesforce_suite.io import RecordWriter

        run_key = _run_part(context)
        journal = self._journal(context, run_key)
        key_prefix = None if self.correlation_key_field else blake2b(run_key.encode("utf-8"), digest_size=6).hexdigest()
        summary: dict[str, Any] = {"topic": self.topic, "events": 0, "published": 0, "failed": 0, "unknown": 0,
                                   "results_uri": None}
        hook = self._hook()
        events = self._input()
        writer = RecordWriter(self._results_location(run_key), self.results_format, columns=RESULT_COLUMNS)

        async def publish() -> None:
            stream = hook.publish_stream(
                self.topic, events, batch_size=self.batch_size, max_in_flight=self.max_in_flight,
                correlation_key_field=self.correlation_key_field, key_prefix=key_prefix, report_invalid=True,
                journal=journal)
            try:
                async with contextlib.aclosing(stream) as outcomes:
                    async for outcome in outcomes:
                        if outcome.index != summary["events"]:
                            raise SalesforceSuiteError(f"outcome {outcome.index} arrived for input event {summary['events']}")
                        summary["events"] += 1
                        kind = "published" if outcome.ok else "unknown" if outcome.unknown else "failed"
                        summary[kind] += 1
                        writer.write_page([outcome.to_dict()])
            finally:
                await hook.aclose()

        stopped: Exception | None = None
        try:
            asyncio.run(publish())
        except Exception as exc:
            stopped = exc
        finally:
            writer.close()  # what was written so far is kept even when the run stops early
            summary["results_uri"] = writer.uri
        if stopped is not None:
            push_summary(context, summary)
            if summary["events"] == 0:
                raise stopped
            then = ("A retry resumes after them (the journal is in " + journal.location + ")" if journal is not None
                    else "durable=False: a retry publishes them again")
            raise SalesforceEventsPublishFailedError(
                f"Publishing to {self.topic} stopped at input event {summary['events'] + 1}: {stopped}. By then "
                f"{summary['events']} events had been answered ({summary['published']} published, {summary['failed']} "
                f"failed, {summary['unknown']} outcome unknown; see {summary['results_uri']}); nothing after them was "
                f"sent. {then}", summary) from stopped
        if journal is not None:
            journal.check_read(summary["events"])
        assert summary["published"] + summary["failed"] + summary["unknown"] == summary["events"]
        log.info("Published to %s: %d events, %d published, %d failed, %d outcome unknown; results in %s", self.topic,
                 summary["events"], summary["published"], summary["failed"], summary["unknown"], summary["results_uri"])
        problems = []
        if summary["unknown"]:
            problems.append(
                f"{summary['unknown']} of {summary['events']} events were sent to Salesforce without an answer: they may "
                f"or may not have been published, and are not sent again by a retry of this task (error_code "
                f"OUTCOME_UNKNOWN in {summary['results_uri']}). Check whether subscribers received them before "
                "publishing them again")
        if summary["failed"] > self.max_failed_events:
            problems.append(f"{summary['failed']} of {summary['events']} events failed to publish to {self.topic} "
                            f"(max_failed_events={self.max_failed_events}); see {summary['results_uri']}")
        conclude(context, summary, problems, journal, SalesforceEventsPublishFailedError)
        return summary
