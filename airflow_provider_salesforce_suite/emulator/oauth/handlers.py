"""OAuth endpoint handlers: token, revoke, userinfo, identity URL."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

from aiohttp import web

from ..auth import token_of
from ..errors import SalesforceApiError
from ..sessions import Session
from ..state import EmulatorState
from ..web import base_url, json_response, state_of
from . import grants
from .identity import identity_document, userinfo_document
from .render import bad_oauth_token, oauth_error

_GRANTS = {
    grants.PASSWORD: grants.password_grant,
    grants.REFRESH_TOKEN: grants.refresh_token_grant,
    grants.CLIENT_CREDENTIALS: grants.client_credentials_grant,
}


async def _params(request: web.Request) -> dict[str, str]:
    # Salesforce reads the token request from the form body, and also from the query string
    # (older clients send it there); HTTP Basic carries client id/secret for client credentials.
    params: dict[str, str] = dict(request.query)
    if request.can_read_body:
        params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic" and "client_id" not in params:
        try:
            client_id, _, secret = base64.b64decode(value.strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise oauth_error("invalid_client", "invalid client credentials") from None
        params["client_id"], params["client_secret"] = client_id, secret
    return params


def _signature(secret: str, identity_url: str, issued_at: str) -> str:
    digest = hmac.new(secret.encode(), (identity_url + issued_at).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def token_response(request: web.Request, state: EmulatorState, session: Session, grant: grants.Grant) -> dict[str, Any]:
    """The token endpoint's success body.

    :param request: the request (its host becomes ``instance_url``).
    :param state: the emulator state.
    :param session: the new session.
    :param grant: the grant outcome.
    """
    base = base_url(request)
    identity_url = f"{base}/id/{state.org_id}/{session.user_id}"
    issued_at = str(int(session.issued_at * 1000))
    body: dict[str, Any] = {
        "access_token": session.token,
        "instance_url": base,
        "id": identity_url,
        "token_type": "Bearer",
        "issued_at": issued_at,
        "signature": _signature(grant.app.consumer_secret, identity_url, issued_at),
        "scope": grant.app.scope,
    }
    if grant.refresh_token:
        body["refresh_token"] = grant.refresh_token
    return body


async def token(request: web.Request) -> web.Response:
    """``POST /services/oauth2/token``."""
    state = state_of(request)
    params = await _params(request)
    grant_type = params.get("grant_type", "")
    try:
        if grant_type == grants.JWT_BEARER:
            grant = grants.jwt_bearer_grant(state, params, own_audiences=(base_url(request),))
        elif grant_type in _GRANTS:
            grant = _GRANTS[grant_type](state, params)
        else:
            raise oauth_error("unsupported_grant_type", "grant type not supported")
        record = state.user_record(grant.username)
        if record is None:
            raise oauth_error("invalid_grant", "authentication failure")
    except SalesforceApiError:
        state.stats.record_grant_failure(grant_type)
        raise
    session = state.sessions.issue(
        user_id=record["Id"], username=grant.username, consumer_key=grant.app.consumer_key, grant_type=grant_type
    )
    state.stats.record_grant(grant_type, grant.username, grant.app.consumer_key)
    return json_response(token_response(request, state, session, grant))


async def revoke(request: web.Request) -> web.Response:
    """``POST /services/oauth2/revoke`` (or GET) with ``token=`` an access or refresh token."""
    params = await _params(request)
    # Salesforce answers every revoke error 400 with unsupported_token_type or invalid_token
    # (https://developer.salesforce.com/docs/platform/mobile-sdk/guide/oauth-revoking-tokens.html); which
    # of the two an unknown token gets is not documented: unconfirmed (docs/contract-tests.md).
    if not state_of(request).sessions.revoke(params.get("token", "")):
        raise oauth_error("unsupported_token_type", "this token type is not supported")
    return web.Response(status=200)


def _session_user(request: web.Request) -> tuple[EmulatorState, Session, dict[str, Any]]:
    state = state_of(request)
    token = token_of(request) or request.query.get("oauth_token")
    session = state.session(token) if token else None
    record = state.store.find_user(session.username) if session else None
    if session is None or record is None:
        raise bad_oauth_token()
    return state, session, record


async def userinfo(request: web.Request) -> web.Response:
    """``GET /services/oauth2/userinfo`` (OpenID Connect)."""
    state, _, record = _session_user(request)
    return json_response(userinfo_document(base_url(request), state.org_id, record))


async def identity(request: web.Request) -> web.Response:
    """``GET /id/<orgId>/<userId>``: the identity URL (only the session's own user)."""
    state, session, record = _session_user(request)
    if request.match_info["org_id"][:15] != state.org_id[:15] or request.match_info["user_id"][:15] != session.user_id[:15]:
        raise bad_oauth_token()
    return json_response(identity_document(base_url(request), state.org_id, record))
