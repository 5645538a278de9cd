"""SalesforceBulkHook parallel query results (``resultPages``, API 58.0+) against the emulator:
the same bytes as the sequential path in every format, the bound on pages in flight, retries,
failures naming the page, re-auth from several threads, the fallback below 58.0, bad arguments."""

from __future__ import annotations

import os
import tempfile
import threading
import time

import pytest

from airflow_provider_salesforce_suite.core.errors import SalesforceApiError
from airflow_provider_salesforce_suite.hooks._bulk.pages import SPILL_PREFIX
from airflow_provider_salesforce_suite.hooks.bulk import SalesforceBulkHook
from tests.hooks.bulk_support import FAST, calls

ROWS = 1_500
SOQL = "SELECT Id, Name, NumberOfEmployees FROM Account ORDER BY Name"


@pytest.fixture
def loaded(sf_conn, tmp_path) -> tuple[SalesforceBulkHook, str]:
    """A hook and a completed query job over ``ROWS`` accounts."""
    hook = SalesforceBulkHook(sf_conn())
    records = ({"Name": f"Acc {i:06d}", "NumberOfEmployees": i} for i in range(ROWS))
    hook.ingest("Account", "insert", records, results_dir=tmp_path / "load", **FAST)
    job_id = hook.create_query_job(SOQL)["id"]
    hook.wait_for_job(job_id, kind="query", **FAST)
    return hook, job_id


@pytest.fixture
def spill_root(tmp_path, monkeypatch) -> str:
    """Where the hook's temporary files go (so a test can count the page spills)."""
    root = tmp_path / "spill"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return str(root)


def _spills(root: str) -> int:
    return sum(len(files) for folder, _, files in os.walk(root) if os.path.basename(folder).startswith(SPILL_PREFIX))


def _page_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sf-bulk-page")]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_parallel_pages_write_the_same_bytes_as_sequential(loaded, emulator_admin, tmp_path, fmt) -> None:
    hook, job_id = loaded
    types = {"NumberOfEmployees": "int"}
    one = hook.write_query_results(job_id, tmp_path / f"one.{fmt}", max_records=100, field_types=types)
    before = calls(emulator_admin, "GET", f"{job_id}/results")
    many = hook.write_query_results(job_id, tmp_path / f"many.{fmt}", max_records=100, field_types=types,
                                    max_parallel_pages=4)
    assert (tmp_path / f"many.{fmt}").read_bytes() == (tmp_path / f"one.{fmt}").read_bytes()
    assert many.records == one.records == ROWS
    # 15 pages of 100 rows, listed five at a time.
    assert calls(emulator_admin, "GET", f"{job_id}/results") - before == 15
    assert calls(emulator_admin, "GET", f"{job_id}/resultPages") == 3
    if fmt == "csv":
        lines = (tmp_path / "many.csv").read_text().splitlines()
        assert lines[0] == '"Id","Name","NumberOfEmployees"' and len(lines) == ROWS + 1
        assert lines[1].endswith('"Acc 000000","0"') and lines[-1].endswith(f'"Acc {ROWS - 1:06d}","{ROWS - 1}"')


def test_extract_with_parallel_pages_and_salesforce_page_size(loaded, emulator_admin, tmp_path) -> None:
    hook, _ = loaded
    summary = hook.extract(SOQL, tmp_path / "x.csv", max_parallel_pages=3, **FAST)
    sequential = hook.extract(SOQL, tmp_path / "y.csv", **FAST)
    assert summary.records == ROWS and (tmp_path / "x.csv").read_bytes() == (tmp_path / "y.csv").read_bytes()
    # Without maxRecords the page size is the server's (the emulator's 10,000 rows: one page here).
    assert calls(emulator_admin, "GET", f"{summary.job_id}/resultPages") == 1
    assert calls(emulator_admin, "GET", f"{summary.job_id}/results") == 1


def test_pages_in_flight_never_exceed_the_bound(loaded, emulator_admin, spill_root) -> None:
    hook, job_id = loaded
    emulator_admin.fault(latency_ms=20, path_prefix=hook.data_url(f"jobs/query/{job_id}/results"))
    peak, chunks = 0, []
    for chunk in hook.stream_query_results(job_id, max_records=50, max_parallel_pages=3):
        chunks.append(chunk)
        time.sleep(0.03)  # a slow writer: downloads would pile up without the bound
        peak = max(peak, _spills(spill_root))
    assert 2 <= peak <= 3  # 30 pages, never more than 3 on disk at once
    assert b"".join(chunks) == b"".join(hook.stream_query_results(job_id, max_records=50))
    assert _spills(spill_root) == 0 and not os.listdir(spill_root) and not _page_threads()


def test_a_transient_fault_on_one_page_is_retried(loaded, emulator_admin, tmp_path) -> None:
    hook, job_id = loaded
    hook.write_query_results(job_id, tmp_path / "one.csv", max_records=100)
    emulator_admin.fault(status=503, count=2, path_prefix=hook.data_url(f"jobs/query/{job_id}/results"))
    emulator_admin.fault(drop_connection=True, count=1, path_prefix=hook.data_url(f"jobs/query/{job_id}/results"))
    hook.write_query_results(job_id, tmp_path / "many.csv", max_records=100, max_parallel_pages=4)
    assert (tmp_path / "many.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()
    assert emulator_admin.stats()["faults_injected"] == 3


def test_a_failed_page_surfaces_naming_job_and_locator_and_stops_the_others(loaded, emulator_admin, tmp_path,
                                                                           spill_root) -> None:
    hook, job_id = loaded
    emulator_admin.fault(status=400, error_code="INVALIDLOCATOR", message="Invalid locator", count=1,
                         path_prefix=hook.data_url(f"jobs/query/{job_id}/results"))
    emulator_admin.fault(latency_ms=50, path_prefix=hook.data_url(f"jobs/query/{job_id}/results"))
    with pytest.raises(SalesforceApiError) as raised:
        hook.write_query_results(job_id, tmp_path / "x.csv", max_records=50, max_parallel_pages=4)
    assert raised.value.error_code == "INVALIDLOCATOR"
    note = " ".join(getattr(raised.value, "__notes__", []))
    assert f"Bulk query job {job_id}: result page " in note and "(locator " in note
    assert not (tmp_path / "x.csv").exists()
    assert not _page_threads() and not os.listdir(spill_root)
    # The other downloads stopped: far fewer than the 30 pages were requested.
    assert calls(emulator_admin, "GET", f"{job_id}/results") <= 8


def test_session_expiring_mid_download_is_renewed_once_for_all_threads(loaded, emulator_admin) -> None:
    hook, job_id = loaded
    sequential = b"".join(hook.stream_query_results(job_id, max_records=50))
    grants = emulator_admin.stats()["token_grants_total"]
    chunks = []
    for chunk in hook.stream_query_results(job_id, max_records=50, max_parallel_pages=4):
        if not chunks:
            emulator_admin.expire_sessions()  # pages still to come are asked for with a dead token
        chunks.append(chunk)
    assert b"".join(chunks) == sequential
    assert emulator_admin.stats()["token_grants_total"] == grants + 1


def test_below_api_58_pages_are_read_one_after_another(sf_conn, loaded, emulator_admin, tmp_path) -> None:
    hook, _ = loaded
    old = SalesforceBulkHook(sf_conn(), api_version="57.0")
    job_id = old.create_query_job(SOQL)["id"]
    old.wait_for_job(job_id, kind="query", **FAST)
    old.write_query_results(job_id, tmp_path / "one.csv", max_records=500)
    old.write_query_results(job_id, tmp_path / "many.csv", max_records=500, max_parallel_pages=4)
    assert (tmp_path / "many.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()
    assert len((tmp_path / "many.csv").read_text().splitlines()) == ROWS + 1
    assert calls(emulator_admin, "GET", f"{job_id}/resultPages") == 0
    assert calls(emulator_admin, "GET", f"{job_id}/results") == 6


@pytest.mark.parametrize("bad", [0, -2, True, 1.5, "4", None])
def test_bad_max_parallel_pages_is_refused_before_any_job(sf_conn, emulator_admin, tmp_path, bad) -> None:
    hook = SalesforceBulkHook(sf_conn())
    with pytest.raises(ValueError, match="max_parallel_pages must be an integer >= 1"):
        hook.extract(SOQL, tmp_path / "x.csv", max_parallel_pages=bad)
    with pytest.raises(ValueError, match="max_parallel_pages must be an integer >= 1"):
        hook.write_query_results("750000000000000AAA", tmp_path / "x.csv", max_parallel_pages=bad)
    with pytest.raises(ValueError, match="max_parallel_pages must be an integer >= 1"):
        hook.stream_query_results("750000000000000AAA", max_parallel_pages=bad)
    assert calls(emulator_admin, "POST", "jobs/query") == 0


def test_parallel_pages_are_a_bulk_2_option(sf_conn, emulator_admin, tmp_path) -> None:
    hook = SalesforceBulkHook(sf_conn())
    with pytest.raises(ValueError, match="Bulk API 2.0 option"):
        hook.extract(SOQL, tmp_path / "x.csv", api="1.0", max_parallel_pages=2)
    with pytest.raises(ValueError, match="Bulk API 2.0 option"):
        hook.write_query_results("750000000000000AAA", tmp_path / "x.csv", api="1.0", max_parallel_pages=2)
    assert calls(emulator_admin, "POST", "/job") == 0 and not (tmp_path / "x.csv").exists()
