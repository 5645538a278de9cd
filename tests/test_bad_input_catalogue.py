"""The bad-input catalogue: one bad input per case, across every API, through the public hooks,
operators and file readers against the emulator. Each case asserts the exception class, that the
message names the cause (Salesforce's errorCode and/or the offending field, value or line) and
that no secret (password, consumer secret, access token) appears in it.

A case whose fix is in flight is marked ``xfail(strict=True)`` with the defect named: the
assertion is what the fixed behaviour must meet.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from airflow_provider_salesforce_suite.core.errors import (
    SalesforceApiError,
    SalesforceAuthError,
    SalesforceConfigError,
    SalesforceMalformedQueryError,
    SalesforceNotFoundError,
    SalesforcePubSubAuthError,
    SalesforcePubSubPermissionError,
    SalesforcePubSubReplayIdError,
    SalesforcePubSubTopicError,
    SalesforceSessionExpiredError,
    SalesforceSoapFaultError,
    SalesforceSoapInvalidTypeError,
)
from airflow_provider_salesforce_suite.hooks.analytics import SalesforceAnalyticsError
from airflow_provider_salesforce_suite.hooks.bulk import SalesforceBulkJobFailedError
from airflow_provider_salesforce_suite.hooks.desk import DeskAuthError
from airflow_provider_salesforce_suite.hooks.pardot import PardotBusinessUnitError
from airflow_provider_salesforce_suite.hooks.rest import SalesforceCompositeLimitError, SalesforceMixedTypesError
from airflow_provider_salesforce_suite.hooks.streaming import SalesforceStreamingError
from airflow_provider_salesforce_suite.io import RecordFileError, RecordWriter
from airflow_provider_salesforce_suite.operators.bulk import SalesforceBulkRecordsFailedError
from airflow_provider_salesforce_suite.operators.rest import SalesforceSaveStoppedError
from tests.hooks.desk_support import desk_conn  # noqa: F401  (fixture)

BAD_ID = "001000000000000AAA"
#: A private key the cases put into a connection (never read: the connection is refused first).
PEM = "-----BEGIN PRIVATE KEY-----\nMIIEcatalogue\n-----END PRIVATE KEY-----\n"
#: Connection fields and extras whose values must never appear in an error.
SECRET_FIELDS = ("password", "consumer_secret", "refresh_token", "private_key", "session_id", "access_token",
                 "access_token_secret")
WRONG_BU = "0Uv000000000999AAA"


@dataclass
class Env:
    """What the cases call: hooks on emulator connections, files in a temporary directory."""

    sf_conn: Callable[..., str]
    pardot_conn: Callable[..., str]
    desk_conn: Callable[..., str]
    tmp: Path
    hooks: list[Any] = field(default_factory=list)

    given: list[str] = field(default_factory=list)

    def _note(self, extra: dict[str, Any] | None, fields: dict[str, Any]) -> None:
        """Keep the secrets a case puts into a connection, to look for them in the error."""
        values = {**(extra or {}), **fields}
        self.given += [str(values[k]) for k in SECRET_FIELDS if values.get(k)]

    def conn(self, *, extra: dict[str, Any] | None = None, **fields: Any) -> str:
        self._note(extra, fields)
        return self.sf_conn(f"sf_bad_{len(self.hooks)}", extra={"max_retries": 0, **(extra or {})}, **fields)

    def _hook(self, hook: Any) -> Any:
        self.hooks.append(hook)
        return hook

    def rest(self, **kwargs: Any) -> Any:
        from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

        return self._hook(SalesforceRestHook(self.conn(**kwargs)))

    def soap(self) -> Any:
        from airflow_provider_salesforce_suite.hooks.soap import SalesforceSoapHook

        return self._hook(SalesforceSoapHook(self.conn()))

    def bulk(self) -> Any:
        from airflow_provider_salesforce_suite.hooks.bulk import SalesforceBulkHook

        return self._hook(SalesforceBulkHook(self.conn()))

    def analytics(self) -> Any:
        from airflow_provider_salesforce_suite.hooks.analytics import SalesforceAnalyticsHook

        return self._hook(SalesforceAnalyticsHook(self.conn()))

    def streaming(self) -> Any:
        from airflow_provider_salesforce_suite.hooks.streaming import SalesforceStreamingHook

        return self._hook(SalesforceStreamingHook(self.conn()))

    def pardot(self, **extra: Any) -> Any:
        from airflow_provider_salesforce_suite.hooks.pardot import PardotHook

        self._note(extra, {})
        return self._hook(PardotHook(self.pardot_conn(f"pardot_bad_{len(self.hooks)}", max_retries=0, **extra)))

    def desk(self, *, extra: dict[str, Any] | None = None, **fields: Any) -> Any:
        from airflow_provider_salesforce_suite.hooks.desk import DeskHook

        self._note(extra, fields)
        return self._hook(DeskHook(self.desk_conn(f"desk_bad_{len(self.hooks)}",
                                                  extra={"max_retries": 0, **(extra or {})}, **fields)))

    def file(self, name: str, content: str | bytes) -> str:
        path = self.tmp / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return str(path)

    def gzip_file(self, name: str, content: bytes, *, cut: bool = False) -> str:
        """A gzip file of ``content``; ``cut``: its second half missing (a truncated download)."""
        import gzip

        data = gzip.compress(content)
        return self.file(name, data[: len(data) // 2] if cut else data)

    def secrets(self) -> list[str]:
        """The secrets the case gave and every access token obtained in this test (the token cache is
        emptied before each test). The emulator's own password and consumer secret are the word
        ``emulator``, which messages may name innocently (the consumer key is the same word)."""
        from airflow_provider_salesforce_suite.core import auth

        return [*self.given, *(t.access_token for t in auth._CACHE.values())]


@dataclass(frozen=True)
class Bad:
    """One catalogue case.

    :param call: the call with the bad input.
    :param error: the exception class it must raise.
    :param names: what the message must name (each, case-insensitively).
    :param xfail: the defect, when the fix is in flight.
    :param not_error: a class the error must not be (a misleading one the code used to raise).
    """

    call: Callable[[Env], Any]
    error: type[BaseException]
    names: tuple[str, ...]
    xfail: str | None = None
    not_error: type[BaseException] | None = None


def _records(env: Env, op_kwargs: dict[str, Any]) -> Any:
    from airflow_provider_salesforce_suite.operators.rest import SalesforceSaveRecordsOperator

    op = SalesforceSaveRecordsOperator(task_id="save", salesforce_conn_id=env.conn(), **op_kwargs)
    return op.execute({"ti": None})


def _bulk_ingest(env: Env, **kwargs: Any) -> Any:
    from airflow_provider_salesforce_suite.operators.bulk import SalesforceBulkIngestOperator

    kwargs.setdefault("results_dir", str(env.tmp / "results"))
    op = SalesforceBulkIngestOperator(task_id="load", salesforce_conn_id=env.conn(), deferrable=False,
                                      poll_interval=0.02, **kwargs)
    return op.execute({"ti": None, "task_state_store": None})


def _bulk_query(env: Env, **kwargs: Any) -> Any:
    from airflow_provider_salesforce_suite.operators.bulk import SalesforceBulkQueryOperator

    return SalesforceBulkQueryOperator(task_id="extract", salesforce_conn_id="unused", deferrable=False, **kwargs)


def _records_of(path: str, fmt: str | None = None) -> list[dict[str, Any]]:
    from airflow_provider_salesforce_suite.io import iter_records

    return list(iter_records(path, format=fmt))


def _subscribe_error(env: Env, channel: str) -> None:
    from tests.hooks.streaming_support import Subscriber, run

    async def main() -> BaseException:
        async with Subscriber(env.streaming(), channel) as sub:
            return await sub.failure()

    raise run(main())


def _pubsub(env: Env, call: Callable[[Any], Any], **hook_kwargs: Any) -> Any:
    """Run ``call(hook)`` (a coroutine, or an async iterator whose first item is awaited) on a Pub/Sub hook."""
    import asyncio
    from contextlib import aclosing

    from airflow_provider_salesforce_suite.hooks.pubsub import SalesforcePubSubHook

    hook = SalesforcePubSubHook(env.conn(), **hook_kwargs)

    async def main() -> Any:
        try:
            result = call(hook)
            if hasattr(result, "__anext__"):
                async with aclosing(result) as items:
                    return await anext(items)
            return await result
        finally:
            await hook.aclose()

    return asyncio.run(main())


def _pubsub_session(env: Env, expired: bool) -> Any:
    """GetTopic on a ``session`` connection whose session id the org no longer knows."""
    import asyncio

    from airflow_provider_salesforce_suite.hooks.pubsub import SalesforcePubSubHook

    token = env.rest().session.token
    conn = env.conn(extra={"auth_type": "session", "session_id": token.access_token, "instance_url": token.instance_url})
    hook = SalesforcePubSubHook(conn)

    async def main() -> Any:
        try:
            await hook.channel.identity(token)  # known while the session lives
            if expired:
                env.rest().request("POST", "/services/oauth2/revoke", data={"token": token.access_token})
            return await hook.get_topic("/data/ChangeEvents")
        finally:
            await hook.aclose()

    return asyncio.run(main())


def _bulk_wait(env: Env, job: Callable[[Any], str], api: str = "2.0") -> None:
    hook = env.bulk()
    hook.wait_for_job(job(hook), api=api, poll_interval=0.02, timeout=20)


def _last_hour() -> tuple[Any, Any]:
    import datetime as dt

    now = dt.datetime.now(dt.timezone.utc)
    return now - dt.timedelta(hours=1), now


def _soap_login_wrong(env: Env) -> Any:
    password = "Wr0ng-Soap-Passw0rd"
    env.given.append(password)
    return env.soap().login("admin@emulator.local", password)


def _pardot_prospect(env: Env) -> tuple[Any, int]:
    hook = env.pardot()
    return hook, hook.create_record("prospects", {"email": "catalogue@example.com"})["id"]


def _v2_job_with(hook: Any, sobject: str, data: bytes, operation: str = "insert", **kwargs: Any) -> str:
    job_id = hook.create_ingest_job(sobject, operation, **kwargs)["id"]
    hook.upload_job_data(job_id, data)
    hook.close_job(job_id)
    return job_id


def _v1_job_with(hook: Any, sobject: str, data: bytes) -> str:
    job_id = hook.v1_create_job(sobject, "insert")["id"]
    hook.v1_add_batch(job_id, data)
    hook.v1_close_job(job_id)
    return job_id


CASES: dict[str, Bad] = {
    # -- connection config and authentication ------------------------------------------------------------------
    "conn-password-missing": Bad(lambda e: e.rest(password=None).limits(), SalesforceConfigError, ("password",)),
    "conn-unknown-auth-type": Bad(lambda e: e.rest(extra={"auth_type": "magic"}).limits(), SalesforceConfigError,
                                  ("auth_type", "magic")),
    "conn-jwt-without-key": Bad(lambda e: e.rest(extra={"auth_type": "jwt"}).limits(), SalesforceConfigError,
                                ("jwt", "private_key")),
    "conn-jwt-key-and-file": Bad(lambda e: e.rest(extra={"auth_type": "jwt", "private_key": PEM,
                                                         "private_key_file": "/x.pem"}).limits(),
                                 SalesforceConfigError, ("contradictory",)),
    "conn-refresh-token-missing": Bad(lambda e: e.rest(extra={"auth_type": "refresh_token"}).limits(),
                                      SalesforceConfigError, ("refresh_token",)),
    "conn-session-without-id": Bad(lambda e: e.rest(extra={"auth_type": "session"}).limits(),
                                   SalesforceConfigError, ("session_id",)),
    "conn-max-retries-negative": Bad(lambda e: e.rest(extra={"max_retries": -1}).limits(), SalesforceConfigError,
                                     ("max_retries",)),
    "conn-retry-seconds-zero": Bad(lambda e: e.rest(extra={"retry_max_seconds": 0}).limits(),
                                   SalesforceConfigError, ("retry_max_seconds",)),
    "conn-ca-bundle-missing": Bad(lambda e: e.rest(extra={"ca_bundle": "/nonexistent/ca.pem"}).limits(),
                                  SalesforceConfigError, ("ca_bundle", "/nonexistent/ca.pem")),
    "conn-proxies-not-json": Bad(lambda e: e.rest(extra={"proxies": "not json"}).limits(), SalesforceConfigError,
                                 ("proxies",)),
    "conn-api-version-malformed": Bad(lambda e: e.rest(extra={"api_version": "v64"}).limits(),
                                      SalesforceConfigError, ("api_version", "v64")),
    "conn-plain-http-host": Bad(lambda e: e.rest(host="http://acme.my.salesforce.com").limits(),
                                SalesforceConfigError, ("https",)),
    "auth-wrong-password": Bad(lambda e: e.rest(password="Wr0ng-Passw0rd").limits(), SalesforceAuthError,
                               ("invalid_grant",)),
    "auth-wrong-consumer-secret": Bad(lambda e: e.rest(extra={"consumer_secret": "wrong-secret"}).limits(),
                                      SalesforceAuthError, ("invalid_client",)),
    "auth-expired-refresh-token": Bad(lambda e: e.rest(login=None, password=None, extra={
        "auth_type": "refresh_token", "refresh_token": "5Aep861-revoked-token"}).limits(), SalesforceAuthError,
        ("invalid_grant", "refresh token")),
    "api-version-unsupported": Bad(lambda e: e.rest(extra={"api_version": "12.0"}).limits(), SalesforceApiError,
                                   ("12.0",)),
    # -- REST ----------------------------------------------------------------------------------------------------
    "rest-unknown-sobject": Bad(lambda e: e.rest().create("Nope__c", {"Name": "x"}), SalesforceNotFoundError,
                                ("NOT_FOUND", "Nope__c")),
    "rest-unknown-field": Bad(lambda e: e.rest().create("Account", {"Name": "x", "Nope__c": 1}), SalesforceApiError,
                              ("INVALID_FIELD", "Nope__c")),
    "rest-required-field-missing": Bad(lambda e: e.rest().create("Account", {"Industry": "Technology"}),
                                       SalesforceApiError, ("REQUIRED_FIELD_MISSING", "Name")),
    "rest-wrong-type": Bad(lambda e: e.rest().create("Account", {"Name": "x", "NumberOfEmployees": "lots"}),
                           SalesforceApiError, ("NumberOfEmployees", "lots")),
    "rest-bad-soql": Bad(lambda e: list(e.rest().query("SELECT Id FROMM Account")), SalesforceMalformedQueryError,
                         ("MALFORMED_QUERY", "FROMM")),
    "rest-soql-unknown-field": Bad(lambda e: list(e.rest().query("SELECT Nope__c FROM Account")),
                                   SalesforceApiError, ("INVALID_FIELD", "Nope__c")),
    "rest-soql-unknown-object": Bad(lambda e: list(e.rest().query("SELECT Id FROM Nope__c")),
                                    SalesforceApiError, ("INVALID_TYPE", "Nope__c")),
    "rest-get-unknown-id": Bad(lambda e: e.rest().get("Account", BAD_ID), SalesforceNotFoundError,
                               ("NOT_FOUND", BAD_ID)),
    # Salesforce reads a value that is no record id as an external id of a field that does not exist
    "rest-get-malformed-id": Bad(lambda e: e.rest().get("Account", "not-an-id"), SalesforceNotFoundError,
                                 ("NOT_FOUND", "not-an-id")),
    "rest-describe-unknown-sobject": Bad(lambda e: e.rest().describe("Nope__c"), SalesforceNotFoundError,
                                        ("NOT_FOUND", "Nope__c")),
    "rest-upsert-not-external-id": Bad(lambda e: e.rest().upsert("Account", "Name", "x", {"Phone": "1"}),
                                       SalesforceApiError, ("Name",)),
    "rest-upsert-unknown-external-id-field": Bad(lambda e: e.rest().upsert("Account", "Nope__c", "x", {"Phone": "1"}),
                                                 SalesforceApiError, ("Nope__c",)),
    "rest-unknown-resource": Bad(lambda e: e.rest().call("GET", "sobjects/Account/nothing/here"),
                                 SalesforceNotFoundError, ("NOT_FOUND",)),
    "rest-collections-over-200": Bad(lambda e: list(e.rest().save_records(
        "insert", "Account", [{"Name": "x"}], batch_size=201)), SalesforceCompositeLimitError,
        ("batch_size", "200", "201")),
    "rest-save-unknown-operation": Bad(lambda e: list(e.rest().save_records("merge", "Account", [])), ValueError,
                                       ("operation", "merge")),
    "rest-save-upsert-without-external-id": Bad(lambda e: list(e.rest().save_records("upsert", "Account", [])),
                                                ValueError, ("external_id_field",)),
    "rest-save-mixed-types": Bad(lambda e: list(e.rest().save_records(
        "insert", "Account", [{"attributes": {"type": "Contact"}, "LastName": "x"}])), SalesforceMixedTypesError,
        ("Contact", "Account")),
    "rest-composite-over-25": Bad(lambda e: e.rest().composite(
        [{"method": "GET", "url": "/services/data/v64.0/limits", "referenceId": f"r{i}"} for i in range(26)]),
        SalesforceCompositeLimitError, ("26", "25")),
    "rest-tree-over-200": Bad(lambda e: e.rest().sobject_tree(
        "Account", [{"attributes": {"type": "Account", "referenceId": f"r{i}"}, "Name": "x"} for i in range(201)]),
        SalesforceCompositeLimitError, ("201", "200")),
    "rest-collections-raw-over-200": Bad(lambda e: e.rest().call("POST", "composite/sobjects", json={
        "allOrNone": False, "records": [{"attributes": {"type": "Account"}, "Name": f"x{i}"} for i in range(201)]}),
        SalesforceApiError, ("EXCEEDED_ID_LIMIT", "200")),
    "rest-read-only-field": Bad(lambda e: (lambda h: h.update("Account", h.create("Account", {"Name": "a"}), {
        "CreatedDate": "2020-01-01T00:00:00Z"}))(e.rest()), SalesforceApiError,
        ("INVALID_FIELD_FOR_INSERT_UPDATE", "CreatedDate")),
    "rest-value-too-long": Bad(lambda e: e.rest().create("Account", {"Name": "a" * 300}), SalesforceApiError,
                               ("STRING_TOO_LONG", "Name")),
    "rest-soql-bad-date": Bad(lambda e: list(e.rest().query("SELECT Id FROM Account WHERE CreatedDate > 2020-13-45")),
                              SalesforceApiError, ("INVALID_FIELD", "CreatedDate")),
    "rest-bad-sosl": Bad(lambda e: e.rest().search("FIND {unclosed"), SalesforceMalformedQueryError,
                         ("MALFORMED_SEARCH", "{unclosed")),
    "rest-delete-unknown-id": Bad(lambda e: e.rest().delete("Account", BAD_ID), SalesforceNotFoundError,
                                  ("NOT_FOUND", BAD_ID)),
    "rest-get-records-unknown-field": Bad(lambda e: list(e.rest().get_records("Account", [BAD_ID], ["Nope__c"])),
                                          SalesforceApiError, ("INVALID_FIELD", "Nope__c")),
    # -- SOAP ----------------------------------------------------------------------------------------------------
    "soap-bad-soql": Bad(lambda e: list(e.soap().query("SELECT Id FORM Account")), SalesforceMalformedQueryError,
                         ("MALFORMED_QUERY",)),
    "soap-soql-unknown-field": Bad(lambda e: list(e.soap().query("SELECT Nope__c FROM Account")),
                                   SalesforceMalformedQueryError, ("INVALID_FIELD", "Nope__c")),
    "soap-describe-unknown-sobject": Bad(lambda e: e.soap().describe_sobject("Nope__c"), SalesforceSoapFaultError,
                                         ("INVALID_TYPE", "Nope__c")),
    "soap-create-unknown-sobject": Bad(lambda e: e.soap().create([{"Name": "x"}], sobject="Nope__c"),
                                       SalesforceSoapInvalidTypeError, ("INVALID_TYPE", "Nope__c"),
                                       not_error=SalesforceMalformedQueryError),
    "soap-unknown-operation": Bad(lambda e: e.soap().call("frobnicate"), ValueError, ("frobnicate",)),
    "soap-retrieve-unknown-field": Bad(lambda e: e.soap().retrieve("Account", [BAD_ID], ["Nope__c"]),
                                       SalesforceSoapFaultError, ("INVALID_FIELD", "Nope__c")),
    "soap-bad-query-locator": Bad(lambda e: e.soap().query_more("01gD0000000bogus-200"), SalesforceSoapFaultError,
                                  ("INVALID_QUERY_LOCATOR",)),
    "soap-get-deleted-unknown-sobject": Bad(lambda e: e.soap().get_deleted("Nope__c", *_last_hour()),
                                            SalesforceSoapFaultError, ("INVALID_TYPE", "Nope__c")),
    "soap-bad-sosl": Bad(lambda e: e.soap().search("FIND {unclosed"), SalesforceSoapFaultError, ("MALFORMED_SEARCH",)),
    "soap-wrong-login": Bad(_soap_login_wrong, SalesforceSoapFaultError, ("INVALID_LOGIN",)),
    # -- Bulk 2.0 / 1.0 --------------------------------------------------------------------------------------------
    "bulk2-unknown-sobject": Bad(lambda e: e.bulk().create_ingest_job("Nope__c", "insert"), SalesforceApiError,
                                 ("Nope__c",)),
    "bulk2-unknown-operation": Bad(lambda e: e.bulk().create_ingest_job("Account", "merge"), ValueError,
                                   ("operation", "merge")),
    "bulk2-upsert-not-external-id": Bad(lambda e: e.bulk().create_ingest_job("Account", "upsert",
                                                                             external_id_field="Name"),
                                        SalesforceApiError, ("Name",)),
    "bulk2-upsert-unknown-external-id": Bad(lambda e: e.bulk().create_ingest_job("Account", "upsert",
                                                                                 external_id_field="Nope__c"),
                                            SalesforceApiError, ("InvalidJob", "Nope__c", "External Id")),
    "bulk2-extract-unknown-field": Bad(lambda e: e.bulk().extract("SELECT Nope__c FROM Account", str(e.tmp / "o.csv")),
                                       SalesforceApiError, ("INVALID_FIELD", "Nope__c")),
    "bulk2-extract-unsupported-suffix": Bad(lambda e: e.bulk().extract("SELECT Id FROM Account",
                                                                        str(e.tmp / "o.xlsx")),
                                            RecordFileError, ("o.xlsx", "suffix")),
    "bulk2-unknown-job-id": Bad(lambda e: e.bulk().get_job("7505E0000000000AAA"), SalesforceNotFoundError,
                                ("7505E0000000000AAA",)),
    "bulk2-unknown-field-in-header": Bad(lambda e: _bulk_wait(e, lambda h: _v2_job_with(
        h, "Account", b"Name,Nope__c\nx,1\n")), SalesforceBulkJobFailedError,
        ("InvalidBatch", "Nope__c")),
    "bulk2-bad-soql": Bad(lambda e: e.bulk().create_query_job("SELECT Id FROMM Account"), SalesforceApiError,
                          ("FROMM",)),
    "bulk2-upload-to-closed-job": Bad(lambda e: (lambda h, j: h.upload_job_data(j, b"Name\nx\n"))(
        *(lambda h: (h, _v2_job_with(h, "Account", b"Name\ny\n")))(e.bulk())), SalesforceApiError, ("state",)),
    "bulk1-unknown-sobject": Bad(lambda e: e.bulk().v1_create_job("Nope__c", "insert"), SalesforceApiError,
                                 ("InvalidJob", "Nope__c")),
    "bulk1-unknown-job-id": Bad(lambda e: e.bulk().v1_get_job("7505E0000000000AAA"), SalesforceApiError,
                                ("7505E0000000000AAA",)),
    "bulk1-unknown-content-type": Bad(lambda e: e.bulk().v1_create_job("Account", "insert", content_type="YAML"),
                                      ValueError, ("content_type", "YAML")),
    "bulk1-unknown-field-in-header": Bad(lambda e: _bulk_ingest(e, sobject="Account", api="1.0", records=[
        {"Name": "x", "Nope__c": 1}]), SalesforceBulkRecordsFailedError, ("InvalidBatch", "Nope__c")),
    "bulk1-batch-to-closed-job": Bad(lambda e: (lambda h: (lambda j: h.v1_add_batch(j, b"Name\nx\n"))(
        _v1_job_with(h, "Account", b"Name\ny\n")))(e.bulk()), SalesforceApiError, ("InvalidJobState", "not open")),
    "bulk-ingest-ragged-csv": Bad(lambda e: _bulk_ingest(e, sobject="Account", source=e.file(
        "ragged.csv", "Name,Phone\na,1\nb\n")), RecordFileError, ("ragged.csv", "line 3")),
    "bulk-ingest-unsupported-suffix": Bad(lambda e: _bulk_ingest(e, sobject="Account", source=e.file(
        "accounts.xlsx", "x")), RecordFileError, ("xlsx",)),
    "bulk-ingest-records-a-string": Bad(lambda e: _bulk_ingest(e, sobject="Account", records="Name\nx"),
                                        TypeError, ("records", "str")),
    "bulk-ingest-unknown-api": Bad(lambda e: _bulk_ingest(e, sobject="Account", records=[], api="3.0"),
                                   ValueError, ("api", "3.0")),
    "bulk-query-pk-chunking-on-2": Bad(lambda e: _bulk_query(e, soql="SELECT Id FROM Account", output_uri="x.csv",
                                                             pk_chunking=True), ValueError, ("pk_chunking", "1.0")),
    "bulk-query-watermark-without-incremental": Bad(lambda e: _bulk_query(
        e, soql="SELECT Id FROM Account", output_uri="x.csv", watermark_field="LastModifiedDate"), ValueError,
        ("watermark_field", "incremental")),
    "bulk-query-poll-interval-zero": Bad(lambda e: _bulk_query(e, soql="SELECT Id FROM Account", output_uri="x.csv",
                                                               poll_interval=0), ValueError, ("poll_interval",)),
    "bulk-query-parallel-pages-on-1": Bad(lambda e: _bulk_query(e, soql="SELECT Id FROM Account", output_uri="x.csv",
                                                                api="1.0", max_parallel_pages=4), ValueError,
                                          ("max_parallel_pages",)),
    # -- Streaming -------------------------------------------------------------------------------------------------
    "streaming-unknown-channel": Bad(lambda e: _subscribe_error(e, "/topic/Nope"), SalesforceStreamingError,
                                     ("/topic/Nope", "does not exist")),
    "streaming-bad-pushtopic-query": Bad(lambda e: e.streaming().create_push_topic("Bad", "SELECT FROM Account"),
                                         SalesforceApiError, ("MALFORMED_QUERY",)),
    "streaming-pushtopic-unknown-option": Bad(lambda e: e.streaming().update_push_topic("T", colour="red"),
                                              ValueError, ("colour",)),
    "streaming-pushtopic-bad-notify": Bad(lambda e: e.streaming().create_push_topic(
        "Good", "SELECT Id, Name FROM Account", notify_for_fields="Sometimes"), ValueError,
        ("notify_for_fields", "Sometimes")),
    "streaming-delete-unknown-pushtopic": Bad(lambda e: e.streaming().delete_push_topic("NoSuchTopic"),
                                              SalesforceNotFoundError, ("NoSuchTopic",)),
    # -- Pub/Sub API ------------------------------------------------------------------------------------------------
    "pubsub-unknown-topic": Bad(lambda e: _pubsub(e, lambda h: h.get_topic("/event/Nope__e")),
                                SalesforcePubSubTopicError, ("/event/Nope__e", "topic.not.found")),
    "pubsub-wrong-tenant": Bad(lambda e: _pubsub(e, lambda h: h.get_topic("/data/ChangeEvents"),
                                                 tenant_id="00D000000000999AAA"),
                               SalesforcePubSubPermissionError, ("PERMISSION_DENIED", "tenantid")),
    "pubsub-replay-id-not-valid": Bad(lambda e: _pubsub(e, lambda h: h.subscribe(
        "/data/ChangeEvents", replay_preset="CUSTOM", replay_id=(10**12).to_bytes(8, "big"))),
        SalesforcePubSubReplayIdError, ("INVALID_ARGUMENT", "replayid")),
    "pubsub-replay-id-not-base64": Bad(lambda e: _pubsub(e, lambda h: h.subscribe(
        "/data/ChangeEvents", replay_preset="CUSTOM", replay_id="not base64!")), ValueError, ("not base64!",)),
    "pubsub-publish-to-change-events": Bad(lambda e: _pubsub(e, lambda h: h.publish("/data/ChangeEvents", [{}])),
                                           SalesforcePubSubTopicError, ("cannot publish", "/data/ChangeEvents")),
    "pubsub-expired-session-id": Bad(lambda e: _pubsub_session(e, expired=True), SalesforcePubSubAuthError,
                                     ("UNAUTHENTICATED", "session_id")),
    "pubsub-topic-not-a-topic": Bad(lambda e: _pubsub(e, lambda h: h.get_topic("Order__e")), ValueError,
                                    ("Order__e", "/event/")),
    # -- CRM Analytics ---------------------------------------------------------------------------------------------
    "analytics-bad-saql": Bad(lambda e: e.analytics().query("q = load;"), SalesforceApiError, ("Syntax error",)),
    "analytics-unknown-dataset": Bad(lambda e: e.analytics().query('q = load "Nowhere";'), SalesforceApiError,
                                     ("Nowhere", "not found")),
    "analytics-get-unknown-dataset": Bad(lambda e: e.analytics().get_dataset("0Fb000000000000AAA"),
                                         SalesforceNotFoundError, ("0Fb000000000000AAA",)),
    "analytics-upload-bad-operation": Bad(lambda e: e.analytics().upload_dataset(
        e.file("d.csv", "a\n1\n"), "S", operation="Merge"), SalesforceAnalyticsError, ("operation", "Merge")),
    "analytics-upload-empty-file": Bad(lambda e: e.analytics().upload_dataset(e.file("empty.csv", ""), "S"),
                                       SalesforceAnalyticsError, ("empty.csv", "empty")),
    "analytics-unknown-collection": Bad(lambda e: list(e.analytics().iter_assets("widgets")),
                                        SalesforceNotFoundError, ("NOT_FOUND", "widgets")),
    "analytics-start-unknown-dataflow": Bad(lambda e: e.analytics().start_dataflow("02K000000000000AAA"),
                                            SalesforceNotFoundError, ("02K000000000000AAA",)),
    # -- Pardot ----------------------------------------------------------------------------------------------------
    "pardot-unknown-object": Bad(lambda e: e.pardot().get_record("widgets", 1, "id"), ValueError, ("widgets",)),
    "pardot-unknown-field": Bad(lambda e: (lambda h, i: h.get_record("prospects", i, ["id", "nope"]))(
        *_pardot_prospect(e)), SalesforceApiError, ("PARDOT_224", "nope")),
    "pardot-business-unit-missing": Bad(lambda e: e.pardot(business_unit_id=None).get_record("prospects", 1, "id"),
                                        SalesforceConfigError, ("business_unit_id",)),
    "pardot-business-unit-malformed": Bad(lambda e: e.pardot(business_unit_id="abc").get_record("prospects", 1, "id"),
                                          SalesforceConfigError, ("business_unit_id", "0Uv")),
    "pardot-wrong-business-unit": Bad(lambda e: e.pardot(business_unit_id=WRONG_BU).get_record(
        "prospects", 1, "id"), PardotBusinessUnitError, ("PARDOT_201", WRONG_BU, "business_unit_id"),
        not_error=SalesforceSessionExpiredError),
    "pardot-invalid-email": Bad(lambda e: e.pardot().create_record("prospects", {"email": "not an email"}),
                                SalesforceApiError, ("email",)),
    "pardot-unknown-record": Bad(lambda e: e.pardot().get_record("prospects", 987654, "id"), SalesforceApiError,
                                 ("987654",)),
    "pardot-import-bad-operation": Bad(lambda e: e.pardot().create_import("Merge"), SalesforceApiError,
                                       ("PARDOT_154", "operation Create or Upsert")),
    "pardot-export-unknown-procedure": Bad(lambda e: e.pardot().create_export("Nope.Query", ["id"]),
                                           SalesforceApiError, ("PARDOT_174", "procedure.name must be one of")),
    # -- Desk ------------------------------------------------------------------------------------------------------
    "desk-wrong-password": Bad(lambda e: e.desk(password="Wr0ng-Desk-Passw0rd").create_case("x"), DeskAuthError,
                               ("401", "Unauthorized"), not_error=SalesforceSessionExpiredError),
    "desk-unknown-collection": Bad(lambda e: e.desk().show("tickets", 1), ValueError, ("tickets",)),
    "desk-unknown-case": Bad(lambda e: e.desk().show("cases", 404), SalesforceNotFoundError,
                             ("Resource Not Found", "cases/404")),
    "desk-unknown-sub-collection": Bad(lambda e: e.desk().collection_path("companies", 1, "notes"), ValueError,
                                       ("notes",)),
    "desk-create-unsupported": Bad(lambda e: e.desk().create("users", {"name": "x"}), ValueError,
                                   ("users", "create")),
    "desk-unknown-auth-type": Bad(lambda e: e.desk(extra={"auth_type": "magic"}).show("cases", 1),
                                  SalesforceConfigError, ("auth_type", "magic")),
    # -- operators' arguments --------------------------------------------------------------------------------------
    "op-save-records-and-source": Bad(lambda e: _records(e, {"sobject": "Account", "records": [], "source": "x.csv"}),
                                      ValueError, ("records", "source")),
    "op-save-neither-input": Bad(lambda e: _records(e, {"sobject": "Account"}), ValueError, ("records", "source")),
    "op-save-unknown-operation": Bad(lambda e: _records(e, {"sobject": "Account", "records": [],
                                                            "operation": "merge"}), ValueError, ("merge",)),
    "op-save-upsert-without-external-id": Bad(lambda e: _records(e, {"sobject": "Account", "records": [],
                                                                     "operation": "upsert"}), ValueError,
                                              ("external_id_field",)),
    "op-save-negative-max-failed": Bad(lambda e: _records(e, {"sobject": "Account", "records": [],
                                                              "max_failed_records": -1}), ValueError,
                                       ("max_failed_records",)),
    "op-save-records-a-string": Bad(lambda e: _records(e, {"sobject": "Account", "records": "Name\nx"}), TypeError,
                                    ("records", "str")),
    "op-save-source-bad-json-line": Bad(lambda e: _records(e, {"sobject": "Account", "source": e.file(
        "in.jsonl", '{"Name": "a"}\n{"Name": \n')}), SalesforceSaveStoppedError,
        ("in.jsonl", "line 2", "not valid JSON")),
    # -- file formats (io) -----------------------------------------------------------------------------------------
    "io-unsupported-suffix": Bad(lambda e: _records_of(e.file("data.xlsx", "x")), RecordFileError, ("xlsx",)),
    "io-ragged-csv-row": Bad(lambda e: _records_of(e.file("ragged.csv", "Name,Phone\na,1\nb\n")), RecordFileError,
                             ("ragged.csv", "line 3", "1 values for 2 columns")),
    "io-csv-repeated-header": Bad(lambda e: _records_of(e.file("dup.csv", "Name,Name\na,b\n")), RecordFileError,
                                  ("line 1", "repeated")),
    "io-csv-not-utf8": Bad(lambda e: _records_of(e.file("latin1.csv", "Name\ncaf\xe9\n".encode("latin-1"))),
                           RecordFileError, ("latin1.csv", "utf-8")),
    "io-bad-json-line": Bad(lambda e: _records_of(e.file("bad.jsonl", '{"a": 1}\n{nope}\n')), RecordFileError,
                            ("bad.jsonl", "line 2", "JSON")),
    "io-json-line-not-object": Bad(lambda e: _records_of(e.file("list.jsonl", '{"a": 1}\n[1, 2]\n')),
                                   RecordFileError, ("line 2", "object", "list")),
    "io-not-parquet": Bad(lambda e: _records_of(e.file("fake.parquet", "not parquet")), RecordFileError,
                          ("fake.parquet", "Parquet")),
    "io-not-gzip": Bad(lambda e: _records_of(e.file("fake.csv.gz", "Name\nx\n")), RecordFileError,
                       ("fake.csv.gz", "gzip")),
    "io-truncated-gzip": Bad(lambda e: _records_of(e.gzip_file("cut.jsonl.gz", b'{"Name": "x"}\n' * 50, cut=True)),
                             RecordFileError, ("cut.jsonl.gz", "gzip")),
    "io-format-mismatch": Bad(lambda e: _records_of(e.file("data.csv", "Name\nx\n"), "xml"), RecordFileError,
                              ("xml",)),
    "io-writer-unknown-suffix": Bad(lambda e: RecordWriter(str(e.tmp / "out.xml")), RecordFileError,
                                    ("out.xml", "suffix")),
    "io-gzip-bad-json-line": Bad(lambda e: _records_of(e.file("bad.jsonl.gz", gzip.compress(b'{"a": 1}\n{x\n'))),
                                 RecordFileError, ("bad.jsonl.gz", "line 2")),
}


@pytest.fixture
def env(sf_conn, pardot_conn, desk_conn, tmp_path) -> Env:  # noqa: F811 (desk_conn is the imported fixture)
    return Env(sf_conn, pardot_conn, desk_conn, tmp_path)


def test_catalogue_has_at_least_80_cases_across_every_api() -> None:
    assert len(CASES) >= 80
    areas = {name.split("-")[0] for name in CASES}
    assert {"conn", "auth", "rest", "soap", "bulk2", "bulk1", "streaming", "analytics", "pardot", "desk", "op",
            "io"} <= areas


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=case.xfail)) if case.xfail else name
    for name, case in CASES.items()])
def test_bad_input(name: str, env: Env) -> None:
    case = CASES[name]
    with pytest.raises(BaseException) as caught:
        case.call(env)
    error = caught.value
    text = str(error)
    assert isinstance(error, case.error), f"{name}: {type(error).__name__} is not {case.error.__name__}: {text}"
    if case.not_error is not None:
        assert not isinstance(error, case.not_error), f"{name}: still a {case.not_error.__name__}: {text}"
    missing = [cause for cause in case.names if cause.lower() not in text.lower()]
    assert not missing, f"{name}: the message does not name {missing}: {type(error).__name__}: {text}"
    for secret in env.secrets():
        assert secret not in text and secret not in repr(error), f"{name}: a secret is in the message"

