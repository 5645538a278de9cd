"""SalesforcePublishEventsOperator against the emulator's gRPC server: events from XCom or a file, the
results file and summary, a bad event, and retries that never publish an event twice."""

from __future__ import annotations

import csv
from collections import Counter
from typing import Any, Iterable, Iterator

import pytest

from airflow_provider_salesforce_suite.core.errors import SalesforcePubSubTopicError
from airflow_provider_salesforce_suite.hooks.pubsub import decode_replay_id
from airflow_provider_salesforce_suite.io import RecordWriter, iter_records
from airflow_provider_salesforce_suite.operators.pubsub import (
    RESULT_COLUMNS,
    SalesforceEventsPublishFailedError,
    SalesforcePublishEventsOperator,
)
from tests.hooks.pubsub_support import ORDER_TOPIC, all_retained, orders, pubsub, pubsub_server, run  # noqa: F401
from tests.operators.resumable_support import Crash, RecordingTaskInstance


@pytest.fixture
def context() -> dict:
    ti = RecordingTaskInstance()
    ti.dag_id, ti.run_id, ti.task_id = "events_dag", "manual__2026-03-01T00:00:00+00:00", "publish"
    return {"ti": ti, "params": {}}


def _operator(pubsub, **kwargs: Any) -> SalesforcePublishEventsOperator:
    kwargs.setdefault("topic", ORDER_TOPIC)
    return SalesforcePublishEventsOperator(task_id="publish", salesforce_conn_id=pubsub.conn_id, **kwargs)


def _retained(pubsub) -> list:
    async def scenario():
        hook = pubsub.hook()
        try:
            return await all_retained(hook, ORDER_TOPIC)
        finally:
            await hook.aclose()

    return run(scenario())


def _results(uri: str) -> list[dict[str, Any]]:
    """The results file's rows, every column present (the readers leave empty cells out)."""
    return [{column: row.get(column) for column in RESULT_COLUMNS} for row in iter_records(uri)]


def _crash_at(events: Iterable[Any], at: int) -> Iterator[Any]:
    """The events, the worker dying when the input reaches event ``at``."""
    for i, event in enumerate(events):
        if i == at:
            raise Crash(f"worker killed at input event {at}")
        yield event


def test_publish_from_xcom_list(pubsub, context, tmp_path) -> None:
    summary = _operator(pubsub, events=orders(450), batch_size=100).execute(context)
    assert summary["topic"] == ORDER_TOPIC
    assert (summary["events"], summary["published"], summary["failed"], summary["unknown"]) == (450, 450, 0, 0)
    rows = _results(summary["results_uri"])
    assert summary["results_uri"].endswith("/events_dag/manual__2026-03-01T00_00_00_00_00/publish.results.csv")
    with open(summary["results_uri"].removeprefix("file://"), newline="") as handle:
        assert next(csv.reader(handle)) == RESULT_COLUMNS
    assert len(rows) == 450
    retained = _retained(pubsub)
    assert [e.payload["Order_Number__c"] for e in retained] == [f"O-{i}" for i in range(450)]
    assert [decode_replay_id(r["replay_id"]) for r in rows] == [e.replay_id for e in retained]
    assert [r["correlation_key"] for r in rows] == [e.event_id for e in retained]
    assert all(not r.get("error_code") for r in rows)
    assert not (tmp_path / "failed_records" / "events_dag").joinpath("manual__2026-03-01T00_00_00_00_00", "publish.journal").exists()


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet"])
def test_publish_from_a_file_with_one_bad_event(pubsub, context, tmp_path, suffix) -> None:
    source = tmp_path / f"orders.{suffix}"
    events = [{"Order_Number__c": f"O-{i}", "Amount__c": "lots" if i == 7 else str(i + 0.5)} for i in range(30)]
    with RecordWriter(str(source), columns=["Order_Number__c", "Amount__c"]) as writer:
        writer.write_page(events)
    with pytest.raises(SalesforceEventsPublishFailedError, match=r"1 of 30 events failed to publish") as info:
        _operator(pubsub, source=str(source), batch_size=10, correlation_key_field="Order_Number__c").execute(context)
    summary = info.value.summary
    assert (summary["events"], summary["published"], summary["failed"], summary["unknown"]) == (30, 29, 1, 0)
    assert context["ti"].pushed["summary"] == summary
    assert summary["results_uri"] == str(tmp_path / f"orders.results.{suffix}")
    rows = _results(summary["results_uri"])
    bad = rows[7]
    assert bad["correlation_key"] == "O-7" and bad["error_code"] == "SCHEMA_MISMATCH" and bad["replay_id"] is None
    assert "field 'Amount__c' is 'lots', which is not a double" in bad["error_message"]
    retained = _retained(pubsub)
    assert [e.event_id for e in retained] == [f"O-{i}" for i in range(30) if i != 7]
    assert retained[0].payload["Amount__c"] == 0.5  # CSV text converted to the schema's double


def test_tolerated_failures_and_a_retry_publishes_nothing_twice(pubsub, context) -> None:
    events = orders(25)
    events[3] = {"Order_Number__c": "BAD", "Colour__c": "red"}
    with pytest.raises(SalesforceEventsPublishFailedError, match="max_failed_events=0"):
        _operator(pubsub, events=events, batch_size=10).execute(context)
    # the retry (same task instance) re-reads the journal: nothing is published again
    summary = _operator(pubsub, events=events, batch_size=10, max_failed_events=1).execute(context)
    assert (summary["published"], summary["failed"]) == (24, 1)
    counts = Counter(e.payload["Order_Number__c"] for e in _retained(pubsub))
    assert len(counts) == 24 and set(counts.values()) == {1}


def test_crash_mid_publish_then_retry_publishes_each_event_once(pubsub, context) -> None:
    events = orders(1000)
    with pytest.raises(Crash):
        _operator(pubsub, events=_crash_at(events, 550), batch_size=100, max_in_flight=2).execute(context)
    with pytest.raises(SalesforceEventsPublishFailedError, match="100 of 1000 events were sent to Salesforce without "
                                                                 "an answer") as info:
        _operator(pubsub, events=events, batch_size=100, max_in_flight=2).execute(context)
    summary = info.value.summary
    assert (summary["events"], summary["published"], summary["failed"], summary["unknown"]) == (1000, 900, 0, 100)
    rows = _results(summary["results_uri"])
    unknown = [int(r["index"]) for r in rows if r["error_code"] == "OUTCOME_UNKNOWN"]
    assert unknown == list(range(400, 500))  # the batch in flight when the worker died: never sent again
    counts = Counter(e.payload["Order_Number__c"] for e in _retained(pubsub))
    assert set(counts.values()) == {1}
    assert set(counts) - {f"O-{i}" for i in range(400, 500)} == {f"O-{i}" for i in range(1000)} - {
        f"O-{i}" for i in range(400, 500)}


def test_unknown_topic_fails_before_anything_is_sent(pubsub, context) -> None:
    with pytest.raises(SalesforcePubSubTopicError, match="/event/No_Such__e"):
        _operator(pubsub, topic="/event/No_Such__e", events=orders(3)).execute(context)


@pytest.mark.parametrize("kwargs, message", [
    ({"events": [], "source": "x.csv"}, "exactly one of events= and source="),
    ({}, "exactly one of events= and source="),
    ({"events": [], "topic": "/data/AccountChangeEvent"}, "platform event topic"),
    ({"events": [], "batch_size": 500}, "batch_size must be 1-200"),
    ({"events": [], "max_in_flight": 0}, "max_in_flight must be 1 or more"),
    ({"events": [], "max_failed_events": -1}, "max_failed_events must be 0 or more"),
])
def test_arguments_checked_when_the_dag_is_parsed(kwargs, message) -> None:
    kwargs.setdefault("topic", ORDER_TOPIC)
    with pytest.raises(ValueError, match=message):
        SalesforcePublishEventsOperator(task_id="publish", **kwargs)


def test_events_must_be_a_list_of_dicts(pubsub, context) -> None:
    with pytest.raises(TypeError, match="events must be a list of dicts, got str"):
        _operator(pubsub, events="{{ ti.xcom_pull('x') }}").execute(context)
