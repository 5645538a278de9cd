"""Issue #14 "Reliability": failures classified by cause, over loopback HTTPS against the emulator.

Dropped connections on idempotent calls are retried (also when they surface as ``SSLEOFError``), a
call that may have been carried out raises ``SalesforceOutcomeUnknownError`` once, a bare 500 on a
read or the token call is absorbed, a SOAP fault is not, and a 2xx body that is not JSON names the call.
Every fault rule is counted (``count=N``), so each test is deterministic.
"""

from __future__ import annotations

import ssl

import pytest
import requests

from airflow_provider_salesforce_suite.core.errors import (
    SalesforceApiError,
    SalesforceAuthError,
    SalesforceOutcomeUnknownError,
    SalesforceServerError,
    SalesforceSoapMalformedQueryError,
    SalesforceTransportError,
    SalesforceUnparseableResponseError,
)
from airflow_provider_salesforce_suite.core.retry import CONNECT, DROPPED, TLS, classify_exception
from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook
from airflow_provider_salesforce_suite.hooks.bulk import SalesforceBulkHook
from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook
from airflow_provider_salesforce_suite.hooks.soap import SalesforceSoapHook

TOKEN_PATH = "/services/oauth2/token"
HTML_PAGE = "<html><head><title>Corporate proxy: sign in</title></head><body><form>...</form></body></html>"
CUT_JSON = '{"DailyApiRequests": {"Max": 15000, "Remai'


def requests_to(admin, method: str, path: str) -> int:
    return admin.stats()["requests"].get(f"{method} {path}", 0)


def accounts_named(hook: SalesforceBaseHook, name: str) -> int:
    reply = hook.request("GET", hook.data_url("query"), params={"q": f"SELECT Id FROM Account WHERE Name = '{name}'"})
    return reply.json()["totalSize"]


def accounts_like(hook: SalesforceBaseHook, pattern: str) -> int:
    reply = hook.request("GET", hook.data_url("query"), params={"q": f"SELECT Id FROM Account WHERE Name LIKE '{pattern}'"})
    return reply.json()["totalSize"]


# -- dropped connections --------------------------------------------------------------------------
def test_twenty_single_drops_on_bulk_upload_all_succeed(sf_conn, emulator_admin, tmp_path) -> None:
    """The user's report: 7 of 20 single drops on the Bulk 2.0 PUT failed. With a body of some size the
    drop mostly surfaces as ``SSLError(SSLEOFError)`` while sending, which was taken for a certificate problem.
    A dropped upload cannot be told from one whose reply was lost, and Salesforce refuses a second upload
    into a job, so the ingest aborts that job and sends the chunk in a new one: every row loads once."""
    hook = SalesforceBulkHook(sf_conn(extra={"max_retries": 2}))
    rows = 4000  # ~100 KB: large enough for the drop to hit the upload mid-body
    for n in range(20):
        emulator_admin.fault(drop_connection=True, count=1, method="PUT", path_prefix=hook.data_url("jobs/ingest/"))
        records = ({"Name": f"Drop {n} row {i}"} for i in range(rows))
        summary = hook.ingest("Account", "insert", records, results_dir=tmp_path / str(n), poll_interval=0.05)
        assert (summary.records, summary.processed) == (rows, rows), n
        assert emulator_admin.stats()["connections_dropped"] == n + 1
    assert accounts_like(hook, "Drop %") == 20 * rows


def test_insert_whose_reply_is_lost_is_outcome_unknown_and_sent_once(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn())
    path = hook.data_url("sobjects/Account")
    hook.request("GET", hook.data_url("limits"))
    emulator_admin.fault(lose_reply=True, count=1, method="POST", path_prefix=path)
    with pytest.raises(SalesforceOutcomeUnknownError) as err:
        hook.request("POST", path, json={"Name": "Maybe inserted"})
    assert (err.value.method, err.value.path) == ("POST", path)
    assert "POST" in str(err.value) and path in str(err.value) and "may or may not" in str(err.value)
    assert requests_to(emulator_admin, "POST", path) == 1  # never sent again
    assert accounts_named(hook, "Maybe inserted") == 1  # and indeed it was carried out


def test_insert_through_simple_salesforce_is_outcome_unknown(sf_conn, emulator_admin) -> None:
    hook = SalesforceRestHook(sf_conn())
    hook.limits()
    path = hook.data_url("sobjects/Account/")
    emulator_admin.fault(lose_reply=True, count=1, method="POST", path_prefix=hook.data_url("sobjects/Account"))
    with pytest.raises(SalesforceOutcomeUnknownError):
        hook.create("Account", {"Name": "Lost reply via simple-salesforce"})
    assert sum(n for k, n in emulator_admin.stats()["requests"].items() if k.startswith("POST " + path[:-1])) == 1


def test_reply_cut_mid_body_is_retried_for_a_read(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn())
    path = hook.data_url("limits")
    hook.request("GET", path)
    emulator_admin.fault(truncate_body=True, count=1, path_prefix=path)
    assert hook.request("GET", path).json()["DailyApiRequests"]["Max"] > 0
    assert requests_to(emulator_admin, "GET", path) == 3


def test_patch_cut_mid_body_is_outcome_unknown(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn())
    record = hook.request("POST", hook.data_url("sobjects/Account"), json={"Name": "Cut"}).json()["id"]
    path = hook.data_url(f"sobjects/Account/{record}")
    emulator_admin.fault(truncate_body=True, count=1, method="GET", path_prefix=path)
    with pytest.raises(SalesforceOutcomeUnknownError, match="GET"):
        hook.request("GET", path, idempotent=False)  # the caller's word wins over the method
    assert requests_to(emulator_admin, "GET", path) == 1


def test_tls_certificate_problem_is_named_and_not_retried(sf_conn, emulator_admin, caplog) -> None:
    hook = SalesforceBaseHook(sf_conn(extra={"ca_bundle": None, "verify": True}))
    with pytest.raises(SalesforceTransportError) as err:
        hook.request("GET", "/services/data/")
    text = str(err.value)
    assert not isinstance(err.value, SalesforceOutcomeUnknownError)
    assert "TLS certificate/handshake problem" in text and "ca_bundle" in text and "verify" in text
    assert "Not retried" in text and "SSLCertVerificationError" in text
    assert emulator_admin.stats()["requests"].get(f"POST {TOKEN_PATH}", 0) == 0  # never got past TLS
    assert "failed transiently" not in caplog.text  # and not retried


def test_classifier_tells_eof_from_certificate_problems() -> None:
    eof = requests.exceptions.SSLError(ssl.SSLEOFError(8, "EOF occurred in violation of protocol"))
    assert classify_exception(eof) == DROPPED
    assert classify_exception(requests.exceptions.SSLError(ssl.SSLCertVerificationError(1, "bad cert"))) == TLS
    assert classify_exception(requests.exceptions.SSLError("certificate verify failed")) == TLS
    assert classify_exception(requests.ConnectTimeout("connect timed out")) == CONNECT
    assert classify_exception(requests.ConnectionError(ConnectionResetError(104, "reset"))) == DROPPED


def test_refused_connection_is_retried_for_a_post_then_named(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn(extra={"max_retries": 1}))
    hook.request("GET", hook.data_url("limits"))
    with pytest.raises(SalesforceTransportError) as err:
        hook.request("POST", "https://127.0.0.1:9/services/data/v64.0/sobjects/Account", json={"Name": "x"})
    assert not isinstance(err.value, SalesforceOutcomeUnknownError)  # the request never left
    assert "could not connect" in str(err.value) and "after 2 attempts" in str(err.value)


# -- HTTP 500 -------------------------------------------------------------------------------------
@pytest.mark.parametrize("rule", [{"status": 500, "error_code": "UNKNOWN_EXCEPTION"},
                                  {"status": 500, "body": "<html><body>Internal Server Error</body></html>"}])
def test_single_500_on_job_status_is_absorbed(sf_conn, emulator_admin, rule) -> None:
    hook = SalesforceBulkHook(sf_conn())
    job_id = hook.create_ingest_job("Account", "insert")["id"]
    path = hook.data_url(f"jobs/ingest/{job_id}")
    emulator_admin.fault(count=1, method="GET", path_prefix=path, **rule)
    assert hook.get_job(job_id)["state"] == "Open"
    assert requests_to(emulator_admin, "GET", path) == 2


def test_single_500_on_result_download_is_absorbed(sf_conn, emulator_admin) -> None:
    hook = SalesforceBulkHook(sf_conn())
    hook.request("POST", hook.data_url("sobjects/Account"), json={"Name": "Result download"})
    job_id = hook.create_query_job("SELECT Name FROM Account WHERE Name = 'Result download'")["id"]
    hook.wait_for_job(job_id, kind="query", poll_interval=0.05)
    path = hook.data_url(f"jobs/query/{job_id}/results")
    emulator_admin.fault(status=500, error_code="UNKNOWN_EXCEPTION", count=1, method="GET", path_prefix=path)
    assert b"Result download" in b"".join(hook.stream_query_results(job_id))
    assert requests_to(emulator_admin, "GET", path) == 2


@pytest.mark.parametrize("rule", [{"status": 500, "error_code": "UNKNOWN_EXCEPTION"},
                                  {"status": 500, "body": "<html>oops</html>"}, {"status": 502},
                                  {"drop_connection": True}, {"lose_reply": True}])
def test_single_failure_of_the_token_call_is_absorbed(sf_conn, emulator_admin, rule) -> None:
    hook = SalesforceBaseHook(sf_conn())
    emulator_admin.fault(count=1, path_prefix=TOKEN_PATH, **rule)
    assert hook.request("GET", hook.data_url("limits")).status_code == 200
    assert requests_to(emulator_admin, "POST", TOKEN_PATH) == 2


def test_500_on_an_insert_is_not_retried(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn())
    path = hook.data_url("sobjects/Account")
    hook.request("GET", hook.data_url("limits"))
    emulator_admin.fault(status=500, error_code="UNKNOWN_EXCEPTION", count=1, method="POST", path_prefix=path)
    with pytest.raises(SalesforceServerError, match="UNKNOWN_EXCEPTION"):
        hook.request("POST", path, json={"Name": "x"})
    assert requests_to(emulator_admin, "POST", path) == 1


def test_500_with_a_specific_error_code_is_not_retried_on_a_read(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn())
    path = hook.data_url("query")
    emulator_admin.fault(status=500, error_code="MALFORMED_QUERY", count=3, method="GET", path_prefix=path)
    with pytest.raises(SalesforceApiError, match="MALFORMED_QUERY"):
        hook.request("GET", path, params={"q": "SELECT Id FROM Account"})
    assert requests_to(emulator_admin, "GET", path) == 1


@pytest.mark.parametrize("injected", [False, True])
def test_soap_malformed_query_fault_is_not_retried(sf_conn, emulator_admin, injected) -> None:
    """A SOAP fault is an HTTP 500 with a real exceptionCode: an answer, even for a read-only call."""
    hook = SalesforceSoapHook(sf_conn())
    soql = "SELECT Id FROMM Account"
    if injected:  # the same fault, injected on a valid query
        emulator_admin.fault(status=500, error_code="MALFORMED_QUERY", count=3, path_prefix="/services/Soap/")
        soql = "SELECT Id FROM Account"
    with pytest.raises(SalesforceSoapMalformedQueryError):
        list(hook.query(soql))
    soap_posts = {k: n for k, n in emulator_admin.stats()["requests"].items() if k.startswith("POST /services/Soap/")}
    assert list(soap_posts.values()) == [1], soap_posts


# -- bodies that are not what the API sends ---------------------------------------------------------
@pytest.mark.parametrize("body,content_type,shown", [
    (HTML_PAGE, "text/html;charset=UTF-8", "Corporate proxy: sign in"),
    (CUT_JSON, "application/json", '"DailyApiRequests"'),
])
def test_2xx_body_that_is_not_json_names_the_call(sf_conn, emulator_admin, body, content_type, shown) -> None:
    hook = SalesforceRestHook(sf_conn())
    path = hook.data_url("limits")
    hook.request("GET", path)
    emulator_admin.fault(body=body, content_type=content_type, count=2, path_prefix=path)
    for call in (lambda: hook.request("GET", path).json(), hook.limits):
        with pytest.raises(SalesforceUnparseableResponseError) as err:
            call()
        assert (err.value.status, err.value.method, err.value.path) == (200, "GET", path)
        assert "not valid JSON" in str(err.value) and shown in str(err.value)
        assert isinstance(err.value, ValueError) and isinstance(err.value, SalesforceApiError)


@pytest.mark.parametrize("body,content_type", [(HTML_PAGE, "text/html"), (CUT_JSON, "application/json")])
async def test_async_2xx_body_that_is_not_json_names_the_call(sf_conn, emulator_admin, body, content_type) -> None:
    hook = SalesforceBaseHook(sf_conn())
    path = hook.data_url("limits")
    async with hook.async_session() as session:
        await session.request("GET", path)
        emulator_admin.fault(body=body, content_type=content_type, count=1, path_prefix=path)
        response = await session.request("GET", path)
        with pytest.raises(SalesforceUnparseableResponseError) as err:
            response.json()
    assert (err.value.status, err.value.method, err.value.path) == (200, "GET", path)
    assert "not valid JSON" in str(err.value)


# -- the async session makes the same decisions ---------------------------------------------------
async def test_async_drops_and_lost_replies(sf_conn, emulator_admin) -> None:
    hook = SalesforceBulkHook(sf_conn())
    job_id = hook.create_ingest_job("Account", "insert")["id"]
    put_path = hook.data_url(f"jobs/ingest/{job_id}/batches")
    post_path = hook.data_url("sobjects/Account")
    async with hook.async_session() as session:
        emulator_admin.fault(drop_connection=True, count=1, method="PUT", path_prefix=put_path)
        reply = await session.request("PUT", put_path, data=b"Name\nAsync\n", headers={"Content-Type": "text/csv"})
        assert reply.status == 201 and requests_to(emulator_admin, "PUT", put_path) == 2
        emulator_admin.fault(status=500, error_code="UNKNOWN_EXCEPTION", count=1, method="GET",
                             path_prefix=hook.data_url(f"jobs/ingest/{job_id}"))
        assert (await session.request("GET", hook.data_url(f"jobs/ingest/{job_id}"))).json()["state"] == "Open"
        emulator_admin.fault(lose_reply=True, count=1, method="POST", path_prefix=post_path)
        with pytest.raises(SalesforceOutcomeUnknownError):
            await session.request("POST", post_path, json={"Name": "Async maybe"})
    assert requests_to(emulator_admin, "POST", post_path) == 1


def test_token_endpoint_html_page_is_still_an_auth_error(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn())
    emulator_admin.fault(body=HTML_PAGE, count=1, path_prefix=TOKEN_PATH)
    with pytest.raises(SalesforceAuthError, match="Corporate proxy"):
        hook.request("GET", hook.data_url("limits"))


async def test_async_tls_certificate_problem_is_named_and_not_retried(sf_conn, emulator_admin, caplog) -> None:
    token = SalesforceBaseHook(sf_conn()).session.token
    hook = SalesforceBaseHook(sf_conn("sf_async_tls", login=None, password=None, extra={
        "auth_type": "session", "session_id": token.access_token, "instance_url": token.instance_url,
        "ca_bundle": None, "verify": True}))
    path = hook.data_url("limits")
    async with hook.async_session() as session:
        with pytest.raises(SalesforceTransportError) as err:
            await session.request("GET", path)
    assert not isinstance(err.value, SalesforceOutcomeUnknownError)
    assert "TLS certificate/handshake problem" in str(err.value) and "ca_bundle" in str(err.value)
    assert token.access_token not in str(err.value)
    assert requests_to(emulator_admin, "GET", path) == 0  # refused at the handshake
    assert "failed transiently" not in caplog.text  # and not retried
