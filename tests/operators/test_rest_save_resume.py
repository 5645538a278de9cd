"""Retry-safe REST saves against the emulator: the journal, inserts with an unknown outcome, a bad
row part-way. A retry is ``execute`` again with the same dag/run/task ids, as Airflow runs it."""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Iterator

import pytest

from airflow_provider_salesforce_suite.hooks._rest.journal import SaveJournal, SalesforceSaveJournalError
from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook
from airflow_provider_salesforce_suite.operators.rest import (
    SalesforceCreateRecordsOperator,
    SalesforceRecordsFailedError,
    SalesforceSaveStoppedError,
    SalesforceUpsertRecordsOperator,
)
from tests.operators.resumable_support import Crash, RecordingTaskInstance, requests_to

COLLECTIONS = "/services/data/v64.0/composite/sobjects"
POSTS = f"POST {COLLECTIONS}"


class _TaskInstance(RecordingTaskInstance):
    dag_id, run_id, task_id = "load_dag", "manual__2026-02-01T00:00:00+00:00", "load"


@pytest.fixture(autouse=True)
def _own_base_uri(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AIRFLOW__SALESFORCE_SUITE__FAILED_RECORDS_BASE_URI", f"file://{tmp_path}/base")


@pytest.fixture
def context() -> dict:
    return {"ti": _TaskInstance(), "params": {}}


def _journal_dir(tmp_path: Path) -> Path:
    return tmp_path / "base" / "load_dag" / "manual__2026-02-01T00_00_00_00_00" / "load.journal"


def _names(hook: SalesforceRestHook, sobject: str = "Account") -> Counter:
    return Counter(r["Name"] for r in hook.query(f"SELECT Name FROM {sobject}"))


def _assert_each_once(hook: SalesforceRestHook, count: int) -> None:
    """The org holds ``count`` Accounts, no two with the same Name."""
    names = _names(hook)
    assert len(names) == count and set(names.values()) == {1}, names.most_common(3)


def _crash_at(records: Iterable[Any], at: int) -> Iterator[Any]:
    """The records, the worker dying when the input reaches record ``at``."""
    for i, record in enumerate(records):
        if i == at:
            raise Crash(f"worker killed at input record {at}")
        yield record


def _die_after_answer(monkeypatch, start: int) -> None:
    """The worker dies after Salesforce answered the chunk at ``start``, before the answer is journaled."""
    done = SaveJournal.done

    def dying(self, chunk_start, payload, results) -> None:
        if chunk_start == start:
            raise Crash(f"worker killed after chunk {start} was answered")
        done(self, chunk_start, payload, results)

    monkeypatch.setattr(SaveJournal, "done", dying)


def _insert(conn: str, records: Any, **kwargs: Any) -> SalesforceCreateRecordsOperator:
    return SalesforceCreateRecordsOperator(task_id="load", salesforce_conn_id=conn, sobject="Account",
                                           records=records, **kwargs)


def _read_csv(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


# -- a retry skips what an earlier try saved ------------------------------------------------------------------
def test_crash_mid_insert_then_retry_saves_each_record_once(sf_conn, emulator_admin, context, tmp_path) -> None:
    conn = sf_conn("sf_resume")
    hook = SalesforceRestHook(salesforce_conn_id=conn)
    records = [{"Name": f"A{i:04d}"} for i in range(1000)]
    with pytest.raises(Crash):
        _insert(conn, _crash_at(records, 550), batch_size=100, concurrency=2).execute(context)
    first_try = sum(_names(hook).values())
    answered = sorted(p.name for p in _journal_dir(tmp_path).glob("chunk-*[0-9].json"))
    assert first_try == len(answered) * 100 and first_try >= 400  # every chunk sent was answered and journaled
    posts = requests_to(emulator_admin, POSTS)

    summary = _insert(conn, records, batch_size=100, concurrency=2).execute(context)
    assert (summary["records"], summary["succeeded"], summary["failed"], summary["unknown"]) == (1000, 1000, 0, 0)
    _assert_each_once(hook, 1000)
    assert requests_to(emulator_admin, POSTS) - posts == 10 - len(answered)  # only the chunks not saved
    assert sorted(summary["created_ids"]) == sorted(r["Id"] for r in hook.query("SELECT Id FROM Account"))
    assert not _journal_dir(tmp_path).exists()  # a successful task leaves no journal


def test_answered_insert_not_journaled_is_unknown_without_a_key(sf_conn, emulator_admin, context, tmp_path,
                                                               monkeypatch) -> None:
    conn = sf_conn("sf_unknown")
    hook = SalesforceRestHook(salesforce_conn_id=conn)
    records = [{"Name": f"U{i:03d}"} for i in range(500)]
    with monkeypatch.context() as patch:
        _die_after_answer(patch, 200)
        with pytest.raises(Crash):
            _insert(conn, records, batch_size=100, concurrency=1).execute(context)
    assert sum(_names(hook).values()) == 300  # chunk 200 was committed, its answer never journaled
    for _ in range(2):  # every retry: the unknown chunk is never sent again blindly
        posts = requests_to(emulator_admin, POSTS)
        with pytest.raises(SalesforceRecordsFailedError, match=(
                r"100 of 500 records were sent to Salesforce without an answer.*not sent again by a retry.*"
                r"set idempotency_field=")) as raised:
            _insert(conn, records, batch_size=100, concurrency=1).execute(context)
        summary = raised.value.summary
        assert (summary["succeeded"], summary["failed"], summary["unknown"], summary["records"]) == (400, 0, 100, 500)
        unknown = Path(summary["outcome_unknown_uri"].removeprefix("file://"))
        assert unknown.name == "load.outcome_unknown.csv"
        rows = _read_csv(unknown)
        assert [r["Name"] for r in rows] == [f"U{i:03d}" for i in range(200, 300)]
        assert all(r["sf__Error"].startswith("OUTCOME_UNKNOWN: ") for r in rows)
        assert context["ti"].pushed["summary"] == summary
    assert requests_to(emulator_admin, POSTS) == posts  # the second retry sent nothing
    _assert_each_once(hook, 500)


def test_answered_insert_not_journaled_is_looked_up_with_a_key(sf_conn, custom_emulator, custom_admin, context,
                                                              monkeypatch) -> None:
    conn = sf_conn("sf_keyed", server=custom_emulator)
    hook = SalesforceRestHook(salesforce_conn_id=conn)
    records = [{"Name": f"K{i:03d}"} for i in range(500)]
    with monkeypatch.context() as patch:
        _die_after_answer(patch, 200)
        with pytest.raises(Crash):
            _insert(conn, records, batch_size=100, concurrency=1, idempotency_field="External_Id__c").execute(context)
    posts = requests_to(custom_admin, POSTS)
    summary = _insert(conn, records, batch_size=100, concurrency=1,
                      idempotency_field="External_Id__c").execute(context)
    assert (summary["succeeded"], summary["unknown"], len(summary["created_ids"])) == (500, 0, 500)
    assert requests_to(custom_admin, POSTS) - posts == 2  # chunk 200 was found, not sent again
    rows = list(hook.query("SELECT Id, Name, External_Id__c FROM Account"))
    assert len(rows) == 500 and len({r["Name"] for r in rows}) == 500
    keys = {r["Name"]: r["External_Id__c"] for r in rows}
    assert len(set(keys.values())) == 500 and keys["K250"].endswith("-250")
    assert sorted(summary["created_ids"]) == sorted(r["Id"] for r in rows)


@pytest.mark.parametrize(("fault", "posts"), [
    ({"lose_reply": True}, 2),  # committed, reply lost: found by its keys, not sent again
    ({"drop_connection": True}, 3),  # dropped before Salesforce saw it: looked up, then sent again
])
def test_insert_without_an_answer_is_settled_by_key_in_the_same_try(sf_conn, custom_emulator, custom_admin, context,
                                                                    fault, posts) -> None:
    conn = sf_conn("sf_lost", server=custom_emulator)
    hook = SalesforceRestHook(salesforce_conn_id=conn)
    custom_admin.fault(method="POST", path_prefix=COLLECTIONS, count=1, **fault)
    summary = _insert(conn, [{"Name": f"L{i:03d}"} for i in range(400)], concurrency=1,
                      idempotency_field="External_Id__c").execute(context)
    assert (summary["succeeded"], summary["unknown"], len(summary["created_ids"])) == (400, 0, 400)
    assert requests_to(custom_admin, POSTS) == posts
    _assert_each_once(hook, 400)


def test_lost_insert_reply_without_a_key_fails_and_is_never_resent(sf_conn, emulator_admin, context) -> None:
    conn = sf_conn("sf_lost_nokey")
    hook = SalesforceRestHook(salesforce_conn_id=conn)
    emulator_admin.fault(lose_reply=True, method="POST", path_prefix=COLLECTIONS, count=1)
    records = [{"Name": f"N{i:03d}"} for i in range(400)]
    with pytest.raises(SalesforceRecordsFailedError, match="200 of 400 records were sent to Salesforce without"):
        _insert(conn, records, concurrency=1).execute(context)
    with pytest.raises(SalesforceRecordsFailedError, match="200 of 400 records were sent to Salesforce without"):
        _insert(conn, records, concurrency=1).execute(context)
    assert requests_to(emulator_admin, POSTS) == 2  # the retry sent nothing: chunk 0 unknown, chunk 200 saved
    _assert_each_once(hook, 400)


def test_upsert_with_an_unknown_outcome_is_sent_again(sf_conn, custom_emulator, custom_admin, context,
                                                      monkeypatch) -> None:
    conn = sf_conn("sf_upsert", server=custom_emulator)
    hook = SalesforceRestHook(salesforce_conn_id=conn)
    path = f"PATCH {COLLECTIONS}/Account/External_Id__c"
    records = [{"External_Id__c": f"X{i:03d}", "Name": f"X{i:03d}"} for i in range(500)]

    def upsert() -> SalesforceUpsertRecordsOperator:
        return SalesforceUpsertRecordsOperator(task_id="load", salesforce_conn_id=conn, sobject="Account",
                                               records=records, external_id_field="External_Id__c", batch_size=100,
                                               concurrency=1)

    with monkeypatch.context() as patch:
        _die_after_answer(patch, 200)
        with pytest.raises(Crash):
            upsert().execute(context)
    assert requests_to(custom_admin, path) == 3
    summary = upsert().execute(context)
    assert requests_to(custom_admin, path) == 6  # chunks 200 (outcome not journaled), 300 and 400
    assert (summary["succeeded"], summary["unknown"], len(summary["created_ids"])) == (500, 0, 400)
    _assert_each_once(hook, 500)


# -- a bad row part-way ------------------------------------------------------------------------------------------
def _write_accounts(path: Path, *, ragged_line: int | None = None, rows: int = 1000) -> None:
    lines = ["Name,Industry"]
    for i in range(rows):
        name = "" if i % 100 == 7 else f"R{i:04d}"  # Salesforce rejects these (no Name)
        lines.append(f"{name},Energy,extra" if len(lines) + 1 == ragged_line else f"{name},Energy")
    path.write_text("\n".join(lines) + "\n")


def test_bad_row_partway_then_a_corrected_file_resumes(sf_conn, emulator_admin, context, tmp_path) -> None:
    conn = sf_conn("sf_ragged")
    hook = SalesforceRestHook(salesforce_conn_id=conn)
    source = tmp_path / "accounts.csv"
    _write_accounts(source, ragged_line=452)

    def load() -> SalesforceCreateRecordsOperator:
        return SalesforceCreateRecordsOperator(task_id="load", salesforce_conn_id=conn, sobject="Account",
                                               source=str(source), concurrency=2, max_failed_records=20)

    with pytest.raises(SalesforceSaveStoppedError) as raised:
        load().execute(context)
    text = str(raised.value)
    assert "at input record 451" in text and "line 452" in text
    assert "By then 400 records (input records 1-400) had been saved or answered: 396 succeeded, 4 failed" in text
    failed = tmp_path / "accounts.failed.csv"
    assert str(failed) in text
    assert str(_journal_dir(tmp_path)) in text and "resumes after them" in text
    assert raised.value.summary["records"] == 400 and context["ti"].pushed["summary"]["failed"] == 4
    assert [r["Industry"] for r in _read_csv(failed)] == ["Energy"] * 4
    assert sum(_names(hook).values()) == 396

    _write_accounts(source)  # corrected
    posts = requests_to(emulator_admin, POSTS)
    summary = load().execute(context)
    assert requests_to(emulator_admin, POSTS) - posts == 3  # rows 400-999 only
    assert (summary["records"], summary["succeeded"], summary["failed"]) == (1000, 990, 10)
    rows = _read_csv(failed)  # complete across the tries, each failure once
    assert len(rows) == 10 and all(r["sf__Error"].startswith("REQUIRED_FIELD_MISSING") for r in rows)
    _assert_each_once(hook, 990)


def test_changed_input_or_parameters_are_refused(sf_conn, emulator_admin, context, tmp_path) -> None:
    conn = sf_conn("sf_changed")
    source = tmp_path / "accounts.csv"
    _write_accounts(source, ragged_line=452)
    with pytest.raises(SalesforceSaveStoppedError):
        SalesforceCreateRecordsOperator(task_id="load", salesforce_conn_id=conn, sobject="Account",
                                        source=str(source), max_failed_records=20).execute(context)
    posts = requests_to(emulator_admin, POSTS)

    def load(records: list[dict], **kwargs: Any) -> SalesforceCreateRecordsOperator:
        return SalesforceCreateRecordsOperator(task_id="load", salesforce_conn_id=conn, sobject="Account",
                                               records=records, max_failed_records=20, **kwargs)

    good = [{"Name": f"R{i:04d}", "Industry": "Energy"} if i % 100 != 7 else {"Industry": "Energy"}
            for i in range(1000)]
    changed = [*good[:250], {"Name": "Changed", "Industry": "Energy"}, *good[251:]]
    with pytest.raises(SalesforceSaveJournalError, match=r"input records 201-400 were saved.*Refusing to resume"):
        load(changed).execute(context)
    with pytest.raises(SalesforceSaveJournalError, match=r"now has 200 records, but records from 201 on"):
        load(good[:200]).execute(context)
    with pytest.raises(SalesforceSaveJournalError, match=r"now has 0 records"):
        load([]).execute(context)
    with pytest.raises(SalesforceSaveJournalError, match=r"parameters changed.*\(batch_size\)"):
        load(good, batch_size=100).execute(context)
    assert requests_to(emulator_admin, POSTS) == posts  # none of the refusals sent anything
    other_run = {**context, "ti": type("OtherTi", (_TaskInstance,), {"run_id": "scheduled__2026-02-02"})()}
    assert load(good[:10]).execute(other_run)["records"] == 10  # another run: its own journal


# -- the defect: retries under faults ----------------------------------------------------------------------------
def _faults(admin: Any) -> None:
    """About 10% of the collections calls fail, seeded: every kind of fault a load meets."""
    rules = [
        {"status": 503, "error_code": "SERVER_UNAVAILABLE", "rate": 0.03, "seed": 1},
        {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "ConcurrentPerOrgLongTxn Limit exceeded.",
         "rate": 0.02, "seed": 6},
        {"drop_connection": True, "rate": 0.02, "seed": 3},
        {"lose_reply": True, "rate": 0.02, "seed": 4},
        {"expire_session": True, "rate": 0.01, "seed": 5},
        {"status": 500, "error_code": "UNKNOWN_EXCEPTION", "count": 2},  # definite failures: sent by a later try
    ]
    for rule in rules:
        admin.fault(method="POST", path_prefix=COLLECTIONS, **rule)


def test_10000_inserts_under_faults_and_crashes_leave_each_record_once(sf_conn, custom_emulator, custom_admin,
                                                                       context) -> None:
    conn = sf_conn("sf_chaos", server=custom_emulator, extra={"max_retries": 4, "retry_max_seconds": 30})
    hook = SalesforceRestHook(salesforce_conn_id=conn)
    _faults(custom_admin)
    records = [{"Name": f"C{i:05d}"} for i in range(10_000)]

    def load(source: Iterable[dict]) -> SalesforceCreateRecordsOperator:
        return _insert(conn, source, batch_size=100, concurrency=4, idempotency_field="External_Id__c")

    with pytest.raises(Crash):  # try 1: the worker is killed
        load(_crash_at(records, 3000)).execute(context)
    with pytest.raises(Crash):  # try 2: killed again
        load(_crash_at(records, 7000)).execute(context)
    summary = load(records).execute(context)  # try 3
    assert (summary["records"], summary["succeeded"], summary["failed"], summary["unknown"]) == (10_000, 10_000, 0, 0)
    hits = [rule["hits"] for rule in custom_admin._call("GET", "faults")]
    assert all(hits), hits  # every kind of fault did hit
    custom_admin.clear_faults()
    _assert_each_once(hook, 10_000)


def test_inserts_under_faults_without_a_key_never_duplicate(sf_conn, emulator_admin, context) -> None:
    """The reported defect without idempotency_field: no record twice; the ones whose insert got no
    answer are listed, not sent again, and every input record is either in the org or in that list."""
    conn = sf_conn("sf_chaos_nokey", extra={"max_retries": 4, "retry_max_seconds": 30})
    hook = SalesforceRestHook(salesforce_conn_id=conn)
    _faults(emulator_admin)
    records = [{"Name": f"N{i:05d}"} for i in range(4000)]

    def load(source: Iterable[dict]) -> SalesforceCreateRecordsOperator:
        return _insert(conn, source, batch_size=100, concurrency=4)

    for at in (1200, 2800):
        with pytest.raises(Crash):
            load(_crash_at(records, at)).execute(context)
    with pytest.raises(SalesforceRecordsFailedError, match="records were sent to Salesforce without an answer") as raised:
        load(records).execute(context)
    summary = raised.value.summary
    assert summary["failed"] == 0 and summary["succeeded"] + summary["unknown"] == 4000 and summary["unknown"]
    emulator_admin.clear_faults()
    names = _names(hook)
    assert set(names.values()) == {1}  # nothing twice
    unknown = {r["Name"] for r in _read_csv(Path(summary["outcome_unknown_uri"].removeprefix("file://")))}
    assert len(unknown) == summary["unknown"] and set(names) | unknown == {r["Name"] for r in records}
    assert len(set(names) - unknown) == summary["succeeded"]  # each lost reply was committed, each drop was not


def test_journal_on_an_object_store(sf_conn, emulator_admin, context, monkeypatch) -> None:
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    store = MemoryFileSystem()
    attach("memory", fs=store)
    conn = sf_conn("sf_store")
    hook = SalesforceRestHook(salesforce_conn_id=conn)
    records = [{"Name": f"S{i:03d}"} for i in range(500)]

    def load(source: Iterable[dict]) -> SalesforceCreateRecordsOperator:
        return _insert(conn, source, batch_size=100, concurrency=1, journal_base_uri="memory://journals/")

    with monkeypatch.context() as patch:
        _die_after_answer(patch, 300)
        with pytest.raises(Crash):
            load(records).execute(context)
    journal = "/journals/load_dag/manual__2026-02-01T00_00_00_00_00/load.journal"
    assert sorted(p.rsplit("/", 1)[-1] for p in store.ls(journal, detail=False)) == [
        "chunk-0000000000.json", "chunk-0000000100.json", "chunk-0000000200.json", "chunk-0000000300.pending.json",
        "journal.json"]
    with pytest.raises(SalesforceRecordsFailedError, match="100 of 500 records were sent to Salesforce without"):
        load(records).execute(context)
    _assert_each_once(hook, 500)


def test_a_record_that_cannot_be_sent_stops_after_the_calls_in_flight(sf_conn, context) -> None:
    from airflow_provider_salesforce_suite.operators.rest import SalesforceDeleteRecordsOperator

    conn = sf_conn("sf_delete")
    hook = SalesforceRestHook(salesforce_conn_id=conn)
    ids = [r.id for r in hook.save_records("insert", "Account", [{"Name": f"Del{i}"} for i in range(300)])]
    records = [{"Id": i} for i in ids[:250]] + [{"Name": "no id"}] + [{"Id": i} for i in ids[250:]]

    def delete(rows: list) -> SalesforceDeleteRecordsOperator:
        return SalesforceDeleteRecordsOperator(task_id="load", salesforce_conn_id=conn, sobject="Account",
                                               records=rows, batch_size=100, concurrency=2)

    with pytest.raises(SalesforceSaveStoppedError, match=(
            r"An input record cannot be sent: record 250: delete needs an Id\. By then 200 records")):
        delete(records).execute(context)
    assert sum(_names(hook).values()) == 100
    summary = delete([r for r in records if "Id" in r]).execute(context)  # corrected: resumes at record 201
    assert (summary["records"], summary["succeeded"]) == (300, 300) and not _names(hook)


def test_no_journal_outside_a_task_instance_or_when_not_durable(sf_conn, context, tmp_path) -> None:
    conn = sf_conn("sf_plain")
    hook = SalesforceRestHook(salesforce_conn_id=conn)
    records = [{"Name": f"P{i}"} for i in range(300)]
    with pytest.raises(Crash):
        _insert(conn, _crash_at(records, 250), batch_size=100, concurrency=1, durable=False).execute(context)
    assert not _journal_dir(tmp_path).exists()
    with pytest.raises(Crash):
        _insert(conn, _crash_at(records, 250), batch_size=100, concurrency=1).execute({})
    assert not (tmp_path / "base").exists()
    assert sum(_names(hook).values()) == 400  # nothing to resume from: each execute sent its 200 records
