"""SalesforceRestHook records & composite against the emulator: order, concurrency, failures, retries."""

from __future__ import annotations

import pytest

from airflow_provider_salesforce_suite.core.errors import SalesforceNotFoundError
from airflow_provider_salesforce_suite.hooks.rest import (
    SalesforceCompositeLimitError,
    SalesforceMixedTypesError,
    SalesforceRestHook,
)

COLLECTIONS = "/services/data/v64.0/composite/sobjects"


def _calls(admin, method: str, path: str = COLLECTIONS) -> int:
    return sum(n for key, n in admin.stats()["requests"].items() if key.rstrip("/") == f"{method} {path}")


def _count(hook: SalesforceRestHook, sobject: str = "Account") -> int:
    return hook.request("GET", hook.data_url("query"), params={"q": f"SELECT COUNT() FROM {sobject}"}).json()["totalSize"]


def test_insert_1000_in_order_with_concurrency(sf_conn, emulator_admin) -> None:
    hook = SalesforceRestHook(sf_conn())
    records = ({"Name": f"Acc {i:04d}"} for i in range(1000))  # a generator: consumed lazily
    results = list(hook.save_records("insert", "Account", records, concurrency=4))
    assert [r.index for r in results] == list(range(1000))
    assert all(r.success and r.created is True and r.errors == [] for r in results)
    assert _calls(emulator_admin, "POST") == 5
    fetched = list(hook.get_records("Account", [r.id for r in results], ["Name"]))
    assert [f["Name"] for f in fetched] == [f"Acc {i:04d}" for i in range(1000)]


def test_upsert_1000_by_external_id_maps_results_to_inputs(sf_conn, custom_emulator) -> None:
    hook = SalesforceRestHook(sf_conn(server=custom_emulator))
    rows = [{"External_Id__c": f"ext-{i}", "Name": f"Up {i}"} for i in range(1000)]
    first = list(hook.save_records("upsert", "Account", rows, external_id_field="External_Id__c", concurrency=4))
    assert all(r.success and r.created is True for r in first)
    fetched = hook.get_records("Account", [r.id for r in first], ["External_Id__c", "Name"])
    assert [(f["External_Id__c"], f["Name"]) for f in fetched] == [(r["External_Id__c"], r["Name"]) for r in rows]
    again = list(hook.save_records("upsert", "Account", rows[::-1], external_id_field="External_Id__c",
                                   concurrency=3, batch_size=150))
    assert all(r.success and r.created is False for r in again)
    assert [r.id for r in again] == [r.id for r in first][::-1]
    assert _count(hook) == 1000


def test_partial_failure_is_counted_and_the_rest_committed(sf_conn) -> None:
    hook = SalesforceRestHook(sf_conn())
    rows = [{"Name": f"P{i}"} if i % 50 else {"Industry": "no name"} for i in range(300)]
    results = list(hook.save_records("insert", "Account", rows, batch_size=100, concurrency=2))
    failed = [r for r in results if not r.success]
    assert len(results) == 300 and [r.index for r in failed] == [0, 50, 100, 150, 200, 250]
    assert all(r.errors[0]["statusCode"] == "REQUIRED_FIELD_MISSING" and r.id is None for r in failed)
    assert _count(hook) == 294


def test_all_or_none_rolls_back_per_call(sf_conn) -> None:
    hook = SalesforceRestHook(sf_conn())
    rows = [{"Name": "ok"}] * 5 + [{"Name": None}] + [{"Name": "ok"}] * 4
    results = list(hook.save_records("insert", "Account", rows, all_or_none=True, batch_size=5))
    assert [r.success for r in results] == [True] * 5 + [False] * 5
    assert results[6].errors[0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert _count(hook) == 5


def test_update_and_delete(sf_conn) -> None:
    hook = SalesforceRestHook(sf_conn())
    ids = [r.id for r in hook.save_records("insert", "Account", [{"Name": "a"}, {"Name": "b"}])]
    updated = list(hook.save_records("update", "Account", [{"Id": ids[0], "Name": "a2"}, {"Id": ids[1], "Name": ""}]))
    assert updated[0].success and updated[0].created is None and updated[0].id == ids[0]
    assert not updated[1].success
    deleted = list(hook.save_records("delete", "Account", [ids[0], {"Id": ids[1]}, {"id": "001bad"}]))
    assert [d.success for d in deleted] == [True, True, False]
    assert deleted[2].errors[0]["statusCode"] == "MALFORMED_ID"
    assert list(hook.get_records("Account", ids, ["Name"])) == [None, None]


def test_empty_input_makes_no_call(sf_conn, emulator_admin) -> None:
    hook = SalesforceRestHook(sf_conn())
    assert list(hook.save_records("insert", "Account", [])) == []
    assert list(hook.get_records("Account", [], ["Name"])) == []
    assert hook.composite([]) == {"compositeResponse": []}
    assert _calls(emulator_admin, "POST") == 0


def test_bad_arguments_are_refused_before_any_call(sf_conn, emulator_admin) -> None:
    hook = SalesforceRestHook(sf_conn())
    with pytest.raises(ValueError, match="operation"):
        hook.save_records("merge", "Account", [{"Name": "x"}])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="external_id_field"):
        hook.save_records("upsert", "Account", [{"Name": "x"}])
    with pytest.raises(SalesforceCompositeLimitError, match="201"):
        hook.save_records("insert", "Account", [], batch_size=201)
    with pytest.raises(ValueError, match="concurrency"):
        hook.save_records("insert", "Account", [], concurrency=0)
    with pytest.raises(SalesforceMixedTypesError, match="Contact"):
        list(hook.save_records("insert", "Account", [{"Name": "x"}, {"attributes": {"type": "Contact"}, "LastName": "y"}]))
    with pytest.raises(ValueError, match="Id"):
        list(hook.save_records("delete", "Account", [{"Name": "no id"}]))
    with pytest.raises(ValueError, match="field"):
        hook.get_records("Account", ["001"], [])
    with pytest.raises(SalesforceCompositeLimitError, match="26"):
        hook.composite([{"method": "GET", "url": "limits", "referenceId": f"r{i}"} for i in range(26)])
    with pytest.raises(SalesforceCompositeLimitError, match="26"):
        hook.composite_batch([{"method": "GET", "url": "limits"}] * 26)
    with pytest.raises(ValueError, match="referenceId"):
        hook.composite([{"method": "GET", "url": "limits"}])
    with pytest.raises(SalesforceCompositeLimitError, match="201"):
        hook.sobject_tree("Account", [{"attributes": {"type": "Account", "referenceId": f"r{i}"}, "Name": "x"}
                                      for i in range(201)])
    assert emulator_admin.stats()["requests_total"] == 0


def test_503_mid_run_is_retried_without_duplicates(sf_conn, emulator_admin) -> None:
    hook = SalesforceRestHook(sf_conn())
    emulator_admin.fault(status=503, error_code="SERVER_UNAVAILABLE", count=2, path_prefix=COLLECTIONS, method="POST")
    results = list(hook.save_records("insert", "Account", ({"Name": f"R{i}"} for i in range(600)), concurrency=3))
    assert all(r.success for r in results) and len(results) == 600
    assert _count(hook) == 600
    assert _calls(emulator_admin, "POST") == 5  # 3 chunks + 2 replays of the 503s


def test_dropped_insert_is_not_replayed(sf_conn, emulator_admin) -> None:
    """A POST whose connection dropped may have been processed: reported, never silently re-sent."""
    hook = SalesforceRestHook(sf_conn())
    emulator_admin.fault(drop_connection=True, count=1, path_prefix=COLLECTIONS, method="POST")
    results = list(hook.save_records("insert", "Account", [{"Name": f"D{i}"} for i in range(400)], concurrency=1))
    unknown = [r for r in results if not r.success]
    assert len(results) == 400 and len(unknown) == 200
    assert [r.index for r in unknown] == list(range(200))  # the first call was the one dropped
    assert all(r.errors[0]["statusCode"] == "OUTCOME_UNKNOWN" and "not replayed" in r.errors[0]["message"]
               for r in unknown)
    assert _count(hook) == 200
    assert _calls(emulator_admin, "POST") == 2


def test_dropped_upsert_is_replayed_idempotently(sf_conn, custom_emulator, custom_admin) -> None:
    hook = SalesforceRestHook(sf_conn(server=custom_emulator))
    path = COLLECTIONS + "/Account/External_Id__c"
    custom_admin.fault(drop_connection=True, count=1, path_prefix=path, method="PATCH")
    rows = [{"External_Id__c": f"k{i}", "Name": "n"} for i in range(400)]
    results = list(hook.save_records("upsert", "Account", rows, external_id_field="External_Id__c", concurrency=2))
    assert all(r.success for r in results)
    assert _count(hook) == 400
    assert _calls(custom_admin, "PATCH", path) == 3


def test_session_expiry_mid_run_reauthenticates_once(sf_conn, emulator_admin) -> None:
    hook = SalesforceRestHook(sf_conn())
    before = emulator_admin.stats()["token_grants_total"]
    hook.limits()  # authenticate
    assert emulator_admin.stats()["token_grants_total"] == before + 1
    results = hook.save_records("insert", "Account", ({"Name": f"S{i}"} for i in range(1000)), concurrency=4,
                                batch_size=100)
    first = next(results)
    emulator_admin.expire_sessions()
    rest = list(results)
    assert first.success and all(r.success for r in rest) and len(rest) == 999
    assert emulator_admin.stats()["token_grants_total"] == before + 2
    assert _count(hook) == 1000


def test_composite_batch_graph_and_tree(sf_conn) -> None:
    hook = SalesforceRestHook(sf_conn())
    reply = hook.composite([
        {"method": "POST", "url": "sobjects/Account", "referenceId": "acc", "body": {"Name": "Hooked"}},
        {"method": "POST", "url": "sobjects/Contact", "referenceId": "con",
         "body": {"LastName": "C", "AccountId": "@{acc.id}"}},
    ], all_or_none=True, collate_subrequests=False)
    items = reply["compositeResponse"]
    assert [i["httpStatusCode"] for i in items] == [201, 201]
    account_id = items[0]["body"]["id"]
    batch = hook.composite_batch([{"method": "GET", "url": f"sobjects/Account/{account_id}?fields=Name"},
                                  {"method": "GET", "url": "sobjects/Account/001000000000000AAA"}])
    assert batch["hasErrors"] is True and batch["results"][0]["result"]["Name"] == "Hooked"
    graph = hook.composite_graph([{"graphId": "g1", "compositeRequest": [
        {"method": "POST", "url": "sobjects/Account", "referenceId": "a", "body": {"Name": "G"}}]}])
    assert graph["graphs"][0]["isSuccessful"] is True
    tree = hook.sobject_tree("Account", [{"attributes": {"type": "Account", "referenceId": "t1"}, "Name": "T",
                                          "Contacts": {"records": [{"attributes": {"type": "Contact", "referenceId": "t2"},
                                                                    "LastName": "L"}]}}])
    assert tree["hasErrors"] is False and [r["referenceId"] for r in tree["results"]] == ["t1", "t2"]
    failed = hook.sobject_tree("Account", [{"attributes": {"type": "Account", "referenceId": "bad"}}])
    assert failed["hasErrors"] is True and failed["results"][0]["referenceId"] == "bad"
    related = hook.get_related("Account", account_id, "Contacts", fields=["LastName"])
    assert [r["LastName"] for r in related["records"]] == ["C"]
    parent = hook.get_related("Contact", items[1]["body"]["id"], "Account", fields=["Name"])
    assert parent["Name"] == "Hooked"


def test_external_id_get_and_delete(sf_conn, custom_emulator) -> None:
    hook = SalesforceRestHook(sf_conn(server=custom_emulator))
    hook.upsert("Account", "External_Id__c", "x/1", {"Name": "Slash"})
    record = hook.get_by_external_id("Account", "External_Id__c", "x/1", fields=["Name"])
    assert record["Name"] == "Slash"
    hook.delete_by_external_id("Account", "External_Id__c", "x/1")
    with pytest.raises(SalesforceNotFoundError):
        hook.get_by_external_id("Account", "External_Id__c", "x/1")
    with pytest.raises(SalesforceNotFoundError):
        hook.delete_by_external_id("Account", "External_Id__c", "x/1")
