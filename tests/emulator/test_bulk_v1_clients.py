"""The PyPI ``salesforce-bulk`` client (heroku's Bulk API 1.0 client), used unchanged against the
emulator for CSV, XML and JSON jobs: it compares ``Content-Type`` for equality (``text/csv``,
``application/xml``, ``application/json``), creates and closes every job with an XML body, and
reads job info as XML, batch info and results in whatever format the header names."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
from salesforce_bulk import CsvDictsAdapter, SalesforceBulk
from sf_emulator_client import EmulatorClient

NS = "{http://www.force.com/2009/06/asyncapi/dataload}"
ROWS = [{"Name": "Bulk Alpha", "Industry": "Energy"}, {"Name": "Bulk Beta", "Industry": "Retail"}]


@pytest.fixture
def bulk(salesforce_emulator_reset, monkeypatch) -> SalesforceBulk:
    # salesforce-bulk passes no verify of its own: requests takes the CA bundle from the environment.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", salesforce_emulator_reset.ca_bundle)
    token = EmulatorClient(salesforce_emulator_reset).token()
    return SalesforceBulk(sessionId=token, host=salesforce_emulator_reset.url, API_version="62.0")


def _xml_rows(rows: list[dict[str, str]]) -> bytes:
    root = ET.Element("sObjects", xmlns=NS[1:-1])
    for row in rows:
        sobject = ET.SubElement(root, "sObject")
        for name, value in row.items():
            ET.SubElement(sobject, name).text = value
    return b'<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(root, "utf-8")


def _xml_records(stream) -> list[dict[str, str]]:
    return [{child.tag.replace(NS, ""): child.text for child in record if child.tag != NS + "type"}
            for record in ET.parse(stream).getroot()]


def _csv_records(stream) -> list[dict[str, str]]:
    import unicodecsv

    return list(unicodecsv.DictReader(stream, encoding="utf-8"))


def _json_records(stream) -> list[dict[str, str]]:
    return [{k: v for k, v in record.items() if k != "attributes"} for record in json.load(stream)]


FORMATS: dict[str, tuple[Callable, Callable]] = {
    "CSV": (lambda rows: CsvDictsAdapter(iter(rows)), _csv_records),
    "XML": (_xml_rows, _xml_records),
    "JSON": (json.dumps, _json_records),
}


@pytest.mark.parametrize("content_type", list(FORMATS))
def test_insert_then_query_in_each_format(bulk: SalesforceBulk, content_type: str) -> None:
    encode, decode = FORMATS[content_type]
    job = bulk.create_insert_job("Account", contentType=content_type)
    batch = bulk.post_batch(job, encode(ROWS))
    bulk.close_job(job)
    bulk.wait_for_batch(job, batch, timeout=30, sleep_interval=0.05)
    results = bulk.get_batch_results(batch, job)
    # None here means the client did not recognise the Content-Type of the results
    assert results is not None and len(results) == 2
    assert [str(r.success).lower() for r in results] == ["true", "true"]
    assert [str(r.created).lower() for r in results] == ["true", "true"]
    if content_type != "XML":  # salesforce-bulk 2.2 drops XML result ids (its getid returns nothing)
        assert all(str(r.id).startswith("001") for r in results)
    [listed] = bulk.get_batch_list(job)
    assert listed["id"] == batch and listed["state"] == "Completed"
    if content_type != "JSON":  # job_status parses XML only: JSON jobs answer JSON, on Salesforce too
        assert bulk.job_status(job)["state"] == "Closed"

    query = bulk.create_query_job("Account", contentType=content_type)
    soql = "SELECT Name, Industry FROM Account WHERE Name LIKE 'Bulk%' ORDER BY Name"
    query_batch = bulk.query(query, soql)
    bulk.wait_for_batch(query, query_batch, timeout=30, sleep_interval=0.05)
    assert bulk.get_query_batch_request(query_batch, query) == soql
    rows = [row for result in bulk.get_all_results_for_query_batch(query_batch, query) for row in decode(result)]
    assert [(row["Name"], row["Industry"]) for row in rows] == [("Bulk Alpha", "Energy"), ("Bulk Beta", "Retail")]
    bulk.close_job(query)


def test_failed_rows_and_api_errors(bulk: SalesforceBulk) -> None:
    from salesforce_bulk import BulkApiError

    job = bulk.create_insert_job("Account", contentType="CSV")
    batch = bulk.post_batch(job, CsvDictsAdapter(iter([{"Name": "", "Industry": "Energy"}])))
    bulk.wait_for_batch(job, batch, timeout=30, sleep_interval=0.05)
    [row] = bulk.get_batch_results(batch, job)
    assert row.success == "false" and row.error.startswith("REQUIRED_FIELD_MISSING:")
    with pytest.raises(BulkApiError) as error:
        bulk.job_status("750000000000000AAA")
    assert error.value.status_code == 400 and "InvalidJob" in str(error.value)
