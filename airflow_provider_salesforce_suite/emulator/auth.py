"""Session authentication shared by the APIs that take ``Authorization: Bearer <token>``."""

from __future__ import annotations

from aiohttp import web

from .errors import SalesforceApiError
from .sessions import Session
from .web import state_of


def invalid_session() -> SalesforceApiError:
    """Salesforce's answer to a missing, unknown, revoked or expired session."""
    return SalesforceApiError("INVALID_SESSION_ID", "Session expired or invalid", status=401)


def token_of(request: web.Request) -> str | None:
    """The access token of a request: ``Authorization: Bearer <t>`` or the older ``OAuth <t>``.

    :param request: the request.
    """
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() not in ("bearer", "oauth"):
        return None
    return token.strip() or None


async def bearer_session(request: web.Request) -> Session:
    """The live session of a request (the REST surface's authenticator).

    :param request: the request.
    :raises SalesforceApiError: ``INVALID_SESSION_ID`` (401).
    """
    token = token_of(request)
    session = state_of(request).session(token) if token else None
    if session is None:
        raise invalid_session()
    return session
