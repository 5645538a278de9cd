"""``save_records`` settling: a bad input part-way, replies cut or lost on inserts (against the emulator)."""

from __future__ import annotations

from typing import Iterator

import pytest

from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

COLLECTIONS = "/services/data/v64.0/composite/sobjects"


def _count(hook: SalesforceRestHook) -> int:
    return sum(1 for _ in hook.query("SELECT Id FROM Account"))


def test_bad_input_partway_yields_the_calls_in_flight_then_raises(sf_conn) -> None:
    hook = SalesforceRestHook(sf_conn())

    def rows() -> Iterator[dict]:
        for i in range(450):
            yield {"Name": f"B{i:03d}"}
        raise ValueError("line 452: 3 values for 2 columns")

    seen = []
    with pytest.raises(ValueError, match="line 452"):
        for result in hook.save_records("insert", "Account", rows(), concurrency=2):
            seen.append(result)
    assert [r.index for r in seen] == list(range(400)) and all(r.success for r in seen)  # both calls in flight
    assert _count(hook) == 400


@pytest.mark.parametrize("fault", [{"truncate_body": True}, {"lose_reply": True}])
def test_insert_reply_cut_or_lost_is_looked_up_by_key(sf_conn, custom_emulator, custom_admin, fault) -> None:
    hook = SalesforceRestHook(sf_conn(server=custom_emulator))
    custom_admin.fault(method="POST", path_prefix=COLLECTIONS, count=1, **fault)
    rows = [{"Name": f"T{i}", "External_Id__c": f"key-{i}"} for i in range(150)]
    results = list(hook.save_records("insert", "Account", rows, batch_size=100, idempotency_field="External_Id__c"))
    assert all(r.success and r.created and r.id for r in results) and [r.index for r in results] == list(range(150))
    stored = {r["External_Id__c"]: r["Id"] for r in hook.query("SELECT Id, External_Id__c FROM Account")}
    assert len(stored) == 150 and [stored[f"key-{i}"] for i in range(150)] == [r.id for r in results]


def test_insert_reply_cut_without_key_is_unknown(sf_conn, emulator_admin) -> None:
    hook = SalesforceRestHook(sf_conn())
    emulator_admin.fault(method="POST", path_prefix=COLLECTIONS, count=1, truncate_body=True)
    results = list(hook.save_records("insert", "Account", [{"Name": f"U{i}"} for i in range(150)], batch_size=100,
                                     concurrency=1))
    assert [r.index for r in results if r.unknown] == list(range(100))
    assert all(r.errors[0]["statusCode"] == "OUTCOME_UNKNOWN" for r in results[:100])
    assert all(r.success for r in results[100:]) and _count(hook) == 150  # the cut call was committed
