"""Neither logs nor exception texts of failing and succeeding calls contain credentials or tokens."""

from __future__ import annotations

import base64
import json
import logging
from urllib.parse import urlencode

import pytest

from airflow_provider_salesforce_suite.core.errors import SalesforceApiError, SalesforceAuthError, SalesforceSuiteError
from airflow_provider_salesforce_suite.hooks.desk import DeskHook
from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook
from tests.hooks.desk_support import desk_conn  # noqa: F401 - fixture



def test_logs_and_errors_never_contain_secrets(sf_conn, emulator_admin, caplog) -> None:
    from airflow.sdk._shared.secrets_masker import redact

    caplog.set_level(logging.DEBUG)
    refresh = emulator_admin.refresh_token("admin@emulator.local", "emulator")

    # a failing flow: wrong consumer secret
    bad = SalesforceRestHook(sf_conn("sf_bad_secret", extra={"consumer_secret": "wrong-consumer-secret-1"}))
    with pytest.raises(SalesforceAuthError) as auth_err:
        bad.limits()
    bad_pw = SalesforceRestHook(sf_conn("sf_bad_password", password="Wr0ng-Passw0rd-XYZ"))
    with pytest.raises(SalesforceAuthError) as pw_err:
        bad_pw.limits()

    # succeeding calls with retries, a re-auth and API errors along the way
    hook = SalesforceRestHook(sf_conn("sf_refresh", login=None, password=None,
                                      extra={"auth_type": "refresh_token", "refresh_token": refresh}))
    record_id = hook.create("Account", {"Name": "Secretive"})
    emulator_admin.expire_sessions()
    emulator_admin.fault(status=503, count=1, path_prefix=hook.data_url("sobjects"))
    hook.get("Account", record_id)
    errors: list[SalesforceSuiteError] = [auth_err.value, pw_err.value]
    for call in (lambda: hook.get("Account", "001000000000000AAA"), lambda: list(hook.query("SELECT FROM"))):
        with pytest.raises(SalesforceSuiteError) as err:
            call()
        errors.append(err.value)

    token = hook.session.token.access_token
    secrets = [token, refresh, hook.authenticator.current_refresh_token(), "wrong-consumer-secret-1",
               "Wr0ng-Passw0rd-XYZ"]
    logged = caplog.text + "".join(repr(r.args) for r in caplog.records)
    for secret in secrets:
        assert secret not in logged
        for exc in errors:
            assert secret not in str(exc) and secret not in repr(exc)
    assert token not in repr(hook.session.token) and token not in repr(hook.config)
    # every token was registered with Airflow's masker as soon as it was received
    for secret in (token, refresh, hook.authenticator.current_refresh_token()):
        assert redact(f"x {secret} y") == "x *** y"


# -- a password with special characters, echoed back in the encodings it travels in -----------------
SPECIAL_PASSWORD = 'p@ss w+rd/&=%"\\é'
DESK_EMAIL = "echo.agent@example.com"


def _encodings(secret: str, username: str) -> dict[str, str]:
    """Every form the password takes on the wire, computed here independently of core/secrets.py."""
    from urllib.parse import quote, quote_plus

    return {
        "plain": secret,
        "form (+)": quote_plus(secret),
        "url (%20)": quote(secret, safe=""),
        "url path": quote(secret),
        "json ascii": json.dumps(secret)[1:-1],
        "json utf-8": json.dumps(secret, ensure_ascii=False)[1:-1],
        "basic": base64.b64encode(f"{username}:{secret}".encode()).decode(),
        "xml": secret.replace("&", "&amp;").replace('"', "&quot;"),
    }


def test_echoed_password_in_any_encoding_never_reaches_errors_or_logs(sf_conn, desk_conn, emulator_admin,
                                                                      caplog) -> None:
    caplog.set_level(logging.DEBUG)
    user = "admin@emulator.local"
    hook = SalesforceRestHook(sf_conn("sf_echo", password=SPECIAL_PASSWORD))
    forms = _encodings(SPECIAL_PASSWORD, user)
    form_body = urlencode({"grant_type": "password", "client_id": "emulator", "username": user,
                           "password": SPECIAL_PASSWORD + "SecTok1"})
    echoes = [
        # a proxy or endpoint that echoes the token request's form body (400: not retried; 500: retried)
        {"status": 400, "body": form_body, "content_type": "text/plain"},
        {"status": 500, "body": f"<html><body>upstream said: {form_body}</body></html>", "count": 2},
        # OAuth-shaped error quoting the password, JSON-escaped both ways
        {"status": 400, "content_type": "application/json",
         "body": json.dumps({"error": "invalid_grant", "error_description": f"bad {SPECIAL_PASSWORD}"})},
        {"status": 400, "content_type": "application/json",
         "body": json.dumps({"error": "invalid_grant", "error_description": f"bad {SPECIAL_PASSWORD}"},
                            ensure_ascii=False)},
        # every encoding at once, in a page
        {"status": 400, "body": " | ".join(forms.values())},
    ]
    errors: list[Exception] = []
    for rule in echoes:
        emulator_admin.fault(path_prefix="/services/oauth2/token", **{"count": 1, **rule})
        with pytest.raises(SalesforceAuthError) as err:
            hook.limits()
        errors.append(err.value)
    assert "invalid_grant" in str(errors[2]) and "bad ***" in str(errors[2])  # the echo is there, masked

    # Desk: Basic auth, and a proxy that echoes the Authorization header
    desk = DeskHook(desk_conn("desk_echo", login=DESK_EMAIL, password=SPECIAL_PASSWORD))
    desk_forms = _encodings(SPECIAL_PASSWORD, DESK_EMAIL)
    emulator_admin.fault(path_prefix="/api/v2", count=1, status=400,
                         body=f"Authorization: Basic {desk_forms['basic']} rejected")
    with pytest.raises(SalesforceApiError) as err:
        desk.show("users", 1)
    errors.append(err.value)
    assert "Authorization: Basic ***" in str(err.value)

    logged = caplog.text + "".join(repr(r.args) for r in caplog.records)
    for kind, form in {**forms, "desk basic": desk_forms["basic"]}.items():
        assert form not in logged, kind
        for exc in errors:
            texts = [str(exc), repr(exc), str(getattr(exc, "error_description", "")), str(exc.args)]
            assert not any(form in text for text in texts), (kind, type(exc).__name__)
