"""The shared job poller behind the Bulk, Analytics and Pardot job triggers, against the emulator:
many triggers on one job cost one poll an interval, jobs poll on their own, cancelled triggers
unsubscribe (the last one out stops the poll and closes the session), an error reaches everyone.

Triggers run as the triggerer runs them: all on one event loop. The emulator holds the jobs in
progress (``hold_jobs``) until a test releases them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any

import pytest
import requests

from airflow_provider_salesforce_suite.hooks.analytics import SalesforceAnalyticsHook
from airflow_provider_salesforce_suite.hooks.bulk import SalesforceBulkHook
from airflow_provider_salesforce_suite.hooks.pardot import PardotHook
from airflow_provider_salesforce_suite.triggers._job_poller import job_poller
from airflow_provider_salesforce_suite.triggers.analytics import SalesforceAnalyticsJobTrigger
from airflow_provider_salesforce_suite.triggers.bulk import SalesforceBulkJobTrigger
from airflow_provider_salesforce_suite.triggers.pardot import PardotJobTrigger
from tests.hooks.bulk_support import calls


def _hold(admin: Any, api: str, held: bool) -> None:
    reply = requests.post(f"{admin.url}/__emulator__/{api}", json={"hold_jobs": held}, verify=admin.verify, timeout=10)
    reply.raise_for_status()
    assert reply.json()["hold_jobs"] is held


@pytest.fixture
def held(emulator_admin):
    """``held(api)``: hold that API's jobs in progress for the test (released afterwards)."""
    apis: list[str] = []

    def hold(api: str) -> None:
        apis.append(api)
        _hold(emulator_admin, api, True)

    yield hold
    for api in apis:
        _hold(emulator_admin, api, False)


def _bulk_job(hook: SalesforceBulkHook) -> str:
    job_id = hook.create_ingest_job("Account", "insert")["id"]
    hook.upload_job_data(job_id, b"Name\nA\n")
    hook.close_job(job_id)
    return job_id


async def _first_event(trigger: Any) -> dict[str, Any]:
    async with aclosing(trigger.run()) as events:  # as the triggerer: the trigger ends after its event
        async for event in events:
            return event.payload
    raise AssertionError("the trigger ended without an event")


async def _until(predicate: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def _run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(scenario(), 60))


def test_many_triggers_on_one_job_poll_it_once_an_interval(sf_conn, emulator_admin, held) -> None:
    conn = sf_conn("sf_poller")
    held("bulk")
    job_id = _bulk_job(SalesforceBulkHook(conn))
    path = f"/jobs/ingest/{job_id}"
    interval, triggers = 0.2, 20

    async def scenario() -> tuple[list[dict[str, Any]], int, int]:
        tasks = [asyncio.create_task(_first_event(SalesforceBulkJobTrigger(
            job_ids=[job_id], salesforce_conn_id=conn, poll_interval=interval))) for _ in range(triggers)]
        await _until(lambda: calls(emulator_admin, "GET", path) >= 1)
        poller = job_poller()
        assert len(poller.watches) == 1 and len(poller.hooks) == 1  # one poll loop, one hook (one session)
        before = calls(emulator_admin, "GET", path)
        await asyncio.sleep(2.0)
        window = calls(emulator_admin, "GET", path) - before
        _hold(emulator_admin, "bulk", False)
        events = await asyncio.gather(*tasks)
        assert poller.watches == {} and poller.hooks == {}  # the last one out stopped the poll, closed the hook
        return events, window, calls(emulator_admin, "GET", path)

    events, window, total = _run(scenario)
    assert all(event["status"] == "success" and event["jobs"][0]["job_id"] == job_id for event in events)
    # 2 s at 0.2 s: ~10 polls (fewer when polls take long), never one per trigger (~200).
    assert 4 <= window <= 2.0 / interval + 2, window
    print(f"\n{triggers} triggers on one job: {window} polls in 2 s at a {interval} s interval; {total} in all")


def test_jobs_poll_independently_at_their_smallest_interval(sf_conn, emulator_admin, held) -> None:
    conn = sf_conn("sf_poller")
    held("bulk")
    hook = SalesforceBulkHook(conn)
    fast, slow = _bulk_job(hook), _bulk_job(hook)

    async def scenario() -> tuple[dict[str, int], int]:
        def trigger(job_id: str, interval: float) -> asyncio.Task:
            return asyncio.create_task(_first_event(SalesforceBulkJobTrigger(
                job_ids=[job_id], salesforce_conn_id=conn, poll_interval=interval)))

        # The fast job: one trigger at 1 s and one at 0.1 s (the smallest wins); the slow one at 1 s.
        tasks = [trigger(fast, 1.0), trigger(fast, 0.1), trigger(slow, 1.0), trigger(slow, 1.0)]
        await _until(lambda: all(calls(emulator_admin, "GET", f"/jobs/ingest/{j}") for j in (fast, slow)))
        assert len(job_poller().watches) == 2 and len(job_poller().hooks) == 1
        before = {j: calls(emulator_admin, "GET", f"/jobs/ingest/{j}") for j in (fast, slow)}
        await asyncio.sleep(2.0)
        window = {j: calls(emulator_admin, "GET", f"/jobs/ingest/{j}") - before[j] for j in (fast, slow)}
        tasks[1].cancel()  # the 0.1 s subscriber leaves: the fast job falls back to 1 s
        await asyncio.gather(tasks[1], return_exceptions=True)
        before_fast = calls(emulator_admin, "GET", f"/jobs/ingest/{fast}")
        await asyncio.sleep(2.0)
        after_leaving = calls(emulator_admin, "GET", f"/jobs/ingest/{fast}") - before_fast
        _hold(emulator_admin, "bulk", False)
        events = await asyncio.gather(*tasks[:1], *tasks[2:])
        assert all(event["status"] == "success" for event in events)
        return window, after_leaving

    window, after_leaving = _run(scenario)
    assert window[fast] >= 8, window  # ~20 at 0.1 s
    assert 1 <= window[slow] <= 3, window  # ~2 at 1 s, however many triggers
    assert after_leaving <= 4, after_leaving  # ~2 at 1 s again


def test_cancelled_triggers_unsubscribe_and_the_last_stops_the_poll(sf_conn, emulator_admin, held) -> None:
    conn = sf_conn("sf_poller")
    held("bulk")
    job_id = _bulk_job(SalesforceBulkHook(conn))
    path = f"/jobs/ingest/{job_id}"

    async def scenario() -> tuple[int, int]:
        tasks = [asyncio.create_task(_first_event(SalesforceBulkJobTrigger(
            job_ids=[job_id], salesforce_conn_id=conn, poll_interval=0.1))) for _ in range(5)]
        await _until(lambda: calls(emulator_admin, "GET", path) >= 2)
        poller = job_poller()
        (watch,) = poller.watches.values()
        for task in tasks[:4]:  # a triggerer reassigning them, or their tasks cleared
            task.cancel()
        await asyncio.gather(*tasks[:4], return_exceptions=True)
        assert len(watch.subscribers) == 1 and not watch.task.done()
        before = calls(emulator_admin, "GET", path)
        await asyncio.sleep(0.6)
        still = calls(emulator_admin, "GET", path) - before
        tasks[4].cancel()
        await asyncio.gather(tasks[4], return_exceptions=True)
        assert watch.task.done() and poller.watches == {} and poller.hooks == {}
        session = watch.shared.hook._async_session
        assert session is not None and session._client is None  # closed when the last one left
        before = calls(emulator_admin, "GET", path)
        await asyncio.sleep(0.5)
        return still, calls(emulator_admin, "GET", path) - before

    still, after = _run(scenario)
    assert still >= 3, still  # the one left keeps the job polled
    assert after == 0  # nobody waits: nobody polls


def test_an_error_reaches_every_trigger_of_the_job(sf_conn, emulator_admin) -> None:
    conn = sf_conn("sf_poller")
    missing = "7505E0000000998QAA"

    async def scenario() -> list[dict[str, Any]]:
        return await asyncio.gather(*(_first_event(SalesforceBulkJobTrigger(
            job_ids=[missing], salesforce_conn_id=conn, poll_interval=0.05)) for _ in range(6)))

    events = _run(scenario)
    assert all(event["status"] == "error" and "NOT_FOUND" in event["message"] and missing in event["message"]
               for event in events), events
    assert calls(emulator_admin, "GET", f"/jobs/ingest/{missing}") == 1  # one poll answered all six


def test_bulk_1_0_batch_and_job_triggers_share_the_job_poll(sf_conn, emulator_admin, held) -> None:
    conn = sf_conn("sf_poller")
    held("bulk")
    hook = SalesforceBulkHook(conn)
    job_id = hook.v1_create_job("Account", "insert")["id"]
    batch = hook.v1_add_batch(job_id, b"Name\nA\n")["id"]

    async def scenario() -> tuple[list[dict[str, Any]], int]:
        triggers = [SalesforceBulkJobTrigger(job_ids=[job_id], salesforce_conn_id=conn, api="1.0", poll_interval=0.2),
                    SalesforceBulkJobTrigger(job_ids=[job_id], salesforce_conn_id=conn, api="1.0", batch_ids=[batch],
                                             poll_interval=0.2),
                    SalesforceBulkJobTrigger(job_ids=[job_id], salesforce_conn_id=conn, api="1.0", batch_ids=["*"],
                                             poll_interval=0.2)]
        tasks = [asyncio.create_task(_first_event(trigger)) for trigger in triggers]
        await _until(lambda: len(job_poller().watches) == 3)  # the job, the batch, the batch list
        before = calls(emulator_admin, "GET", f"/job/{job_id}")
        await asyncio.sleep(1.0)
        window = calls(emulator_admin, "GET", f"/job/{job_id}") - before
        _hold(emulator_admin, "bulk", False)
        return await asyncio.gather(*tasks), window

    events, window = _run(scenario)
    assert [event["status"] for event in events] == ["success"] * 3
    # /job/{id} counts the job and its batch calls: ~5 polls each of 3 calls, not 3 triggers x that.
    assert window <= 3 * (1.0 / 0.2 + 2), window


def test_pardot_and_analytics_triggers_share_their_job_polls(sf_conn, pardot_conn, emulator_admin, held) -> None:
    conn, pardot = sf_conn("sf_poller"), pardot_conn("pardot_poller")
    held("pardot")
    held("analytics")
    export_id = PardotHook(pardot).create_export("prospect_byUpdatedAt", ["id"])
    analytics = SalesforceAnalyticsHook(conn)
    flow_job = analytics.start_dataflow(analytics.list_dataflows()[0]["id"])["id"]

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, int]]:
        triggers: list[Any] = [PardotJobTrigger(kind="export", job_id=export_id, pardot_conn_id=pardot,
                                                poll_interval=0.2) for _ in range(8)]
        triggers += [SalesforceAnalyticsJobTrigger(kind="dataflow_job", object_id=flow_job, salesforce_conn_id=conn,
                                                   poll_interval=0.2) for _ in range(8)]
        tasks = [asyncio.create_task(_first_event(trigger)) for trigger in triggers]
        await _until(lambda: len(job_poller().watches) == 2)
        assert len(job_poller().hooks) == 2  # one Pardot hook, one Analytics hook
        paths = {"pardot": f"/exports/{export_id}", "analytics": f"/dataflowjobs/{flow_job}"}
        before = {api: calls(emulator_admin, "GET", path) for api, path in paths.items()}
        await asyncio.sleep(1.0)
        window = {api: calls(emulator_admin, "GET", path) - before[api] for api, path in paths.items()}
        _hold(emulator_admin, "pardot", False)
        _hold(emulator_admin, "analytics", False)
        return await asyncio.gather(*tasks), window

    events, window = _run(scenario)
    assert [event["status"] for event in events] == ["success"] * 16, events
    assert all(1 <= polls <= 1.0 / 0.2 + 2 for polls in window.values()), window  # not 8 x that


def test_a_wait_arriving_as_the_last_one_leaves_gets_a_live_poll(sf_conn, emulator_admin, held) -> None:
    """The last waiter leaves and, in the same loop step, a new one arrives (a task re-deferred):
    the newcomer starts a new poll loop rather than joining the stopping one."""
    conn = sf_conn("sf_poller")
    held("bulk")
    job_id = _bulk_job(SalesforceBulkHook(conn))

    async def scenario() -> dict[str, Any]:
        first = asyncio.create_task(_first_event(SalesforceBulkJobTrigger(
            job_ids=[job_id], salesforce_conn_id=conn, poll_interval=0.1)))
        await _until(lambda: calls(emulator_admin, "GET", f"/jobs/ingest/{job_id}") >= 1)
        (old,) = job_poller().watches.values()
        first.cancel()
        second = asyncio.create_task(_first_event(SalesforceBulkJobTrigger(
            job_ids=[job_id], salesforce_conn_id=conn, poll_interval=0.1)))
        await asyncio.gather(first, return_exceptions=True)
        await _until(lambda: len(job_poller().watches) == 1)
        (new,) = job_poller().watches.values()
        assert new is not old and old.task.done()
        _hold(emulator_admin, "bulk", False)
        return await second

    event = _run(scenario)
    assert event["status"] == "success"


def test_pardot_and_analytics_waits_time_out_on_held_jobs(sf_conn, pardot_conn, held) -> None:
    conn, pardot = sf_conn("sf_poller"), pardot_conn("pardot_poller")
    held("pardot")
    held("analytics")
    export_id = PardotHook(pardot).create_export("prospect_byUpdatedAt", ["id"])
    analytics = SalesforceAnalyticsHook(conn)
    flow_job = analytics.start_dataflow(analytics.list_dataflows()[0]["id"])["id"]

    async def scenario() -> list[dict[str, Any]]:
        return await asyncio.gather(
            _first_event(PardotJobTrigger(kind="export", job_id=export_id, pardot_conn_id=pardot, poll_interval=0.1,
                                          timeout=0.5)),
            _first_event(SalesforceAnalyticsJobTrigger(kind="dataflow_job", object_id=flow_job, salesforce_conn_id=conn,
                                                       poll_interval=0.1, timeout=0.5)))

    pardot_event, analytics_event = _run(scenario)
    assert pardot_event["status"] == "timeout" and f"export {export_id} still" in pardot_event["message"]
    assert analytics_event["status"] == "timeout" and "(timeout 0.5s)" in analytics_event["message"]
