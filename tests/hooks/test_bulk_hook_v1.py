"""SalesforceBulkHook, Bulk API 1.0 endpoints against the emulator (XML wire format), plus the
safe XML parsing and the ``<error>`` body parser."""

from __future__ import annotations

import asyncio

import pytest

from airflow_provider_salesforce_suite.core.errors import (
    SalesforceApiError,
    SalesforceSessionExpiredError,
    error_from_response,
)
from airflow_provider_salesforce_suite.hooks._bulk import wire
from airflow_provider_salesforce_suite.hooks.bulk import (
    BulkJobState,
    SalesforceBulkHook,
    SalesforceBulkJobFailedError,
)
from tests.hooks.bulk_support import FAST, bulk_settings, calls

CSV = b"Name,Phone\nAcme,1\n,2\nGlobex,3\n"


def _batch(hook: SalesforceBulkHook, data: bytes = CSV) -> tuple[str, str]:
    job = hook.v1_create_job("Account", "insert")
    assert job["state"] == "Open" and job["contentType"] == "CSV" and job["concurrencyMode"] == "Parallel"
    batch = hook.v1_add_batch(job["id"], data)
    assert batch["jobId"] == job["id"] and batch["state"] in ("Queued", "InProgress", "Completed")
    return job["id"], batch["id"]


def test_ingest_job_batches_and_in_order_results(sf_conn, emulator_admin) -> None:
    hook = SalesforceBulkHook(sf_conn())
    job_id, batch_id = _batch(hook)
    info = hook.wait_for_job(job_id, api="1.0", **FAST)
    assert info["numberBatchesCompleted"] == 1 and isinstance(info["numberRecordsProcessed"], int)
    assert hook.v1_close_job(job_id)["state"] == "Closed"
    batch = hook.v1_get_batch(job_id, batch_id)
    assert BulkJobState(batch["state"]) is BulkJobState.COMPLETED and batch["numberRecordsFailed"] == 1
    assert [b["id"] for b in hook.v1_list_batches(job_id)] == [batch_id]
    results = b"".join(hook.v1_batch_results(job_id, batch_id)).decode().splitlines()
    assert results[0].replace('"', "") == "Id,Success,Created,Error"
    assert [line.replace('"', "").split(",")[1] for line in results[1:]] == ["true", "false", "true"]
    assert "REQUIRED_FIELD_MISSING" in results[2]
    assert b"".join(hook.v1_batch_request(job_id, batch_id)).replace(b"\r\n", b"\n") == CSV
    # Every call authenticated with X-SFDC-Session on the XML surface.
    assert calls(emulator_admin, "GET", f"/job/{job_id}/batch/{batch_id}/result") == 1


def test_abort_and_errors_become_api_errors(sf_conn) -> None:
    hook = SalesforceBulkHook(sf_conn())
    job_id, _ = _batch(hook)
    assert hook.v1_abort_job(job_id)["state"] == "Aborted"
    with pytest.raises(SalesforceBulkJobFailedError) as aborted:
        hook.wait_for_job(job_id, api="1.0", **FAST)
    assert aborted.value.state is BulkJobState.ABORTED
    with pytest.raises(SalesforceApiError) as bad:
        hook.v1_get_job("750000000000000AAA")
    assert bad.value.error_code in ("InvalidJob", "InvalidJobState") and bad.value.message
    with pytest.raises(SalesforceApiError) as closed:
        hook.v1_add_batch(job_id, CSV)
    assert closed.value.status == 400 and closed.value.error_code


def test_failed_batch_surfaces_state_message(sf_conn, emulator_admin, tmp_path) -> None:
    hook = SalesforceBulkHook(sf_conn())
    bulk_settings(emulator_admin, fail_next_job="InvalidBatch : batch broke")
    with pytest.raises(SalesforceBulkJobFailedError, match="batch broke") as failed:
        hook.ingest("Account", "insert", [{"Name": "A"}, {"Name": "B"}], api="1.0", results_dir=tmp_path, **FAST)
    assert failed.value.batch_id and failed.value.summary.unprocessed == 2


def test_session_expiry_mid_job_reauthenticates_on_invalid_session_id(sf_conn, emulator_admin) -> None:
    hook = SalesforceBulkHook(sf_conn())
    job_id, batch_id = _batch(hook)
    emulator_admin.expire_sessions()  # Bulk 1.0 answers 400 InvalidSessionId: the transport re-authenticates
    hook.wait_for_job(job_id, api="1.0", **FAST)
    emulator_admin.expire_sessions()
    assert len(b"".join(hook.v1_batch_results(job_id, batch_id)).splitlines()) == 4
    emulator_admin.expire_sessions()
    assert hook.v1_close_job(job_id)["state"] == "Closed"


def test_503_during_polling_is_retried(sf_conn, emulator_admin) -> None:
    hook = SalesforceBulkHook(sf_conn())
    job_id, _ = _batch(hook)
    emulator_admin.fault(status=503, error_code="SERVER_UNAVAILABLE", count=2, method="GET",
                         path_prefix=f"/services/async/64.0/job/{job_id}")
    assert hook.wait_for_job(job_id, api="1.0", **FAST)["numberBatchesCompleted"] == 1


def test_query_job_result_ids_and_results(sf_conn) -> None:
    hook = SalesforceBulkHook(sf_conn())
    job_id, _ = _batch(hook)
    hook.wait_for_job(job_id, api="1.0", **FAST)
    query = hook.v1_create_job("Account", "query")
    batch = hook.v1_add_batch(query["id"], b"SELECT Name FROM Account ORDER BY Name")
    hook.wait_for_job(query["id"], api="1.0", **FAST)
    ids = hook.v1_query_result_ids(query["id"], batch["id"])
    assert len(ids) >= 1
    body = b"".join(hook.v1_query_result(query["id"], batch["id"], ids[0])).decode().splitlines()
    assert [line.strip('"') for line in body] == ["Name", "Acme", "Globex"]


def test_async_twins(sf_conn, emulator_admin) -> None:
    hook = SalesforceBulkHook(sf_conn())
    job_id, batch_id = _batch(hook)
    hook.wait_for_job(job_id, api="1.0", **FAST)

    async def run() -> tuple:
        emulator_admin.expire_sessions()
        try:
            return (await hook.a_v1_get_job(job_id), await hook.a_v1_get_batch(job_id, batch_id),
                    await hook.a_v1_list_batches(job_id))
        finally:
            await hook.async_session().close()

    job, batch, batches = asyncio.run(run())
    assert job == hook.v1_get_job(job_id)
    assert batch == hook.v1_get_batch(job_id, batch_id) and batches == hook.v1_list_batches(job_id)


def test_bad_arguments_are_refused_before_any_call(sf_conn, emulator_admin) -> None:
    hook = SalesforceBulkHook(sf_conn())
    with pytest.raises(ValueError, match="operation"):
        hook.v1_create_job("Account", "merge")
    with pytest.raises(ValueError, match="content_type"):
        hook.v1_create_job("Account", "insert", content_type="YAML")
    with pytest.raises(ValueError, match="concurrency_mode"):
        hook.v1_create_job("Account", "insert", concurrency_mode="Fast")
    with pytest.raises(ValueError, match="external_id_field"):
        hook.v1_create_job("Account", "upsert")
    assert calls(emulator_admin, "POST", "/services/async") == 0


# -- wire format (pure) -------------------------------------------------------------------------------
def test_job_info_xml_escapes_and_orders_fields() -> None:
    body = wire.v1_create_job_body("A&B<c>", "upsert", content_type="CSV", concurrency_mode="Serial",
                                   external_id_field="Ext\x01__c")
    text = body.decode()
    assert "<object>A&amp;B&lt;c&gt;</object>" in text and "\x01" not in text
    assert text.index("<operation>") < text.index("<object>") < text.index("<externalIdFieldName>") \
        < text.index("<concurrencyMode>") < text.index("<contentType>")
    assert wire.pk_chunking_header(True) == {"Sforce-Enable-PKChunking": "TRUE"}
    assert wire.pk_chunking_header({"chunkSize": 500, "parent": "Account"}) == \
        {"Sforce-Enable-PKChunking": "chunkSize=500; parent=Account"}


def test_error_bodies_xml_and_json_become_api_errors() -> None:
    xml = (b'<?xml version="1.0" encoding="UTF-8"?><error xmlns="http://www.force.com/2009/06/asyncapi/dataload">'
           b"<exceptionCode>InvalidBatch</exceptionCode><exceptionMessage>Records not processed</exceptionMessage></error>")
    error = error_from_response(400, {"Content-Type": "application/xml"}, xml, "POST", "/services/async/64.0/job")
    assert (error.error_code, error.message) == ("InvalidBatch", "Records not processed")
    as_json = b'{"exceptionCode":"InvalidJob","exceptionMessage":"Invalid job id"}'
    assert error_from_response(400, {}, as_json).error_code == "InvalidJob"
    session = xml.replace(b"InvalidBatch", b"InvalidSessionId")
    assert isinstance(error_from_response(400, {}, session), SalesforceSessionExpiredError)


def test_xml_with_dtd_or_entities_is_refused() -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
            b"<error><exceptionCode>&lol2;</exceptionCode><exceptionMessage>x</exceptionMessage></error>")
    assert wire.parse_v1_error(bomb, "application/xml") is None
    assert "refused as unsafe XML" in error_from_response(400, {}, bomb).message
    external = b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><jobInfo><id>&e;</id></jobInfo>'
    with pytest.raises(ValueError, match="DTD"):
        wire.parse_v1_body(external)


def test_response_shapes() -> None:
    ns = 'xmlns="http://www.force.com/2009/06/asyncapi/dataload"'
    job = wire.parse_v1_body(f"<jobInfo {ns}><id>750x</id><state>Open</state><numberBatchesTotal>2</numberBatchesTotal>"
                             f"<apiVersion>64.0</apiVersion></jobInfo>".encode())
    assert job == {"id": "750x", "state": "Open", "numberBatchesTotal": 2, "apiVersion": 64.0}
    batches = wire.parse_v1_body(f"<batchInfoList {ns}><batchInfo><id>751a</id><state>Not Processed</state>"
                                 f"</batchInfo></batchInfoList>".encode())
    assert wire.batch_list(batches) == [{"id": "751a", "state": "Not Processed"}]
    assert BulkJobState(wire.batch_list(batches)[0]["state"]) is BulkJobState.NOT_PROCESSED
    assert BulkJobState("NotProcessed").is_terminal and not BulkJobState("Closed").is_terminal
    assert wire.parse_v1_body(f"<result-list {ns}><result>752a</result><result>752b</result></result-list>".encode()) \
        == ["752a", "752b"]
    assert wire.batch_list(wire.parse_v1_body(b'{"batchInfo":[{"id":"751b","state":"Queued"}]}')) == \
        [{"id": "751b", "state": "Queued"}]
