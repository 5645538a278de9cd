"""SalesforceRestHook's query, search & org section against the emulator over loopback."""

from __future__ import annotations

import base64
import datetime as dt
import tracemalloc

import pytest

from airflow_provider_salesforce_suite.core.errors import (
    SalesforceApiError,
    SalesforceMalformedQueryError,
    SalesforceNotFoundError,
)
from airflow_provider_salesforce_suite.emulator.config import ApexRestRoute
from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook


@pytest.fixture
def hook(sf_conn) -> SalesforceRestHook:
    return SalesforceRestHook(sf_conn())


def _seed(server, sobject: str, rows: list[dict]) -> list[str]:
    results = server.call(lambda: server.state.store.create_many(sobject, rows))
    assert all(r.success for r in results)
    return [r.id for r in results]


def test_query_pages_page_sizes(hook, salesforce_emulator_reset) -> None:
    _seed(salesforce_emulator_reset, "Account", [{"Name": f"Row {i:04d}"} for i in range(450)])
    pages = hook.query_pages("SELECT Id, Name FROM Account ORDER BY Name", batch_size=200)
    first = next(pages)  # lazy: one call so far
    assert len(first) == 200 and first[0]["Name"] == "Row 0000"
    assert [len(p) for p in pages] == [200, 50]
    assert [len(p) for p in hook.query_pages("SELECT Id FROM Account")] == [450]
    assert sum(1 for _ in hook.query("SELECT Id FROM Account", batch_size=200)) == 450


def test_query_pages_include_deleted_and_empty(hook) -> None:
    record_id = hook.create("Account", {"Name": "Gone"})
    hook.delete("Account", record_id)
    assert list(hook.query_pages("SELECT Id FROM Account")) == [[]]
    assert [r["Id"] for p in hook.query_pages("SELECT Id FROM Account", include_deleted=True) for r in p] == [record_id]


def test_malformed_soql_and_sosl_errors(hook) -> None:
    with pytest.raises(SalesforceMalformedQueryError) as err:
        list(hook.query_pages("SELECT Id FROM Account WHERE"))
    assert err.value.error_code == "MALFORMED_QUERY" and "ERROR at Row:1:Column" in err.value.message
    with pytest.raises(SalesforceMalformedQueryError) as err:
        hook.search("FIND {Acme} RETURNING Account(Id WHERE Name = )")
    assert err.value.error_code == "MALFORMED_SEARCH" and "unexpected token" in err.value.message
    with pytest.raises(SalesforceApiError) as err:
        hook.search("FIND {Acme} RETURNING Account(Nme)")
    assert err.value.error_code == "INVALID_FIELD" and "No such column 'Nme'" in err.value.message
    with pytest.raises(SalesforceApiError) as err:
        hook.explain("SELECT Id FROM Nope")
    assert err.value.error_code == "INVALID_TYPE"


def test_explain_search_and_parameterized_search(hook) -> None:
    acme = hook.create("Account", {"Name": "Acme Corp", "Industry": "Energy"})
    hook.create("Account", {"Name": "Globex"})
    plans = hook.explain("SELECT Id FROM Account WHERE Name = 'Acme Corp'")["plans"]
    assert plans[0]["leadingOperationType"] == "Index" and plans[0]["cardinality"] == 1
    found = hook.search("FIND {Acme} RETURNING Account(Id, Name)")
    assert [(r["Id"], r["Name"]) for r in found] == [(acme, "Acme Corp")]
    found = hook.parameterized_search("Acme", sobjects=["Account"], fields=["Name"], limit=10)
    assert [r["Name"] for r in found] == ["Acme Corp"]
    found = hook.parameterized_search("Acme", sobjects=[{"name": "Account", "fields": ["Id"], "where": "Industry = 'Oil'"}])
    assert found == []
    # A term with SOSL's reserved characters needs no escaping by the caller.
    assert hook.parameterized_search("Acme} RETURNING Contact", sobjects=["Account"]) == []


def test_org_resources_and_counts(hook) -> None:
    hook.create("Account", {"Name": "Counted"})
    assert hook.resources()["search"].endswith("/search")
    assert hook.sobject_info("Account")["objectDescribe"]["name"] == "Account"
    assert hook.record_counts(["Account", "Contact"]) == {"Account": 1, "Contact": 0}
    assert hook.record_counts()["Account"] == 1
    with pytest.raises(SalesforceApiError) as err:
        hook.record_counts(["Nope"])
    assert err.value.error_code == "INVALID_TYPE"


def test_get_updated_and_deleted_accept_datetimes(hook) -> None:
    kept = hook.create("Account", {"Name": "Kept"})
    gone = hook.create("Account", {"Name": "Gone"})
    hook.delete("Account", gone)
    now = dt.datetime.now(dt.timezone.utc)
    naive_start = (now - dt.timedelta(hours=1)).replace(tzinfo=None)  # naive means UTC
    aware_end = (now + dt.timedelta(hours=1)).astimezone(dt.timezone(dt.timedelta(hours=5)))
    assert hook.get_updated("Account", naive_start, aware_end)["ids"] == [kept]
    deleted = hook.get_deleted("Account", naive_start, aware_end)
    assert [d["id"] for d in deleted["deletedRecords"]] == [gone]
    with pytest.raises(SalesforceApiError) as err:
        hook.get_updated("Account", now - dt.timedelta(days=40), now)
    assert err.value.error_code == "INVALID_REPLICATION_DATE"
    with pytest.raises(SalesforceApiError) as err:
        hook.get_deleted("Account", now, now - dt.timedelta(hours=1))
    assert err.value.error_code == "INVALID_REPLICATION_DATE"


def test_recently_viewed_and_list_views(hook) -> None:
    first = hook.create("Account", {"Name": "Alpha"})
    hook.create("Account", {"Name": "Beta"})
    assert len(hook.recently_viewed(limit=1)) == 1
    assert first in {r["Id"] for r in hook.recently_viewed()}
    views = {v["developerName"]: v for v in hook.list_views("Account")}
    view_id = views["AllAccounts"]["id"]
    assert hook.describe_list_view("Account", view_id)["query"].startswith("SELECT Name")
    rows = list(hook.list_view_results("Account", view_id, page_size=1))
    assert [r["Name"] for r in rows] == ["Alpha", "Beta"]
    with pytest.raises(SalesforceNotFoundError):
        hook.describe_list_view("Contact", view_id)


def test_apex_rest(hook, salesforce_emulator_reset) -> None:
    config = salesforce_emulator_reset.state.config
    salesforce_emulator_reset.call(lambda: config.apex_rest.append(ApexRestRoute("/Echo/*", "POST", echo=True)))
    try:
        assert hook.apex_rest("POST", "Echo/1", json={"a": 1}) == {"a": 1}
        with pytest.raises(SalesforceNotFoundError) as err:
            hook.apex_rest("GET", "/Missing")
        assert err.value.message == "Could not find a match for URL /Missing"
    finally:
        salesforce_emulator_reset.call(lambda: config.apex_rest.clear())


def test_passwords(hook, caplog) -> None:
    user_id = next(hook.query("SELECT Id FROM User LIMIT 1"))["Id"]
    assert hook.password_expired(user_id) is False
    generated = hook.reset_password(user_id)
    assert len(generated) >= 8 and hook.password_expired(user_id) is True
    hook.set_password(user_id, "Sup3rSecretValue")
    assert hook.password_expired(user_id) is False
    with pytest.raises(SalesforceApiError) as err:
        hook.set_password(user_id, "weak")
    assert err.value.error_code == "INVALID_NEW_PASSWORD" and "weak" not in str(err.value)
    assert "Sup3rSecretValue" not in caplog.text and generated not in caplog.text


def test_quick_actions_approvals_process_rules(hook) -> None:
    account = hook.create("Account", {"Name": "Acme"})
    assert "Account.NewContact" in {a["name"] for a in hook.quick_actions("Account")}
    assert "NewTask" in {a["name"] for a in hook.quick_actions()}
    result = hook.invoke_quick_action("Account.NewContact", {"LastName": "Quick"}, sobject="Account",
                                      context_id=account)
    assert hook.get("Contact", result["id"], ["AccountId"])["AccountId"] == account
    assert hook.invoke_quick_action("NewTask", {"Subject": "Call"})["success"] is True

    assert "Account" in hook.approvals()
    submitted = hook.submit_approval([{"actionType": "Submit", "contextId": account, "comments": "go"}])[0]
    assert submitted["instanceStatus"] == "Pending"
    approved = hook.submit_approval([{"actionType": "Approve", "contextId": submitted["newWorkitemIds"][0]}])[0]
    assert approved["instanceStatus"] == "Approved" and approved["instanceId"] == submitted["instanceId"]
    with pytest.raises(SalesforceApiError) as err:
        hook.submit_approval([{"actionType": "Submit", "contextId": hook.create("Case", {"Subject": "x"})}])
    assert err.value.error_code == "NO_APPLICABLE_PROCESS"

    assert set(hook.process_rules()) >= {"Account"}
    assert list(hook.process_rules("Account")) == ["Account"]
    assert hook.trigger_process_rules([account]) == {"errors": None, "success": True}


def test_download_blob_streams_in_bounded_memory(hook, salesforce_emulator_reset, tmp_path) -> None:
    account = hook.create("Account", {"Name": "Files"})
    payload = bytes(range(256)) * (5 * 1024 * 4)  # 5 MiB
    encoded = base64.b64encode(payload).decode()
    attachment = _seed(salesforce_emulator_reset, "Attachment",
                       [{"Name": "big.bin", "ParentId": account, "Body": encoded}])[0]
    del encoded
    target = tmp_path / "big.bin"
    tracemalloc.start()
    try:
        written = hook.download_blob("Attachment", attachment, "Body", str(target))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written == len(payload) == target.stat().st_size
    assert target.read_bytes() == payload
    assert peak < len(payload) / 4, f"peak {peak} bytes for a {len(payload)}-byte body"


def test_download_blob_to_object_storage_and_errors(hook, tmp_path) -> None:
    from airflow.sdk import ObjectStoragePath

    account = hook.create("Account", {"Name": "Files"})
    attachment = hook.create("Attachment", {"Name": "a.txt", "ParentId": account,
                                            "Body": base64.b64encode(b"hello blob").decode()})
    destination = ObjectStoragePath(f"file://{tmp_path}/copy.txt")
    assert hook.download_blob("Attachment", attachment, "Body", destination) == 10
    assert (tmp_path / "copy.txt").read_bytes() == b"hello blob"
    with pytest.raises(SalesforceNotFoundError):
        hook.download_blob("Attachment", "00P000000000999", "Body", tmp_path / "missing.bin")
