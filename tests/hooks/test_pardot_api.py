"""PardotHook's object, v4, Import and Export APIs against the emulator's Pardot API (loopback HTTPS)."""

from __future__ import annotations

import threading
import time

import pytest
from airflow_provider_salesforce_suite.core.errors import (
    SalesforceApiError,
    SalesforceConfigError,
    SalesforceNotFoundError,
    SalesforceOutcomeUnknownError,
    SalesforceRequestLimitError,
    SalesforceSessionExpiredError,
    SalesforceTransportError,
)
from airflow_provider_salesforce_suite.core.pardot_objects import OBJECTS
from airflow_provider_salesforce_suite.hooks._pardot.jobs import job_status
from airflow_provider_salesforce_suite.hooks.pardot import MAX_CONCURRENT_REQUESTS, PardotBusinessUnitError, PardotHook


@pytest.fixture
def hook(pardot_conn) -> PardotHook:
    return PardotHook(pardot_conn())


def _wait(get, job_id: int, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = job_status(get(job_id))
        if status.done or status.failed:
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} not done")


@pytest.mark.parametrize("obj,values,change", [
    ("prospects", {"email": "ada@example.com", "firstName": "Ada"}, {"firstName": "Grace"}),
    ("prospect-accounts", {"name": "Acme"}, {"website": "https://acme.test"}),
    ("lists", {"name": "Newsletter"}, {"title": "The newsletter"}),
    ("custom-redirects", {"name": "Promo", "destinationUrl": "https://acme.test/promo"}, {"name": "Promo 2"}),
    ("opportunities", {"name": "Big deal", "value": 1000}, {"stage": "Won"}),
    ("tags", {"name": "vip"}, {"name": "VIP"}),
])
def test_crud_is_table_driven(hook, obj, values, change) -> None:
    created = hook.create_record(obj, values, fields=["id", *values])
    assert {k: created[k] for k in values} == values
    record_id = created["id"]
    updated = hook.update_record(obj, record_id, change, fields=list(change))
    assert updated == change
    assert hook.get_record(obj, record_id, ["id", *change]) == {"id": record_id, **change}
    hook.delete_record(obj, record_id)
    with pytest.raises(SalesforceNotFoundError, match="PARDOT_404"):
        hook.get_record(obj, record_id, "id")


def test_operations_the_api_does_not_allow_fail_before_the_network(hook) -> None:
    with pytest.raises(ValueError, match="does not allow create on users"):
        hook.create_record("users", {"email": "a@b.co"})
    with pytest.raises(ValueError, match="Unknown Pardot object"):
        list(hook.iter_records("widgets"))
    assert {"create", "read", "update", "delete"} == OBJECTS["prospects"].operations


def test_iter_records_is_lazy_and_follows_next_page_token(hook, emulator_admin) -> None:
    for n in range(5):
        hook.create_record("prospects", {"email": f"p{n}@example.com"})
    before = emulator_admin.stats()["requests_total"]
    records = hook.iter_records("prospects", ["id", "email"], page_size=2)
    assert next(records) == {"id": 1, "email": "p0@example.com"}
    assert emulator_admin.stats()["requests_total"] - before == 1  # one page fetched, not all
    assert [r["id"] for r in records] == [2, 3, 4, 5]
    assert [r["id"] for r in hook.iter_records("prospects", "id", filters={"email": "p3@example.com"})] == [4]
    assert len(list(hook.iter_records("prospects", "id", max_records=3))) == 3


def test_upsert_by_email_and_send_email(hook) -> None:
    first = hook.upsert_prospect_by_email("u@example.com", {"firstName": "A"}, fields=["id", "firstName"])
    again = hook.upsert_prospect_by_email("u@example.com", {"firstName": "B"}, fields=["id", "firstName"])
    assert first["id"] == again["id"] and again["firstName"] == "B"
    sent = hook.send_email({"prospectId": first["id"], "subject": "Hi", "campaignId": 1}, ["id", "subject"])
    assert sent["subject"] == "Hi"


def test_v4_batch_create_update_and_query(hook) -> None:
    rows = [{"email": f"b{n}@example.com"} for n in range(7)] + [{"email": "broken"}]
    results = list(hook.v4_batch_prospects(rows, "create", batch_size=3))
    assert [error for _, error in results][:7] == [None] * 7
    assert results[7][1].startswith("Invalid prospect email")
    updated = list(hook.v4_batch_prospects([{"email": "b1@example.com", "company": "Acme"}], "update"))
    assert updated[0][1] is None
    queried = list(hook.v4_query("prospect"))
    assert len(queried) == 7 and queried[1]["company"] == "Acme"
    with pytest.raises(ValueError):
        list(hook.v4_batch_prospects(rows, "create", batch_size=51))


def test_import_keeps_good_rows_and_reports_bad_ones(hook) -> None:
    rows = [{"email": "i1@example.com", "firstName": "One"}, {"email": "nope", "firstName": "Bad"},
            {"email": "i2@example.com", "firstName": "Two"}]
    import_id = hook.import_records(iter(rows), batch_rows=2)
    status = _wait(hook.get_import, import_id)
    assert status.summary()["createdCount"] == 2 and status.summary()["errorCount"] == 1
    (error,) = list(hook.iter_import_errors(import_id))
    assert error["email"] == "nope" and "Invalid prospect email" in error["error"]
    assert sorted(r["email"] for r in hook.iter_records("prospects", "email")) == ["i1@example.com", "i2@example.com"]
    with pytest.raises(ValueError, match="no records"):
        hook.import_records([])


def test_export_visitor_activities_streams_result_rows(hook, pardot_admin) -> None:
    pardot_admin("/seed", object="visitor-activities", records=[{"prospectId": 7, "details": "x"}])
    export_id = hook.create_export("visitorActivity_byDateAndType", ["id", "prospectId", "details"])
    with pytest.raises(ValueError, match="not Complete"):
        list(hook.iter_export_records(export_id))
    assert _wait(hook.get_export, export_id).done
    assert list(hook.iter_export_records(export_id)) == [{"id": "1", "prospectId": "7", "details": "x"}]
    with pytest.raises(SalesforceApiError, match="PARDOT_224"):
        hook.create_export("visitorActivity_byDateAndType", ["id", "nope"])


def test_invalid_field_names_and_emails(hook) -> None:
    with pytest.raises(SalesforceApiError, match="PARDOT_224.*nope") as err:
        list(hook.iter_records("prospects", ["id", "nope"]))
    assert err.value.status == 400
    with pytest.raises(SalesforceApiError, match="PARDOT_4"):
        hook.create_record("prospects", {"email": "not an email"})


def test_business_unit_missing_or_wrong(pardot_conn, emulator_admin) -> None:
    with pytest.raises(SalesforceConfigError, match="business_unit_id"):
        PardotHook(pardot_conn("pardot_nobu", business_unit_id=None)).config
    wrong = PardotHook(pardot_conn("pardot_wrongbu", business_unit_id="0Uv000000000999AAA"))
    wrong.authenticator.get_token()
    before = emulator_admin.stats()
    for call in (lambda: wrong.get_record("prospects", 1, "id"),
                 lambda: wrong.create_record("prospects", {"email": "ada@example.com"})):
        with pytest.raises(PardotBusinessUnitError, match="PARDOT_201") as err:
            call()
        assert not isinstance(err.value, SalesforceSessionExpiredError)
        assert err.value.status == 403
        assert "business_unit_id '0Uv000000000999AAA' of connection 'pardot_wrongbu' is wrong" in str(err.value)
        assert "not found or inactive" in str(err.value)
    after = emulator_admin.stats()
    # One request per call, and no re-authentication: the token was never the problem.
    assert after["token_grants_total"] == before["token_grants_total"] and after["reauths"] == before["reauths"]
    assert after["requests_total"] - before["requests_total"] == 2
    v4 = PardotHook(pardot_conn("pardot_wrongbu_v4", business_unit_id="0Uv000000000999AAA", pardot_api_version=4))
    with pytest.raises(PardotBusinessUnitError, match="PARDOT_201"):
        v4.request("GET", v4.v4_path("prospect", "query"))


def test_wrong_host_fails_fast(pardot_conn, salesforce_emulator_reset) -> None:
    free = socket_port()
    hook = PardotHook(pardot_conn("pardot_badhost", pardot_host=f"https://127.0.0.1:{free}", max_retries=0))
    with pytest.raises(SalesforceTransportError):
        hook.get_record("prospects", 1, "id")
    ok, message = hook.test_connection()
    assert not ok and "SalesforceTransportError" in message


def socket_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_quota_exhausted_mid_run_is_not_retried(hook, pardot_admin) -> None:
    for n in range(3):
        hook.create_record("prospects", {"email": f"q{n}@example.com"})
    pardot_admin(daily_quota=1)
    records = hook.iter_records("prospects", "id", page_size=1)
    assert next(records) == {"id": 1}
    with pytest.raises(SalesforceRequestLimitError, match="daily API quota"):
        next(records)
    assert pardot_admin()["used"] == 1  # the refused call was not retried


def test_concurrent_requests_are_capped_per_connection(hook, emulator_admin) -> None:
    emulator_admin.fault(latency_ms=300, path_prefix="/api/v5")
    hook.session.authenticator.get_token()  # authenticate before timing
    errors: list[BaseException] = []

    def one() -> None:
        try:
            list(hook.iter_records("prospects", "id"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(MAX_CONCURRENT_REQUESTS + 1)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and time.monotonic() - started >= 0.6  # the sixth call waited for a slot


def test_expired_token_is_renewed_once_and_the_call_replayed(hook, emulator_admin) -> None:
    hook.create_record("prospects", {"email": "r@example.com"})
    emulator_admin.expire_sessions()
    before = emulator_admin.stats()["token_grants_total"]
    assert [r["email"] for r in hook.iter_records("prospects", "email")] == ["r@example.com"]
    assert emulator_admin.stats()["token_grants_total"] == before + 1


# -- lost replies: the write was committed, the reply never arrived ----------------------------------
def _prospects(hook: PardotHook, email: str) -> list[dict]:
    return [p for p in hook.iter_records("prospects", ["id", "email", "firstName"]) if p["email"] == email]


def test_lost_create_reply_is_outcome_unknown_and_not_re_sent(hook, emulator_admin) -> None:
    emulator_admin.fault(lose_reply=True, count=1, path_prefix="/api/v5", method="POST")
    with pytest.raises(SalesforceOutcomeUnknownError) as err:
        hook.create_record("prospects", {"email": "lost@example.com"})
    assert "Pardot prospects create was sent, but its reply was lost" in str(err.value)
    assert "the record may have been created" in str(err.value) and err.value.method == "POST"
    assert len(_prospects(hook, "lost@example.com")) == 1  # created once, never twice


def test_lost_replies_of_upsert_update_delete_are_replayed(hook, emulator_admin) -> None:
    for first_name in ("Ada", "Grace"):  # creates, then updates the same prospect
        emulator_admin.fault(lose_reply=True, count=1, path_prefix="/api/v5", method="POST")
        assert hook.upsert_prospect_by_email("up@example.com", {"firstName": first_name})["email"] == "up@example.com"
    [prospect] = _prospects(hook, "up@example.com")
    assert prospect["firstName"] == "Grace"
    emulator_admin.fault(lose_reply=True, count=1, path_prefix="/api/v5", method="PATCH")
    assert hook.update_record("prospects", prospect["id"], {"firstName": "Ada"}, ["firstName"]) == {"firstName": "Ada"}
    emulator_admin.fault(lose_reply=True, count=1, path_prefix="/api/v5", method="DELETE")
    hook.delete_record("prospects", prospect["id"])  # the re-sent delete's 404 means the lost one deleted it
    assert _prospects(hook, "up@example.com") == []
    with pytest.raises(SalesforceNotFoundError):
        hook.delete_record("prospects", prospect["id"])  # a real second delete still says so
