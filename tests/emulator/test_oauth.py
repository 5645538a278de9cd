"""OAuth endpoints over loopback HTTPS: every grant, Salesforce's error bodies, revoke, identity."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import time

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sf_emulator_client import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME, V, EmulatorClient

from airflow_provider_salesforce_suite.emulator.config import ConnectedAppConfig, UserConfig

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@pytest.fixture
def client(salesforce_emulator_reset) -> EmulatorClient:
    return EmulatorClient(salesforce_emulator_reset)


@pytest.fixture
def configure(salesforce_emulator_reset):
    """Change the live config on the server thread; restored after the test."""
    server = salesforce_emulator_reset
    state = server.state
    saved = (list(state.config.users), list(state.config.connected_apps), state.config.refresh_token_rotation,
             state.sessions.lifetime_seconds)

    def apply(fn):
        return server.call(lambda: fn(state))

    yield apply

    def restore(s):
        s.config.users, s.config.connected_apps, s.config.refresh_token_rotation, s.sessions.lifetime_seconds = saved

    server.call(lambda: restore(state))


def _error(reply) -> dict:
    assert reply.headers["Content-Type"] == "application/json;charset=UTF-8"
    return reply.json()


# -- password ------------------------------------------------------------------------------------


def test_password_grant_returns_salesforce_token_shape(client: EmulatorClient) -> None:
    reply = client.password_login()
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "application/json;charset=UTF-8"
    body = reply.json()
    assert set(body) == {"access_token", "instance_url", "id", "token_type", "issued_at", "signature", "scope"}
    assert body["instance_url"] == client.url
    assert body["token_type"] == "Bearer"
    org_id, user_id = body["id"].rsplit("/", 2)[-2:]
    assert body["id"] == f"{client.url}/id/{org_id}/{user_id}"
    assert org_id.startswith("00D") and user_id.startswith("005")
    assert body["access_token"].startswith(org_id[:15] + "!AQ")
    assert abs(int(body["issued_at"]) / 1000 - time.time()) < 60
    expected = hmac.new(CLIENT_SECRET.encode(), (body["id"] + body["issued_at"]).encode(), hashlib.sha256).digest()
    assert base64.b64decode(body["signature"]) == expected
    assert client.get(V + "/limits", token=body["access_token"]).status_code == 200


@pytest.mark.parametrize(
    ("form", "error", "description"),
    [
        ({"password": "wrong"}, "invalid_grant", "authentication failure"),
        ({"username": "nobody@example.com"}, "invalid_grant", "authentication failure"),
        ({"client_id": "unknown"}, "invalid_client_id", "client identifier invalid"),
        ({"client_secret": "wrong"}, "invalid_client", "invalid client credentials"),
        ({"grant_type": "authorization_code"}, "unsupported_grant_type", "grant type not supported"),
    ],
)
def test_password_grant_errors(client: EmulatorClient, form: dict, error: str, description: str) -> None:
    params = {"grant_type": "password", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
              "username": USERNAME, "password": PASSWORD, **form}
    reply = client.token_request(**params)
    assert reply.status_code == 400
    assert _error(reply) == {"error": error, "error_description": description}
    assert client.stats()["token_grant_failures"] == {params["grant_type"]: 1}


def test_password_needs_security_token_when_the_user_has_one(client: EmulatorClient, configure) -> None:
    def add_user(state):
        state.config.add_user(UserConfig("etl@example.com", "pw", security_token="TOKEN123"))
        state.provision_users()

    configure(add_user)
    assert client.password_login("etl@example.com", "pw").status_code == 400
    reply = client.password_login("etl@example.com", "pwTOKEN123")
    assert reply.status_code == 200
    me = client.get("/services/oauth2/userinfo", token=reply.json()["access_token"]).json()
    assert me["preferred_username"] == "etl@example.com"


# -- refresh token -------------------------------------------------------------------------------


def _refresh_token(client: EmulatorClient, **payload: str) -> str:
    reply = client.admin("POST", "refresh-tokens", payload or {"username": USERNAME, "client_id": CLIENT_ID})
    assert reply.status_code == 201, reply.text
    return reply.json()["refresh_token"]


def _refresh(client: EmulatorClient, token: str):
    return client.token_request(grant_type="refresh_token", client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                refresh_token=token)


def test_refresh_token_grant_without_rotation_keeps_the_token(client: EmulatorClient) -> None:
    token = _refresh_token(client)
    first = _refresh(client, token)
    assert first.status_code == 200
    assert "refresh_token" not in first.json()
    assert _refresh(client, token).status_code == 200
    assert client.get(V + "/sobjects", token=first.json()["access_token"]).status_code == 200
    assert client.stats()["token_grants"] == {"refresh_token": 2}


def test_refresh_token_rotation_returns_a_new_token_and_rejects_the_old(client: EmulatorClient, configure) -> None:
    configure(lambda s: setattr(s.config, "refresh_token_rotation", True))
    old = _refresh_token(client)
    reply = _refresh(client, old)
    assert reply.status_code == 200
    new = reply.json()["refresh_token"]
    assert new != old
    again = _refresh(client, old)
    assert again.status_code == 400
    assert again.json() == {"error": "invalid_grant", "error_description": "expired access/refresh token"}
    assert _refresh(client, new).status_code == 200


def test_refresh_token_errors(client: EmulatorClient) -> None:
    assert _refresh(client, "5Aep861bogus").json() == {
        "error": "invalid_grant", "error_description": "expired access/refresh token"}
    token = _refresh_token(client)
    wrong_secret = client.token_request(grant_type="refresh_token", client_id=CLIENT_ID, client_secret="x",
                                        refresh_token=token)
    assert wrong_secret.json()["error"] == "invalid_client"
    unknown = client.admin("POST", "refresh-tokens", {"username": "nobody@example.com", "client_id": CLIENT_ID})
    assert unknown.status_code == 404


# -- client credentials --------------------------------------------------------------------------


def test_client_credentials_in_the_form_and_with_basic_auth(client: EmulatorClient) -> None:
    reply = client.token_request(grant_type="client_credentials", client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    assert reply.status_code == 200, reply.text
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    reply2 = requests.post(client.url + "/services/oauth2/token", data={"grant_type": "client_credentials"},
                           headers={"Authorization": f"Basic {basic}"}, verify=client.verify, timeout=10)
    assert reply2.status_code == 200, reply2.text
    me = client.get("/services/oauth2/userinfo", token=reply2.json()["access_token"]).json()
    assert me["preferred_username"] == USERNAME


def test_client_credentials_errors(client: EmulatorClient, configure) -> None:
    configure(lambda s: s.config.add_connected_app(ConnectedAppConfig("No Run As", "norunas", "sec")))
    reply = client.token_request(grant_type="client_credentials", client_id="norunas", client_secret="sec")
    assert reply.status_code == 400
    assert reply.json() == {"error": "invalid_grant", "error_description": "no client credentials user enabled"}
    reply = client.token_request(grant_type="client_credentials", client_id=CLIENT_ID, client_secret="bad")
    assert reply.json() == {"error": "invalid_client", "error_description": "invalid client credentials"}


# -- JWT bearer ----------------------------------------------------------------------------------


def _key_and_cert(directory) -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "airflow")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    path = directory / "jwt-cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, str(path)


@pytest.fixture(scope="module")
def jwt_material(tmp_path_factory):
    directory = tmp_path_factory.mktemp("jwt")
    key, cert_path = _key_and_cert(directory)
    other_key, _ = _key_and_cert(tmp_path_factory.mktemp("jwt-other"))
    return key, cert_path, other_key


@pytest.fixture
def jwt_app(configure, jwt_material):
    _, cert_path, _ = jwt_material
    configure(lambda s: s.config.add_connected_app(
        ConnectedAppConfig("JWT App", "jwt-app", "jwt-secret", certificates=[cert_path])))
    return jwt_material


def _assertion(key, **claims) -> str:
    payload = {"iss": "jwt-app", "sub": USERNAME, "aud": "https://login.salesforce.com",
               "exp": int(time.time()) + 180, **claims}
    return jwt.encode(payload, key, algorithm="RS256")


def _jwt_login(client: EmulatorClient, assertion: str):
    return client.token_request(grant_type=JWT_GRANT, assertion=assertion)


@pytest.mark.parametrize("aud", ["https://login.salesforce.com", "https://test.salesforce.com", "SELF"])
def test_jwt_bearer_grant(client: EmulatorClient, jwt_app, aud: str) -> None:
    key, _, _ = jwt_app
    reply = _jwt_login(client, _assertion(key, aud=client.url if aud == "SELF" else aud))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert "refresh_token" not in body and body["instance_url"] == client.url
    assert client.get(V + "/sobjects", token=body["access_token"]).status_code == 200
    assert client.stats()["token_grants"] == {JWT_GRANT: 1}


def test_jwt_bearer_errors(client: EmulatorClient, jwt_app) -> None:
    key, _, other_key = jwt_app

    def error(assertion: str) -> dict:
        reply = _jwt_login(client, assertion)
        assert reply.status_code == 400
        return reply.json()

    assert error(_assertion(other_key)) == {"error": "invalid_grant", "error_description": "invalid assertion"}
    assert error("not-a-jwt") == {"error": "invalid_grant", "error_description": "invalid assertion"}
    assert error(_assertion(key, aud="https://evil.example.com")) == {
        "error": "invalid_grant", "error_description": "audience is invalid"}
    assert error(_assertion(key, exp=int(time.time()) - 10))["error"] == "invalid_grant"
    assert error(_assertion(key, iss="unknown-app")) == {
        "error": "invalid_client_id", "error_description": "client identifier invalid"}
    assert error(_assertion(key, sub="nobody@example.com"))["error"] == "invalid_grant"
    hs256 = jwt.encode({"iss": "jwt-app", "sub": USERNAME, "aud": "https://login.salesforce.com",
                        "exp": int(time.time()) + 60}, "secret-key-long-enough-for-hs256-32b", algorithm="HS256")
    assert error(hs256)["error_description"] == "invalid assertion"


# -- revoke, userinfo, identity, expiry ----------------------------------------------------------


def test_revoke_access_token(client: EmulatorClient) -> None:
    token = client.password_login().json()["access_token"]
    assert client.get(V + "/limits", token=token).status_code == 200
    revoked = requests.post(client.url + "/services/oauth2/revoke", data={"token": token}, verify=client.verify)
    assert revoked.status_code == 200
    after = client.get(V + "/limits", token=token)
    assert after.status_code == 401
    assert after.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    again = requests.post(client.url + "/services/oauth2/revoke", data={"token": token}, verify=client.verify)
    assert again.status_code == 400 and again.json()["error"] == "unsupported_token_type"


def test_revoking_a_refresh_token_stops_refreshes(client: EmulatorClient) -> None:
    token = _refresh_token(client)
    access = _refresh(client, token).json()["access_token"]
    assert requests.get(client.url + "/services/oauth2/revoke", params={"token": token},
                        verify=client.verify).status_code == 200
    assert _refresh(client, token).status_code == 400
    assert client.get(V + "/limits", token=access).status_code == 401  # its sessions go too


def test_userinfo_and_identity_url(client: EmulatorClient) -> None:
    body = client.password_login().json()
    token = body["access_token"]
    info = client.get("/services/oauth2/userinfo", token=token)
    assert info.status_code == 200
    info = info.json()
    assert info["sub"] == body["id"] and info["preferred_username"] == USERNAME
    assert info["user_id"].startswith("005") and info["organization_id"].startswith("00D")
    identity = client.get(body["id"][len(client.url):], token=token)
    assert identity.status_code == 200
    ident = identity.json()
    assert ident["username"] == USERNAME and ident["id"] == body["id"]
    assert ident["urls"]["rest"] == f"{client.url}/services/data/v{{version}}/"
    bad = client.get("/services/oauth2/userinfo", token="00Dbogus!AQxyz")
    assert (bad.status_code, bad.text) == (403, "Bad_OAuth_Token")
    assert client.get(body["id"][len(client.url):], auth=False).status_code == 403


def test_sessions_expire_after_the_configured_lifetime(client: EmulatorClient, configure) -> None:
    configure(lambda s: setattr(s.sessions, "lifetime_seconds", 0.3))
    token = client.password_login().json()["access_token"]
    assert client.get(V + "/limits", token=token).status_code == 200
    time.sleep(0.4)
    expired = client.get(V + "/limits", token=token)
    assert expired.status_code == 401
    assert expired.headers["WWW-Authenticate"] == "Token"
    assert expired.json()[0]["errorCode"] == "INVALID_SESSION_ID"


def test_reauth_counted_in_stats(client: EmulatorClient) -> None:
    client.password_login()
    client.password_login()
    stats = client.stats()
    assert stats["token_grants"] == {"password": 2}
    assert stats["token_grants_total"] == 2
    assert stats["reauths"] == 1
