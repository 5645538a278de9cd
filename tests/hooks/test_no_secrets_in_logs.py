"""Neither logs nor exception texts of failing and succeeding calls contain credentials or tokens."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_salesforce_suite.core.errors import SalesforceAuthError, SalesforceSuiteError
from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook



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
