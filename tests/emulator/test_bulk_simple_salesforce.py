"""simple-salesforce's Bulk clients against the emulator, unchanged: ``bulk`` (1.0, JSON jobs with
``"concurrencyMode": 0|1``, as the official Airflow provider uses it) and ``bulk2``."""

from __future__ import annotations

import requests
from simple_salesforce import Salesforce
from sf_emulator_client import EmulatorClient

A = "/services/async/62.0"


def test_bulk_v1_insert_and_query(sf: Salesforce) -> None:
    results = sf.bulk.Account.insert([{"Name": "Bulk One", "Industry": "Energy"}, {"Industry": "Retail"},
                                      {"Name": "Bulk Three"}], batch_size=10000)
    assert [r["success"] for r in results] == [True, False, True]
    assert results[0]["id"].startswith("001") and results[0]["created"] is True
    assert "REQUIRED_FIELD_MISSING" in str(results[1]["errors"])
    rows = sf.bulk.Account.query("SELECT Id, Name, Industry FROM Account WHERE Name LIKE 'Bulk%'",
                                 lazy_operation=False, wait=0.05)
    assert sorted((r["Name"], r["Industry"]) for r in rows) == [("Bulk One", "Energy"), ("Bulk Three", None)]
    assert {r["Id"] for r in rows} == {results[0]["id"], results[2]["id"]}


def test_bulk_v1_serial_job_and_bad_concurrency_modes(sf: Salesforce, salesforce_emulator_reset) -> None:
    results = sf.bulk.Account.insert([{"Name": "Serial"}], use_serial=True)
    assert results[0]["success"] is True
    client = EmulatorClient(salesforce_emulator_reset)

    def create(mode: object) -> requests.Response:
        return requests.post(f"{client.url}{A}/job", json={"operation": "insert", "object": "Account",
                                                          "contentType": "JSON", "concurrencyMode": mode},
                             headers={"X-SFDC-Session": client.token()}, verify=client.verify, timeout=10)

    # the enum binds from its name or its ordinal (0 Parallel, 1 Serial), nothing else
    for mode, expected in (("Serial", "Serial"), (0, "Parallel"), (1, "Serial")):
        reply = create(mode)
        assert reply.status_code == 201 and reply.json()["concurrencyMode"] == expected
    for bad in (2, -1, "0", True, "Fast"):
        reply = create(bad)
        assert reply.status_code == 400, bad
        assert reply.json()["exceptionCode"] == "InvalidJob"
        assert reply.json()["exceptionMessage"].startswith("Invalid concurrency mode")


def test_bulk2_insert_and_query(sf: Salesforce, tmp_path) -> None:
    source = tmp_path / "accounts.csv"
    source.write_text("Name,Industry\nTwo A,Energy\nTwo B,Retail\n")
    inserted = sf.bulk2.Account.insert(csv_file=str(source), wait=0.05)
    assert sum(int(r["numberRecordsProcessed"]) for r in inserted) == 2
    assert sum(int(r["numberRecordsFailed"]) for r in inserted) == 0
    pages = list(sf.bulk2.Account.query("SELECT Name, Industry FROM Account ORDER BY Name", wait=0.05))
    assert "".join(pages).splitlines() == ['"Name","Industry"', '"Two A","Energy"', '"Two B","Retail"']
