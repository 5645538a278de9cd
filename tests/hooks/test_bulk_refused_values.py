"""Values Salesforce refuses in a Bulk upload (over the API's per-field limit, NUL, and for Bulk 1.0
the XML-illegal control characters) become failed records before the upload: the rest loads,
``sf__InputRow`` ties every result row to its input, and the counts add up."""

from __future__ import annotations

import csv

import pytest

from airflow_provider_salesforce_suite.hooks.bulk import SalesforceBulkHook
from airflow_provider_salesforce_suite.io import CsvTextRows
from tests.hooks.bulk_support import FAST, count, read_csv

PYTHON_CSV_DEFAULT_LIMIT = 131_072


@pytest.fixture(autouse=True)
def _python_default_csv_limit():
    """A worker process has Python's default CSV field limit (the in-process emulator raises it when
    its Bulk modules are imported: imported first, so that cannot happen during the test)."""
    import airflow_provider_salesforce_suite.emulator.bulk.csvdata  # noqa: F401

    before = csv.field_size_limit(PYTHON_CSV_DEFAULT_LIMIT)
    yield
    csv.field_size_limit(before)


def _outcomes(path) -> dict[str, dict[str, str]]:
    return {row["sf__InputRow"]: row for row in read_csv(path)}


def test_v2_oversize_and_nul_values_fail_before_upload(sf_conn, tmp_path) -> None:
    hook = SalesforceBulkHook(sf_conn())
    records = [{"Name": "Refused 1"}, {"Name": "Refused 2", "Description": "x" * 131_073},
               {"Name": "Refused 3"}, {"Name": "Refused 4", "Description": "a\x00b"}, {"Name": "Refused 5"}]
    summary = hook.ingest("Account", "insert", iter(records), results_dir=tmp_path / "res",
                          max_records_per_upload=2, **FAST)
    assert (summary.records, summary.processed, summary.failed, summary.unprocessed) == (5, 3, 2, 0)
    ok = _outcomes(summary.successful_uri)
    assert {n: r["Name"] for n, r in ok.items()} == {"1": "Refused 1", "3": "Refused 3", "5": "Refused 5"}
    failed = _outcomes(summary.failed_uri)
    assert set(failed) == {"2", "4"}
    assert failed["2"]["sf__Error"].startswith("STRING_TOO_LONG:Description:")
    assert "131073 characters" in failed["2"]["sf__Error"] and "max length=131072" in failed["2"]["sf__Error"]
    assert failed["2"]["Description"] == "x" * 131_073 and failed["2"]["Name"] == "Refused 2"
    assert failed["4"]["sf__Error"].startswith("FIELD_INTEGRITY_EXCEPTION:Description:")
    assert "NUL (U+0000) at position 2" in failed["4"]["sf__Error"]
    assert count(hook, "SELECT Id FROM Account WHERE Name LIKE 'Refused %'") == 3


def test_v1_csv_file_control_character_and_32000_limit(sf_conn, tmp_path) -> None:
    source = tmp_path / "in.csv"
    with open(source, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Name", "Description"])
        writer.writerows([["V1 ok 1", "fine"], ["V1 bell", "ring\x07"], ["V1 long", "y" * 32_001],
                          ["V1 ok 4", "z" * 32_000], ["V1 huge", "w" * 200_000]])
    hook = SalesforceBulkHook(sf_conn())
    summary = hook.ingest("Account", "insert", CsvTextRows(str(source)), api="1.0", results_dir=tmp_path / "res",
                          **FAST)
    assert (summary.records, summary.processed, summary.failed, summary.unprocessed) == (5, 2, 3, 0)
    assert set(_outcomes(summary.successful_uri)) == {"1", "4"}
    failed = _outcomes(summary.failed_uri)
    assert "a control character (U+0007) at position 5" in failed["2"]["sf__Error"]
    assert failed["3"]["sf__Error"].startswith("STRING_TOO_LONG:Description:")
    assert "max length=32000" in failed["3"]["sf__Error"] and "Bulk API 1.0" in failed["3"]["sf__Error"]
    assert failed["5"]["Description"] == "w" * 200_000


def test_every_row_refused_creates_no_job(sf_conn, emulator_admin, tmp_path) -> None:
    hook = SalesforceBulkHook(sf_conn())
    summary = hook.ingest("Account", "insert", iter([{"Name": "a\x00"}, {"Name": "b\x00"}]),
                          results_dir=tmp_path / "res", **FAST)
    assert (summary.records, summary.processed, summary.failed, summary.unprocessed) == (2, 0, 2, 0)
    assert summary.job_ids == []
    assert set(_outcomes(summary.failed_uri)) == {"1", "2"}


@pytest.mark.parametrize("first_refused", [False, True])
def test_deferred_submission_reports_refused_rows(sf_conn, tmp_path, first_refused) -> None:
    hook = SalesforceBulkHook(sf_conn())
    records = [{"Name": "Deferred 1"}, {"Name": "Deferred 2\x00"}, {"Name": "Deferred 3"}]
    if first_refused:
        records = [{"Name": "Deferred 0\x00"}, *records]
    submitted = hook.ingest("Account", "insert", iter(records), results_dir=tmp_path / "res", wait=False,
                            resume_key="dag/run/task", max_records_per_upload=1, **FAST)
    assert submitted.records == len(records)
    summary = hook.collect_ingest_results(str(tmp_path / "res"), **FAST)
    assert (summary.records, summary.processed, summary.failed) == (len(records), 2, len(records) - 2)
    refused = {"1", "3"} if first_refused else {"2"}
    assert set(_outcomes(summary.failed_uri)) == refused



def test_result_file_rewritten_for_a_new_column_keeps_an_oversize_value(tmp_path) -> None:
    """A results file whose columns grow after rows were written is rewritten at close from its
    spool: that read takes a refused value of any size (here, nothing else in the process read one)."""
    from airflow_provider_salesforce_suite.hooks._bulk.results import IngestResultFiles

    with IngestResultFiles(tmp_path, "csv") as out:
        out.add("failed", ["", "STRING_TOO_LONG:Description: too long", 1], ["Name", "Description"],
                ["Long", "x" * 131_073])
        for row in range(2, 1202):  # more than a page: the first rows are spooled before the new column
            out.add("failed", ["", "E", row], ["Name", "Description"], [f"Row {row}", "short"])
        out.add("failed", ["", "E", 1202], ["Name", "Site", "Description"], ["Grown", "s", "short"])
    csv.field_size_limit(1 << 20)  # the test's own reader
    failed = _outcomes(tmp_path / "failed.csv")
    assert len(failed) == 1202
    assert (failed["1"]["Description"], failed["1"]["Site"]) == ("x" * 131_073, "")
    assert (failed["1202"]["Name"], failed["1202"]["Site"]) == ("Grown", "s")


@pytest.mark.parametrize("api,limit", [("2.0", 131_072), ("1.0", 32_000)])
def test_value_at_the_api_limit_is_sent_and_its_echo_correlated(sf_conn, tmp_path, api, limit) -> None:
    """A value of exactly the API's limit goes to Salesforce; the field's own length (Description:
    32,000 in the emulator's org) may refuse it there, and the result row echoing it back is read
    whole (Python's default CSV limit refuses a cell of 131,072 characters)."""
    hook = SalesforceBulkHook(sf_conn())
    records = [{"Name": "Edge 1", "Description": "e" * limit}, {"Name": "Edge 2", "Description": "short"}]
    summary = hook.ingest("Account", "insert", iter(records), api=api, results_dir=tmp_path / "res", **FAST)
    assert summary.records == 2 and summary.unprocessed == 0 and summary.processed + summary.failed == 2
    if limit > 32_000:  # refused by the field, not before upload: Salesforce's own error, value echoed whole
        failed = _outcomes(summary.failed_uri)
        assert list(failed) == ["1"] and failed["1"]["Description"] == "e" * limit
        assert failed["1"]["sf__Error"].startswith("STRING_TOO_LONG:Description: data value too large")
    else:
        assert summary.processed == 2
    assert "2" in _outcomes(summary.successful_uri)
