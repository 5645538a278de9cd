"""The token endpoint's grant types; each checks credentials and returns who gets a session.

Error bodies and their wording are Salesforce's (``authentication failure``,
``client identifier invalid`` ...), so clients' error handling can be tested against them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..config import ConnectedAppConfig
from ..errors import SalesforceApiError
from ..state import EmulatorState
from .render import oauth_error

PASSWORD = "password"
REFRESH_TOKEN = "refresh_token"
CLIENT_CREDENTIALS = "client_credentials"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"

#: Audiences Salesforce accepts in a JWT bearer assertion (plus the emulator's own URL).
LOGIN_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")


@dataclass
class Grant:
    """The outcome of a successful grant.

    :param username: who the session is for.
    :param app: the connected app.
    :param refresh_token: a refresh token to return (refresh grant with rotation only).
    """

    username: str
    app: ConnectedAppConfig
    refresh_token: str | None = None


def _client_id_error() -> SalesforceApiError:
    return oauth_error("invalid_client_id", "client identifier invalid")


def _client_secret_error() -> SalesforceApiError:
    return oauth_error("invalid_client", "invalid client credentials")


def _app(state: EmulatorState, client_id: str | None) -> ConnectedAppConfig:
    app = state.connected_app(client_id)
    if app is None:
        raise _client_id_error()
    return app


def password_grant(state: EmulatorState, form: dict[str, str]) -> Grant:
    """``grant_type=password``: username + password (+ security token), client id and secret.

    :param state: the emulator state.
    :param form: the token request's parameters.
    """
    app = _app(state, form.get("client_id"))
    if form.get("client_secret") != app.consumer_secret:
        raise _client_secret_error()
    user = state.user(form.get("username", ""))
    if user is None or not user.accepts(form.get("password", "")) or state.user_record(user.username) is None:
        raise oauth_error("invalid_grant", "authentication failure")
    return Grant(user.username, app)


def refresh_token_grant(state: EmulatorState, form: dict[str, str]) -> Grant:
    """``grant_type=refresh_token``; rotates the refresh token when configured.

    :param state: the emulator state.
    :param form: the token request's parameters.
    """
    app = _app(state, form.get("client_id"))
    secret = form.get("client_secret")
    if secret is not None and secret != app.consumer_secret:
        raise _client_secret_error()
    refresh = state.sessions.refresh_token(form.get("refresh_token", ""))
    if refresh is None or refresh.consumer_key != app.consumer_key:
        raise oauth_error("invalid_grant", "expired access/refresh token")
    if state.user(refresh.username) is None:
        raise oauth_error("invalid_grant", "inactive user")
    new_token = None
    if state.config.refresh_token_rotation:
        rotated = state.sessions.rotate(refresh.token)
        if rotated is None:  # lost a race with a concurrent refresh using the same token
            raise oauth_error("invalid_grant", "expired access/refresh token")
        new_token = rotated.token
    return Grant(refresh.username, app, refresh_token=new_token)


def client_credentials_grant(state: EmulatorState, form: dict[str, str]) -> Grant:
    """``grant_type=client_credentials``: runs as the connected app's configured user.

    :param state: the emulator state.
    :param form: the token request's parameters (client id/secret may come from Basic auth).
    """
    app = _app(state, form.get("client_id"))
    if form.get("client_secret") != app.consumer_secret:
        raise _client_secret_error()
    if not app.run_as or state.user(app.run_as) is None:
        raise oauth_error("invalid_grant", "no client credentials user enabled")
    return Grant(state.user(app.run_as).username, app)  # type: ignore[union-attr]


def _public_keys(app: ConnectedAppConfig) -> list:
    keys = []
    for path in app.certificates:
        data = Path(path).expanduser().read_bytes()
        try:
            keys.append(x509.load_pem_x509_certificate(data).public_key())
        except ValueError:
            keys.append(serialization.load_pem_public_key(data))  # a bare public key works too
    return keys


def jwt_bearer_grant(state: EmulatorState, form: dict[str, str], own_audiences: tuple[str, ...]) -> Grant:
    """``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``: an RS256 assertion
    (``iss`` = consumer key, ``sub`` = username, ``aud`` = login URL, ``exp`` in the future)
    verified against the connected app's certificates.

    :param state: the emulator state.
    :param form: the token request's parameters.
    :param own_audiences: the emulator's own base URL(s), accepted as ``aud`` too.
    """
    assertion = form.get("assertion", "")
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise oauth_error("invalid_grant", "invalid assertion") from None
    app = _app(state, claims.get("iss"))
    if header.get("alg") != "RS256":
        raise oauth_error("invalid_grant", "invalid assertion")
    verified = False
    for key in _public_keys(app):
        try:
            jwt.decode(assertion, key=key, algorithms=["RS256"],
                       options={"verify_aud": False, "verify_exp": False, "verify_iat": False,
                                "verify_nbf": False})
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError:
            break
        verified = True
        break
    if not verified:
        raise oauth_error("invalid_grant", "invalid assertion")
    audiences = claims.get("aud")
    audiences = [audiences] if isinstance(audiences, str) else list(audiences or [])
    accepted = {a.rstrip("/") for a in (*LOGIN_AUDIENCES, *own_audiences)}
    if not any(isinstance(a, str) and a.rstrip("/") in accepted for a in audiences):
        raise oauth_error("invalid_grant", "audience is invalid")
    exp = claims.get("exp")
    # An expired assertion: the OAuth error pages document only the JSON shape; this wording is what
    # Salesforce answers in reports (salesforce.stackexchange.com/questions/282513): unconfirmed.
    if not isinstance(exp, (int, float)) or exp <= time.time():
        raise oauth_error("invalid_grant", "expired authorization code")
    user = state.user(str(claims.get("sub", "")))
    if user is None or state.user_record(user.username) is None:
        raise oauth_error("invalid_grant", "user hasn't approved this consumer")
    return Grant(user.username, app)
