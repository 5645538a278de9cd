"""Probes for the emulator's answers that Salesforce's documentation does not pin down (the
"unconfirmed" rows of docs/contract-tests.md). On the emulator they must pass; on a live org they are
expected failures that do not fail the run: XPASS confirms the emulator, XFAIL is a fidelity gap to
report (the assertion message shows what the org answered). Every probe is live-safe: requests that
Salesforce should refuse carry only invalid records, so nothing is written even if it accepts them."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from airflow_provider_salesforce_suite.core.auth import JWT_GRANT, TOKEN_PATH
from airflow_provider_salesforce_suite.hooks.pardot import PardotHook
from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook
from tests.contract.contract_org import Org, live_requested

pytestmark = pytest.mark.xfail(live_requested(), strict=False,
                               reason="unconfirmed by Salesforce's documentation: XPASS confirms, XFAIL is a gap")


def _only_error(reply) -> dict:
    body = reply.json()
    assert reply.status_code == 400 and isinstance(body, list) and len(body) == 1, (reply.status_code, body)
    return body[0]


def test_composite_over_25_subrequests_is_limit_exceeded(org: Org) -> None:
    query = org.data_path("query") + "?q=SELECT+Id+FROM+Account+LIMIT+1"
    body = {"compositeRequest": [{"method": "GET", "url": query, "referenceId": f"q{i}"} for i in range(26)]}
    error = _only_error(org.raw("POST", org.data_path("composite"), json=body))
    assert error["errorCode"] == "LIMIT_EXCEEDED", error


def test_collections_over_10_chunks_is_invalid_batch_request(org: Org) -> None:
    # 11 alternating runs; no record is valid (no Name, no LastName), so nothing could be created
    records = [{"attributes": {"type": "Account" if i % 2 == 0 else "Contact"}, "Description": org.name("chunk")}
               for i in range(11)]
    error = _only_error(org.raw("POST", org.data_path("composite/sobjects"),
                                json={"allOrNone": False, "records": records}))
    assert error == {"errorCode": "INVALID_BATCH_REQUEST", "message": "Cannot have more than 10 chunks in a "
                     "single operation. Please rearrange the data to reduce chunking."}, error


def test_collections_over_200_records_is_exceeded_id_limit(org: Org) -> None:
    records = [{"attributes": {"type": "Account"}, "Description": org.name("big")} for _ in range(201)]
    error = _only_error(org.raw("POST", org.data_path("composite/sobjects"),
                                json={"allOrNone": False, "records": records}))
    assert error["errorCode"] == "EXCEEDED_ID_LIMIT", error


def test_revoking_an_unknown_token_is_unsupported_token_type(org: Org) -> None:
    reply = requests.post(f"{org.rest.instance_url}/services/oauth2/revoke", data={"token": f"nope{uuid.uuid4().hex}"},
                          verify=org.rest.config.requests_verify, timeout=30)
    assert (reply.status_code, reply.json()) == (400, {"error": "unsupported_token_type",
                                                       "error_description": "this token type is not supported"})


@pytest.fixture
def jwt_conn_id(org: Org, request: pytest.FixtureRequest) -> str:
    """A JWT-bearer connection: the live one (skipped unless it is JWT), or the second emulator's app."""
    if org.live:
        if org.rest.config.auth_type != "jwt":
            pytest.skip("the live connection does not use the JWT bearer flow")
        return org.conn_id
    pem, _ = request.getfixturevalue("jwt_key_pair")
    server = request.getfixturevalue("custom_emulator")
    return request.getfixturevalue("sf_conn")("sf_contract_jwt", server=server, password=None, extra={
        "auth_type": "jwt", "consumer_key": request.getfixturevalue("jwt_consumer_key"), "consumer_secret": None, "private_key": pem})


def test_expired_jwt_is_expired_authorization_code(jwt_conn_id: str) -> None:
    import jwt

    hook = SalesforceRestHook(jwt_conn_id)
    config = hook.config
    claims = {"iss": config.consumer_key, "sub": config.username, "aud": hook.authenticator.jwt_audience(),
              "exp": int(time.time()) - 300}
    assertion = jwt.encode(claims, config.private_key, algorithm="RS256")
    reply = requests.post(f"{config.login_url}{TOKEN_PATH}", data={"grant_type": JWT_GRANT, "assertion": assertion},
                          verify=config.requests_verify, timeout=30)
    assert (reply.status_code, reply.json()) == (400, {"error": "invalid_grant",
                                                       "error_description": "expired authorization code"})


@pytest.mark.parametrize("params,code", [
    ({}, 13),                                         # no fields parameter
    ({"fields": "id", "limit": 5000}, 23),            # limit over the maximum
    ({"fields": "id", "nextPageToken": "garbage"}, 211),
    ({"fields": "id,noSuchField"}, 224),
], ids=["missing-fields", "limit", "page-token", "unknown-field"])
def test_pardot_error_codes(pardot_conn_id: str, params: dict, code: int) -> None:
    hook = PardotHook(pardot_conn_id)
    reply = hook.session.request("GET", hook.url(hook.v5_path("prospects")), params=params,
                                 headers={"Pardot-Business-Unit-Id": hook.business_unit_id})
    assert reply.status_code == 400 and reply.json()["code"] == code, (reply.status_code, reply.text[:300])


def test_saql_that_cannot_run_is_error_119(org: Org) -> None:
    from airflow_provider_salesforce_suite.hooks.analytics import SalesforceAnalyticsHook

    hook = SalesforceAnalyticsHook(org.conn_id)
    saql = f'q = load "sfsuite_contract_{uuid.uuid4().hex[:8]}"; q = group q by all; q = foreach q generate count() as \'c\';'
    if org.live:
        resources = org.raw("GET", hook.wave_url())
        if resources.status_code != 200:
            pytest.skip(f"CRM Analytics answers {resources.status_code}: {resources.text[:200]} (not enabled?)")
    reply = org.raw("POST", hook.wave_url("query"), json={"query": saql})
    error = _only_error(reply)
    assert error["errorCode"] == "119", error
