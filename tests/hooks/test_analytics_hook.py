"""CRM Analytics hook against the emulator: assets and paging, SAQL (and its errors), uploads
(inferred/given metadata, parts split under the limit, gzip, bad metadata), dataflows and recipes
(success, failure message, stop), unknown ids, async twins."""

from __future__ import annotations

import asyncio
import gzip
import json

import pytest
import requests

from airflow_provider_salesforce_suite.core.errors import SalesforceApiError, SalesforceNotFoundError
from airflow_provider_salesforce_suite.hooks.analytics import (
    MAX_PART_BYTES,
    SalesforceAnalyticsError,
    SalesforceAnalyticsHook,
    infer_metadata,
)

META = {"objects": [{"name": "Sales", "fullyQualifiedName": "Sales", "label": "Sales", "fields": [
    {"name": "Id", "fullyQualifiedName": "Sales.Id", "label": "Id", "type": "Text", "isUniqueId": True},
    {"name": "Region", "fullyQualifiedName": "Sales.Region", "label": "Region", "type": "Text"},
    {"name": "Amount", "fullyQualifiedName": "Sales.Amount", "label": "Amount", "type": "Numeric",
     "precision": 18, "scale": 2}]}]}


def analytics_settings(server, **settings) -> dict:
    """POST the emulator's analytics knobs."""
    return requests.post(server.url + "/__emulator__/analytics", json=settings, verify=server.ca_bundle,
                         timeout=10).json()


@pytest.fixture
def hook(sf_conn) -> SalesforceAnalyticsHook:
    return SalesforceAnalyticsHook(sf_conn("sf_analytics"))


def write_sales(path, rows: int) -> str:
    with open(path, "w") as fh:
        fh.write("Id,Region,Amount\n")
        for i in range(rows):
            fh.write(f"{i},{('EU', 'US', 'APAC')[i % 3]},{i % 100}\n")
    return str(path)


def parts_of(hook: SalesforceAnalyticsHook, header_id: str) -> list[dict]:
    return hook.request("GET", hook.data_url("query"), params={
        "q": f"SELECT Id, PartNumber FROM InsightsExternalDataPart WHERE InsightsExternalDataId = "
             f"'{header_id}' ORDER BY PartNumber"}).json()["records"]


def test_upload_split_into_parts_then_saql(hook, tmp_path) -> None:
    source = write_sales(tmp_path / "sales.csv", 3000)
    size = (tmp_path / "sales.csv").stat().st_size
    header_id = hook.upload_dataset(source, "Sales", metadata=META, part_bytes=10_000, label="Sales data")
    status = hook.wait("upload", header_id, poll_interval=0.02, timeout=20)
    assert status.status == "Completed" and status.done and not status.failed
    assert len(parts_of(hook, header_id)) == -(-size // 10_000) > 1
    records = hook.query_records('q = load "Sales"; q = group q by Region; '
                                 "q = foreach q generate Region as 'Region', count() as 'n'; q = order q by Region;")
    assert records == [{"Region": "APAC", "n": 1000}, {"Region": "EU", "n": 1000}, {"Region": "US", "n": 1000}]
    dataset = next(hook.iter_datasets(q="Sales"))
    assert dataset["label"] == "Sales data"
    assert hook.get_dataset_version(dataset["id"], dataset["currentVersionId"])["totalRowCount"] == 3000


def test_part_over_the_limit_is_refused_before_sending(hook, tmp_path) -> None:
    source = write_sales(tmp_path / "s.csv", 3)
    with pytest.raises(SalesforceAnalyticsError, match="part_bytes must be between"):
        hook.upload_dataset(source, "S", part_bytes=MAX_PART_BYTES + 1)
    with pytest.raises(SalesforceAnalyticsError, match="operation must be"):
        hook.upload_dataset(source, "S", operation="Merge")  # type: ignore[arg-type]
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(SalesforceAnalyticsError, match="empty"):
        hook.upload_dataset(str(tmp_path / "empty.csv"), "S")


def test_gzip_source_inferred_metadata_and_compressed_parts(hook, tmp_path, salesforce_emulator_reset) -> None:
    path = tmp_path / "plain.csv.gz"
    path.write_bytes(gzip.compress(b"Name,City\n" + b"".join(b"n%d,Paris\n" % i for i in range(2000))))
    header_id = hook.upload_dataset(str(path), "Plain", part_bytes=5000)
    assert hook.wait("upload", header_id, poll_interval=0.02, timeout=20).status == "Completed"
    store = salesforce_emulator_reset.state.store

    def blob(sobject: str, record_id: str, field: str) -> bytes:
        return salesforce_emulator_reset.call(lambda: b"".join(store.blob_chunks(sobject, record_id, field)))

    # Compressible text: every part is gzip, each far smaller than its 5000 raw bytes.
    part_ids = [p["Id"] for p in parts_of(hook, header_id)]
    assert len(part_ids) == 5
    for part_id in part_ids:
        data = blob("InsightsExternalDataPart", part_id, "DataFile")
        assert data[:2] == b"\x1f\x8b" and len(data) < 2000
    meta = json.loads(blob("InsightsExternalData", header_id, "MetadataJson"))
    assert meta == infer_metadata(["Name", "City"], "Plain")
    assert hook.query_records('q = load "Plain"; q = filter q by City == "Paris"; q = group q by all; '
                              "q = foreach q generate count() as 'n';") == [{"n": 2000}]


def test_metadata_not_matching_the_csv_fails_with_salesforce_message(hook, tmp_path) -> None:
    source = tmp_path / "bad.csv"
    source.write_text("Id,Region\n1,EU\n")
    header_id = hook.upload_dataset(str(source), "Bad", metadata=META)
    with pytest.raises(SalesforceAnalyticsError, match=r"Upload 06V\w+ ended Failed: Metadata does not match"):
        hook.wait("upload", header_id, poll_interval=0.02, timeout=20)


def test_invalid_saql_raises_salesforce_error(hook) -> None:
    with pytest.raises(SalesforceApiError) as err:
        hook.query('q = load "Nowhere";')
    assert err.value.status == 400 and err.value.error_code == "119" and "not found" in str(err.value)
    with pytest.raises(SalesforceApiError, match="Syntax error"):
        hook.query("q = load;")


def test_assets_paging_and_updates(hook) -> None:
    folder = hook.replace_folder(hook.get_folder(next(hook.iter_folders())["id"])["id"], {"label": "Shared!"})
    assert folder["label"] == "Shared!"
    ids = [hook.create_dashboard({"label": f"D{n}", "state": {}})["id"] for n in range(7)]
    listed = hook.iter_dashboards(page_size=3)
    assert iter(listed) is listed  # lazy
    assert [d["id"] for d in listed] == ids
    assert hook.update_dashboard(ids[0], {"label": "First"})["label"] == "First"
    assert hook.get_dashboard(ids[0])["label"] == "First"
    assert list(hook.iter_lenses()) == [] and list(hook.iter_annotations()) == []
    assert next(hook.iter_templates())["type"] == "template"
    assert set(hook.get_resources()) >= {"datasets", "query", "dataflowjobs"}


@pytest.mark.parametrize("call", [
    lambda h: h.get_dataset("0Fb000000000000AAA"), lambda h: h.get_folder("00l000000000000AAA"),
    lambda h: list(h.iter_datasets(folder_id="00l000000000000AAA")), lambda h: h.get_dataflow_job("03C000000000000AAA"),
    lambda h: h.update_dataset("0Fb000000000000AAA", {"label": "x"}), lambda h: h.start_dataflow("02K000000000000AAA"),
])
def test_unknown_ids_raise_not_found(hook, call) -> None:
    with pytest.raises(SalesforceNotFoundError):
        call(hook)


def test_dataflow_success_failure_recipe_and_stop(hook, salesforce_emulator_reset) -> None:
    hook.request("POST", hook.data_url("sobjects/Account"), json={"Name": "Acme", "AnnualRevenue": 5})
    flow = next(f for f in hook.list_dataflows() if f["name"] == "Rebuild_Accounts")
    job = hook.start_dataflow(flow["id"])
    assert hook.wait("dataflow_job", job["id"], poll_interval=0.02, timeout=20).status == "Success"
    assert [j["id"] for j in hook.iter_dataflow_jobs(dataflow_id=flow["id"])] == [job["id"]]
    assert hook.query_records('q = load "Accounts"; q = foreach q generate Name, AnnualRevenue;') == [
        {"Name": "Acme", "AnnualRevenue": 5}]
    analytics_settings(salesforce_emulator_reset, fail_next_dataflow="Node digest failed: field Foo missing")
    job = hook.start_dataflow(flow["id"])
    with pytest.raises(SalesforceAnalyticsError, match="ended Failure: Node digest failed: field Foo missing"):
        hook.wait("dataflow_job", job["id"], poll_interval=0.02, timeout=20)
    recipe_job = hook.start_recipe(hook.list_recipes()[0]["id"])
    assert hook.wait("dataflow_job", recipe_job["id"], poll_interval=0.02, timeout=20).done
    analytics_settings(salesforce_emulator_reset, min_queued_seconds=5)
    job = hook.start_dataflow(flow["id"])
    assert hook.stop_dataflow_job(job["id"])["status"] == "Failure"
    with pytest.raises(SalesforceAnalyticsError, match="still Queued"):
        hook.wait("dataflow_job", hook.start_dataflow(flow["id"])["id"], poll_interval=0.05, timeout=0.2)


def test_async_twins(hook, tmp_path) -> None:
    header_id = hook.upload_dataset(write_sales(tmp_path / "a.csv", 10), "A", metadata=META)
    job = hook.start_dataflow(hook.list_dataflows()[0]["id"])
    hook.wait("upload", header_id, poll_interval=0.02, timeout=20)
    hook.wait("dataflow_job", job["id"], poll_interval=0.02, timeout=20)

    async def both():
        try:
            return await hook.a_upload_status(header_id), await hook.a_get_dataflow_job(job["id"])
        finally:
            await hook.async_session().close()

    upload, dataflow_job = asyncio.run(both())
    assert upload.status == "Completed" and upload.id == header_id
    assert dataflow_job["status"] == "Success"
