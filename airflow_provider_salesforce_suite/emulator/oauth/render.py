"""OAuth's error wire format ``{"error","error_description"}`` and the identity service's."""

from __future__ import annotations

from aiohttp import web

from ..errors import SalesforceApiError
from ..web import json_response


def oauth_error(error: str, description: str, status: int = 400) -> SalesforceApiError:
    """An OAuth error (``error_code`` is OAuth's ``error``, e.g. ``invalid_grant``).

    :param error: OAuth ``error``.
    :param description: OAuth ``error_description``.
    :param status: HTTP status (Salesforce answers token errors with 400).
    """
    return SalesforceApiError(error, description, status=status)


def render_oauth_error(request: web.Request, error: SalesforceApiError) -> web.Response:
    """Render as the token endpoint does.

    :param request: the request.
    :param error: the error.
    """
    return json_response({"error": error.error_code, "error_description": error.message}, status=error.status)


def render_identity_error(request: web.Request, error: SalesforceApiError) -> web.Response:
    """Render as the identity service does: a bare text body (``Bad_OAuth_Token``).

    :param request: the request.
    :param error: the error.
    """
    return web.Response(text=error.message, status=error.status, content_type="text/plain", charset="UTF-8")


def bad_oauth_token() -> SalesforceApiError:
    """The identity service's answer to a missing, unknown or expired token."""
    return SalesforceApiError("Bad_OAuth_Token", "Bad_OAuth_Token", status=403)
