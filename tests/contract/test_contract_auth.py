"""OAuth through the connection, and the token endpoint's documented failures."""

from __future__ import annotations

import os
import re
import uuid

import pytest
import requests

from airflow_provider_salesforce_suite.core.errors import SalesforceAuthError
from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook
from tests.contract.contract_org import LIVE_WRONG_PASSWORD_ENV, Org

# https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_flow_errors.htm (token errors
# are 400 with a JSON {error, error_description}).
AUTH_FAILURE = ("invalid_grant", "authentication failure")


def test_token_through_the_connection(org: Org) -> None:
    token = org.rest.authenticator.get_token()
    assert token.access_token and token.token_type == "Bearer"
    assert token.instance_url.startswith("https://")
    # the identity URL names the org (00D) and the user (005)
    assert re.search(r"/id/00D\w{12,15}/005\w{12,15}$", token.extra["id"]), "identity URL shape"
    assert token.extra["issued_at"].isdigit()


def _password_variant(org: Org, connection_variant, **fields: str) -> str:
    config = org.rest.config
    if not (config.consumer_key and config.consumer_secret):
        pytest.skip("the connection has no consumer key and secret for the username-password flow")
    # the connection's own extras (TLS, proxies, key and secret), switched to the password flow
    other_flows = dict.fromkeys(("private_key", "private_key_file", "refresh_token", "session_id", "instance_url"))
    return connection_variant(org, "sf_contract_bad", extra_changes={**other_flows, "auth_type": "password",
                                                                     "max_retries": 0}, **fields)


@pytest.mark.parametrize("wrong", ["password", "username"])
def test_wrong_credentials_answer_invalid_grant(org: Org, connection_variant, wrong: str) -> None:
    if org.live and wrong == "password" and os.environ.get(LIVE_WRONG_PASSWORD_ENV) != "1":
        pytest.skip(f"a failed login counts towards the user's lockout: set {LIVE_WRONG_PASSWORD_ENV}=1 to run it")
    login = org.rest.config.username or "nobody"
    fields = ({"password": f"wrong-{uuid.uuid4().hex}"} if wrong == "password"
              else {"login": f"nobody-{uuid.uuid4().hex[:12]}@example.invalid", "password": "x"})
    fields.setdefault("login", login)
    conn_id = _password_variant(org, connection_variant, **fields)
    with pytest.raises(SalesforceAuthError) as caught:
        SalesforceRestHook(conn_id).authenticator.get_token()
    assert (caught.value.status, caught.value.error, caught.value.error_description) == (400, *AUTH_FAILURE)


def test_a_bad_session_answers_invalid_session_id(org: Org) -> None:
    config = org.rest.config
    instance = org.rest.instance_url
    reply = requests.get(f"{instance}{org.data_path('limits')}", headers={"Authorization": "Bearer not-a-session"},
                         verify=config.requests_verify, timeout=30)
    assert reply.status_code == 401
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_revoking_an_unknown_token_answers_400(org: Org) -> None:
    # https://developer.salesforce.com/docs/platform/mobile-sdk/guide/oauth-revoking-tokens.html: every
    # error is a 400 with unsupported_token_type or invalid_token (which one for which case is not said).
    config = org.rest.config
    reply = requests.post(f"{org.rest.instance_url}/services/oauth2/revoke", data={"token": f"nope{uuid.uuid4().hex}"},
                          verify=config.requests_verify, timeout=30)
    assert reply.status_code == 400
    assert reply.json()["error"] in {"unsupported_token_type", "invalid_token"}
