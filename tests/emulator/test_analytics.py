"""CRM Analytics (Wave) over loopback with plain ``requests``: resources and their JSON shapes,
paging, uploads through InsightsExternalData (gzip parts, operations, bad metadata), SAQL
(and its errors), dataflow jobs over time, failures and unknown ids."""

from __future__ import annotations

import base64
import gzip
import json
import time

import pytest
from sf_emulator_client import V, EmulatorClient

WAVE = V + "/wave"
META = {"fileFormat": {"charsetName": "UTF-8", "fieldsDelimitedBy": ",", "numberOfLinesToIgnore": 1},
        "objects": [{"connector": "CSV", "fullyQualifiedName": "Sales", "label": "Sales", "name": "Sales",
                     "fields": [{"fullyQualifiedName": "Sales.Id", "name": "Id", "type": "Text", "label": "Id",
                                 "isUniqueId": True},
                                {"fullyQualifiedName": "Sales.Region", "name": "Region", "type": "Text",
                                 "label": "Region"},
                                {"fullyQualifiedName": "Sales.Amount", "name": "Amount", "type": "Numeric",
                                 "label": "Amount", "precision": 18, "scale": 2, "defaultValue": "0"}]}]}
CSV = "Id,Region,Amount\n1,EU,10\n2,EU,30\n3,US,5\n4,APAC,7.5\n"


@pytest.fixture
def client(salesforce_emulator_reset) -> EmulatorClient:
    c = EmulatorClient(salesforce_emulator_reset)
    c.token()
    return c


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def upload(client: EmulatorClient, alias: str, parts: list[bytes], *, meta: dict | None = META,
           operation: str = "Overwrite") -> dict:
    header = {"Format": "Csv", "EdgemartAlias": alias, "Operation": operation, "Action": "None"}
    if meta is not None:
        header["MetadataJson"] = _b64(json.dumps(meta).encode())
    reply = client.post(V + "/sobjects/InsightsExternalData", json=header)
    assert reply.status_code == 201, reply.text
    header_id = reply.json()["id"]
    assert header_id.startswith("06V")
    for number, part in enumerate(parts, start=1):
        reply = client.post(V + "/sobjects/InsightsExternalDataPart",
                            json={"InsightsExternalDataId": header_id, "PartNumber": number, "DataFile": _b64(part)})
        assert reply.status_code == 201, reply.text
    assert client.patch(f"{V}/sobjects/InsightsExternalData/{header_id}", json={"Action": "Process"}).status_code == 204
    return wait_upload(client, header_id)


def wait_upload(client: EmulatorClient, header_id: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        record = client.get(f"{V}/sobjects/InsightsExternalData/{header_id}").json()
        if not seen or seen[-1] != record["Status"]:
            seen.append(record["Status"])
        if record["Status"] in ("Completed", "CompletedWithWarnings", "Failed", "NotProcessed") \
                or time.monotonic() > deadline:
            record["seen"] = seen
            return record
        time.sleep(0.02)


def saql(client: EmulatorClient, text: str):
    return client.post(WAVE + "/query", json={"query": text})


def wait_job(client: EmulatorClient, job_id: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"{WAVE}/dataflowjobs/{job_id}").json()
        if job["status"] in ("Success", "Failure", "Warning") or time.monotonic() > deadline:
            return job
        time.sleep(0.02)


def test_top_level_resources(client: EmulatorClient) -> None:
    body = client.get(WAVE).json()
    assert body["datasets"] == WAVE + "/datasets" and body["query"] == WAVE + "/query"
    assert {"dashboards", "folders", "lenses", "dataflows", "dataflowjobs", "recipes", "templates"} <= set(body)


def test_upload_creates_dataset_and_saql_groups(client: EmulatorClient) -> None:
    client.post("/__emulator__/analytics", json={"min_queued_seconds": 0.1, "min_running_seconds": 0.1})
    record = upload(client, "Sales", [CSV.encode()])
    assert record["Status"] == "Completed" and record["seen"][-1] == "Completed"
    assert "InProgress" in record["seen"] or "Queued" in record["seen"]
    datasets = client.get(WAVE + "/datasets").json()
    assert datasets["totalSize"] == 1 and datasets["nextPageUrl"] is None
    dataset = datasets["datasets"][0]
    assert dataset["id"].startswith("0Fb") and dataset["name"] == "Sales" and dataset["type"] == "dataset"
    assert dataset["currentVersionId"].startswith("0Fc") and dataset["folder"]["name"] == "SharedApp"
    version = client.get(f"{WAVE}/datasets/{dataset['id']}/versions/{dataset['currentVersionId']}").json()
    assert version["totalRowCount"] == 4 and version["type"] == "datasetVersion"
    assert [m["field"] for m in version["xmdMain"]["measures"]] == ["Amount"]
    reply = saql(client, 'q = load "Sales"; q = filter q by Amount > 6; q = group q by Region; '
                         "q = foreach q generate Region as 'Region', count() as 'n', sum(Amount) as 'total'; "
                         "q = order q by 'total' desc; q = limit q 10;")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["action"] == "query" and body["responseId"] and body["query"].startswith("q = load")
    assert body["results"]["records"] == [{"Region": "EU", "n": 2, "total": 40}, {"Region": "APAC", "n": 1,
                                                                                   "total": 7.5}]
    columns = body["results"]["metadata"][0]["columns"]
    assert [(c["columnName"], c["columnType"]) for c in columns] == [("Region", "string"), ("n", "numeric"),
                                                                      ("total", "numeric")]
    by_id = saql(client, f'q = load "{dataset["id"]}/{dataset["currentVersionId"]}"; q = group q by all; '
                         "q = foreach q generate count() as 'n', avg(Amount) as 'a', min(Amount) as 'lo', "
                         "max(Amount) as 'hi', unique(Region) as 'regions';").json()
    assert by_id["results"]["records"] == [{"n": 4, "a": 13.125, "lo": 5, "hi": 30, "regions": 3}]


def test_gzip_parts_and_operations(client: EmulatorClient) -> None:
    data = CSV.encode()
    half = len(data) // 2
    one_stream = gzip.compress(data)
    assert upload(client, "Sales", [one_stream[:20], one_stream[20:]])["Status"] == "Completed"
    assert upload(client, "Sales", [gzip.compress(data[:half]), gzip.compress(data[half:])])["Status"] == "Completed"
    assert upload(client, "Sales", [b"Id,Region,Amount\n5,EU,1\n"], operation="Append")["Status"] == "Completed"
    assert upload(client, "Sales", [b"Id,Region,Amount\n1,US,100\n"], operation="Upsert")["Status"] == "Completed"
    assert upload(client, "Sales", [b"Id,Region,Amount\n2,EU,0\n"], operation="Delete")["Status"] == "Completed"
    rows = saql(client, 'q = load "Sales"; q = order q by Id asc; q = foreach q generate Id, Region, Amount;').json()
    assert rows["results"]["records"] == [{"Id": "1", "Region": "US", "Amount": 100}, {"Id": "3", "Region": "US",
                                          "Amount": 5}, {"Id": "4", "Region": "APAC", "Amount": 7.5},
                                          {"Id": "5", "Region": "EU", "Amount": 1}]
    dataset = client.get(WAVE + "/datasets").json()["datasets"][0]
    assert len(client.get(f"{WAVE}/datasets/{dataset['id']}/versions").json()["versions"]) == 5


def test_upload_without_metadata_infers_text_dimensions(client: EmulatorClient) -> None:
    assert upload(client, "Plain", [CSV.encode()], meta=None)["Status"] == "Completed"
    body = saql(client, 'q = load "Plain"; q = filter q by Amount == "10"; q = foreach q generate Id;').json()
    assert body["results"]["records"] == [{"Id": "1"}]
    assert body["results"]["metadata"][0]["columns"][0]["columnType"] == "string"


@pytest.mark.parametrize("csv_text, fragment", [
    ("Id,Region\n1,EU\n", "not in the file header: ['Amount']"),
    ("Id,Region,Amount,Extra\n1,EU,1,x\n", "not in metadata: ['Extra']"),
    ("Region,Id,Amount\nEU,1,1\n", "the order differs"),
])
def test_metadata_that_does_not_match_the_csv_fails(client: EmulatorClient, csv_text: str, fragment: str) -> None:
    record = upload(client, "Bad", [csv_text.encode()])
    assert record["Status"] == "Failed" and fragment in record["StatusMessage"]
    assert client.get(WAVE + "/datasets").json()["totalSize"] == 0


def test_bad_rows_complete_with_warnings(client: EmulatorClient) -> None:
    record = upload(client, "Warn", [b"Id,Region,Amount\n1,EU,ten\n2,EU,2\n3,EU\n"])
    assert record["Status"] == "CompletedWithWarnings"
    assert "2 row(s) skipped" in record["StatusMessage"] and "Row 2" in record["StatusMessage"]


def test_upload_failures(client: EmulatorClient) -> None:
    assert "No data parts" in upload(client, "None", [])["StatusMessage"]
    assert "not valid gzip" in upload(client, "Gz", [b"\x1f\x8b\x08garbage"])["StatusMessage"]
    plain = {**META, "objects": [{**META["objects"][0], "fields": [
        {k: v for k, v in f.items() if k != "isUniqueId"} for f in META["objects"][0]["fields"]]}]}
    assert "needs a field with isUniqueId" in upload(client, "U", [CSV.encode()], meta=plain,
                                                     operation="Upsert")["StatusMessage"]
    bad = client.post(V + "/sobjects/InsightsExternalData",
                      json={"Format": "Csv", "EdgemartAlias": "x", "Operation": "Merge", "Action": "None"})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


@pytest.mark.parametrize("text, fragment", [
    ('q = load "Sales"; q = filter q by;', "Syntax error"),
    ('q = load "Nope";', "Dataset 'Nope' not found"),
    ('q = load "Sales"; q = foreach q generate Bogus;', "Unknown field 'Bogus'"),
    ('q = load "Sales"; q = foreach q generate sum(Amount) as \'s\';', "needs a preceding group"),
    ('q = load "Sales"; q = group q by Region; q = foreach q generate Id;', "grouping field or an aggregate"),
    ('q = load "Sales"; r = limit z 5;', "Undefined stream 'z'"),
    ('q = load "Sales"; q = group q by Region;', "followed by a foreach"),
])
def test_invalid_saql_answers_wave_error(client: EmulatorClient, text: str, fragment: str) -> None:
    upload(client, "Sales", [CSV.encode()])
    reply = saql(client, text)
    assert reply.status_code == 400
    error = reply.json()[0]
    assert error["errorCode"] == "119" and fragment in error["message"], error


def test_list_paging_filters_and_assets(client: EmulatorClient) -> None:
    folder = client.post(WAVE + "/folders", json={"label": "Team Folder", "name": "Team"}).json()
    assert folder["id"].startswith("00l") and folder["type"] == "folder"
    for n in range(5):
        created = client.post(WAVE + "/dashboards", json={"label": f"Board {n}", "folder": {"id": folder["id"]},
                                                          "state": {"widgets": {}}})
        assert created.status_code == 201 and created.json()["id"].startswith("0FK")
    page = client.get(WAVE + "/dashboards", params={"pageSize": 2, "folderId": folder["id"]}).json()
    names = [d["label"] for d in page["dashboards"]]
    while page["nextPageUrl"]:
        page = client.get(page["nextPageUrl"]).json()
        names += [d["label"] for d in page["dashboards"]]
    assert names == [f"Board {n}" for n in range(5)]
    assert client.get(WAVE + "/dashboards", params={"q": "board 3"}).json()["totalSize"] == 1
    dash_id = client.get(WAVE + "/dashboards").json()["dashboards"][0]["id"]
    patched = client.patch(f"{WAVE}/dashboards/{dash_id}", json={"label": "Renamed"}).json()
    assert patched["label"] == "Renamed" and client.get(f"{WAVE}/dashboards/{dash_id}").json()["label"] == "Renamed"
    replaced = client.request("PUT", f"{WAVE}/folders/{folder['id']}", json={"label": "New", "description": "d"})
    assert replaced.status_code == 200 and replaced.json()["label"] == "New"
    assert client.request("PUT", f"{WAVE}/folders/{folder['id']}", json={"description": "x"}).status_code == 400
    lens = client.post(WAVE + "/lenses", json={"label": "A lens", "visualizationType": "hbar"}).json()
    assert lens["type"] == "lens" and lens["visualizationType"] == "hbar"
    assert client.get(WAVE + "/templates").json()["templates"][0]["type"] == "template"
    assert client.get(WAVE + "/annotations").json()["annotations"] == []
    assert client.get(WAVE + "/dashboards", params={"pageSize": 0}).status_code == 400
    upload(client, "Sales", [CSV.encode()])
    dataset = client.get(WAVE + "/datasets").json()["datasets"][0]
    moved = client.patch(f"{WAVE}/datasets/{dataset['id']}", json={"label": "Sales!", "folder": {"id": folder["id"]}})
    assert moved.json()["label"] == "Sales!" and moved.json()["folder"]["id"] == folder["id"]


@pytest.mark.parametrize("path, method", [
    ("/datasets/0Fb000000000000AAA", "GET"), ("/folders/00l000000000000AAA", "GET"),
    ("/dashboards/0FK000000000000AAA", "PATCH"), ("/dataflowjobs/03C000000000000AAA", "GET"),
    ("/datasets?folderId=00l000000000000AAA", "GET"),
])
def test_unknown_ids_are_404(client: EmulatorClient, path: str, method: str) -> None:
    reply = client.request(method, WAVE + path, json={"label": "x"} if method == "PATCH" else None)
    assert reply.status_code == 404 and reply.json()[0]["errorCode"] == "NOT_FOUND"


def test_dataflow_job_moves_through_states_and_rebuilds_dataset(client: EmulatorClient) -> None:
    for name in ("Acme", "Globex"):
        client.post(V + "/sobjects/Account", json={"Name": name, "Industry": "Tech", "AnnualRevenue": 100})
    client.post("/__emulator__/analytics", json={"min_queued_seconds": 0.2, "min_running_seconds": 0.2})
    flows = client.get(WAVE + "/dataflows").json()["dataflows"]
    flow = next(f for f in flows if f["name"] == "Rebuild_Accounts")
    assert flow["id"].startswith("02K") and flow["type"] == "dataflow"
    started = client.post(WAVE + "/dataflowjobs", json={"dataflowId": flow["id"], "command": "start"})
    assert started.status_code == 201
    job = started.json()
    assert job["id"].startswith("03C") and job["status"] == "Queued" and job["type"] == "dataflowjob"
    statuses = set()
    deadline = time.monotonic() + 5
    while job["status"] not in ("Success", "Failure") and time.monotonic() < deadline:
        job = client.get(f"{WAVE}/dataflowjobs/{job['id']}").json()
        statuses.add(job["status"])
        time.sleep(0.02)
    assert job["status"] == "Success" and "Running" in statuses
    listed = client.get(WAVE + "/dataflowjobs", params={"dataflowId": flow["id"]}).json()["dataflowJobs"]
    assert [j["id"] for j in listed] == [job["id"]]
    body = saql(client, 'q = load "Accounts"; q = group q by all; q = foreach q generate count() as \'n\', '
                        "sum(AnnualRevenue) as 'rev';").json()
    assert body["results"]["records"] == [{"n": 2, "rev": 200}]


def test_dataflow_failure_and_stop(client: EmulatorClient) -> None:
    client.post("/__emulator__/analytics", json={"fail_next_dataflow": "Node sfdcDigest failed: boom"})
    flow_id = client.get(WAVE + "/dataflows").json()["dataflows"][0]["id"]
    job = client.post(WAVE + "/dataflowjobs", json={"dataflowId": flow_id, "command": "start"}).json()
    done = wait_job(client, job["id"])
    assert done["status"] == "Failure" and done["message"] == "Node sfdcDigest failed: boom"
    client.post("/__emulator__/analytics", json={"min_queued_seconds": 2})
    job = client.post(WAVE + "/dataflowjobs", json={"dataflowId": flow_id, "command": "start"}).json()
    stopped = client.patch(f"{WAVE}/dataflowjobs/{job['id']}", json={"command": "stop"}).json()
    assert stopped["status"] == "Failure" and "stopped" in stopped["message"]
    assert client.post(WAVE + "/dataflowjobs", json={"dataflowId": "02K000000000000AAA",
                                                     "command": "start"}).status_code == 404
    assert client.post(WAVE + "/dataflowjobs", json={"dataflowId": flow_id}).status_code == 400


def test_recipe_runs_as_its_target_dataflow(client: EmulatorClient) -> None:
    client.post(V + "/sobjects/Account", json={"Name": "Initech", "Industry": "Software"})
    recipe = client.get(WAVE + "/recipes").json()["recipes"][0]
    assert recipe["type"] == "recipe" and recipe["targetDataflowId"].startswith("02K")
    job = client.post(WAVE + "/dataflowjobs", json={"dataflowId": recipe["targetDataflowId"],
                                                    "command": "start"}).json()
    assert wait_job(client, job["id"])["status"] == "Success"
    body = saql(client, 'q = load "Accounts_Prepared"; q = foreach q generate Name;').json()
    assert body["results"]["records"] == [{"Name": "Initech"}]


def test_reset_forgets_datasets(client: EmulatorClient, salesforce_emulator_reset) -> None:
    upload(client, "Sales", [CSV.encode()])
    salesforce_emulator_reset.reset()
    assert client.get(WAVE + "/datasets").json()["totalSize"] == 0
    assert saql(client, 'q = load "Sales";').status_code == 400
