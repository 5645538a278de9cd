"""JWT bearer and refresh token rotation, against an emulator configured for them."""

from __future__ import annotations

import pytest

from airflow_provider_salesforce_suite.core.errors import SalesforceAuthError
from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook

USER = "admin@emulator.local"
JWT_CONSUMER_KEY = "jwt-app"


def test_jwt_bearer_flow(sf_conn, custom_emulator, custom_admin, jwt_key_pair) -> None:
    pem, _ = jwt_key_pair
    conn_id = sf_conn(server=custom_emulator, password=None,
                      extra={"auth_type": "jwt", "consumer_key": JWT_CONSUMER_KEY, "consumer_secret": None,
                             "private_key": pem})
    hook = SalesforceBaseHook(conn_id)
    assert hook.request("GET", hook.data_url("limits")).status_code == 200
    assert custom_admin.stats()["token_grants"] == {"urn:ietf:params:oauth:grant-type:jwt-bearer": 1}
    assert hook.authenticator.jwt_audience() == custom_emulator.url


def test_jwt_from_key_file_and_expired_session_reauth(sf_conn, custom_emulator, custom_admin, jwt_key_pair,
                                                      tmp_path) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_text(jwt_key_pair[0])
    hook = SalesforceBaseHook(sf_conn(server=custom_emulator, password=None,
                                      extra={"auth_type": "jwt", "consumer_key": JWT_CONSUMER_KEY,
                                             "consumer_secret": None, "private_key_file": str(key_file)}))
    hook.request("GET", "/services/data/")
    custom_admin.expire_sessions()
    assert hook.request("GET", hook.data_url("limits")).status_code == 200
    assert custom_admin.stats()["reauths"] == 1


def test_jwt_with_an_unregistered_key_is_refused(sf_conn, custom_emulator) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    hook = SalesforceBaseHook(sf_conn(server=custom_emulator, password=None,
                                      extra={"auth_type": "jwt", "consumer_key": JWT_CONSUMER_KEY,
                                             "consumer_secret": None, "private_key": other}))
    with pytest.raises(SalesforceAuthError) as err:
        hook.request("GET", "/services/data/")
    assert err.value.error == "invalid_grant" and "PRIVATE KEY" not in str(err.value)


def test_refresh_token_rotation_replaces_the_old_token(sf_conn, custom_emulator, custom_admin) -> None:
    original = custom_admin.refresh_token(USER, "emulator")
    hook = SalesforceBaseHook(sf_conn(server=custom_emulator, login=None, password=None,
                                      extra={"auth_type": "refresh_token", "refresh_token": original}))
    hook.request("GET", hook.data_url("limits"))
    rotated = hook.authenticator.current_refresh_token()
    assert rotated and rotated != original
    # The emulator now rejects `original`: re-auth only works if the rotated token is used.
    custom_admin.expire_sessions()
    assert hook.request("GET", hook.data_url("limits")).status_code == 200
    assert hook.authenticator.current_refresh_token() not in (original, rotated)
    assert custom_admin.stats()["token_grants"]["refresh_token"] == 2
