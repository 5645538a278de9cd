"""A value Salesforce cannot keep (a NUL character from a CSV cell) through the REST save operators:
the emulator refuses that record, the operator reports it in the failures file, the rest is saved."""

from __future__ import annotations

import csv
import io

import pytest

from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook
from airflow_provider_salesforce_suite.operators.rest import (
    SalesforceCreateRecordsOperator,
    SalesforceRecordsFailedError,
)


class _TaskInstance:
    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


def test_a_nul_in_a_csv_cell_is_a_failed_record_in_the_failures_file(sf_conn, tmp_path) -> None:
    conn = sf_conn("sf_nul")
    source = tmp_path / "accounts.csv"
    source.write_bytes(b"Name,Description\nGood 1,plain\nBad\x00Name,x\nGood 2,y\n")
    op = SalesforceCreateRecordsOperator(task_id="save", salesforce_conn_id=conn, sobject="Account",
                                         source=f"file://{source}")
    with pytest.raises(SalesforceRecordsFailedError, match="1 of 3 Account records failed") as raised:
        op.execute({"ti": _TaskInstance(), "params": {}})
    summary = raised.value.summary
    assert (summary["records"], summary["succeeded"], summary["failed"]) == (3, 2, 1)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "accounts.failed.csv").read_text())))
    assert len(rows) == 1 and rows[0]["Description"] == "x" and rows[0]["sf__Fields"] == "Name"
    assert rows[0]["sf__Error"].startswith("FIELD_INTEGRITY_EXCEPTION: ")
    assert "invalid character NUL (U+0000) at position 4" in rows[0]["sf__Error"]
    names = [r["Name"] for r in SalesforceRestHook(salesforce_conn_id=conn).query("SELECT Name FROM Account ORDER BY Name")]
    assert names == ["Good 1", "Good 2"]
