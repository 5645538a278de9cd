"""Routes of the partner SOAP API: ``POST /services/Soap/u/{version}[/{orgId}]``, one handler that
authenticates the ``SessionHeader``, dispatches on the operation element and wraps the result in
``<{operation}Response>``."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..config import API_VERSIONS
from ..errors import SalesforceApiError
from ..web import LIMIT_INFO, SESSION, ApiSurface, _request_key, register_surface, state_of
from ..wire import REST_HEADERS
from . import ops_data, ops_describe, ops_org, ops_records
from .envelope import Envelope, client_fault, parse_envelope
from .render import envelope, render_soap_error, xml_response

if TYPE_CHECKING:
    from ..sessions import Session
    from ..state import EmulatorState
    from ..store import Store

PREFIX = "/services/Soap/u"
#: request[ENVELOPE]: the parsed request (set by the authenticator, read by the handler).
ENVELOPE: Any = _request_key("soap_envelope", object)
#: Operations that need no SessionHeader.
PUBLIC_OPERATIONS = frozenset({"login"})
_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


@dataclass
class SoapCall:
    """One SOAP call as the operation handlers see it.

    :param request: the HTTP request.
    :param envelope: the parsed envelope.
    :param version: the API version of the URL (``"62.0"``).
    :param session: the caller's session (``None`` for ``login``).
    """

    request: web.Request
    envelope: Envelope
    version: str
    session: Session | None

    @property
    def state(self) -> EmulatorState:
        """The emulator state."""
        return state_of(self.request)

    @property
    def store(self) -> Store:
        """The one store."""
        return self.state.store

    @property
    def user_id(self) -> str | None:
        """The calling user's id."""
        return self.session.user_id if self.session else None


#: operation name -> handler returning the inner XML of ``<{operation}Response>``.
Operation = Callable[[SoapCall], str]
OPERATIONS: dict[str, Operation] = {**ops_data.OPERATIONS, **ops_describe.OPERATIONS, **ops_org.OPERATIONS,
                                    **ops_records.OPERATIONS}


def _version(request: web.Request) -> str:
    version = request.match_info.get("version", "")
    if version not in API_VERSIONS:
        raise SalesforceApiError("UNSUPPORTED_API_VERSION", f"Invalid Api version specified on URL: {version}",
                                 status=500)
    return version


async def soap_session(request: web.Request) -> Session | None:
    """The SOAP surface's authenticator: parses the envelope and checks its ``SessionHeader``
    (``None`` for ``login``, which needs none and so counts no API request).

    :param request: the request.
    :raises SalesforceApiError: ``INVALID_SESSION_ID``, ``UNSUPPORTED_API_VERSION`` or a client fault.
    """
    _version(request)
    parsed = parse_envelope(await request.read())
    request[ENVELOPE] = parsed
    if parsed.operation in PUBLIC_OPERATIONS:
        return None
    token = parsed.header_value("SessionHeader", "sessionId")
    session = state_of(request).session(token) if token else None
    if session is None:
        raise SalesforceApiError("INVALID_SESSION_ID",
                                 "Invalid Session ID found in SessionHeader: Illegal Session", status=500)
    return session


def _limit_header(request: web.Request) -> str:
    found = _USAGE.search(request.get(LIMIT_INFO) or "")
    if not found:
        return ""
    return (f"<LimitInfoHeader><limitInfo><current>{found.group(1)}</current><limit>{found.group(2)}</limit>"
            "<type>API REQUESTS</type></limitInfo></LimitInfoHeader>")


async def dispatch(request: web.Request) -> web.Response:
    """``POST /services/Soap/u/{version}``: run the envelope's operation."""
    version = _version(request)
    parsed: Envelope = request[ENVELOPE]
    handler = OPERATIONS.get(parsed.operation)
    if handler is None:
        raise client_fault(f"No operation available for request {{urn:partner.soap.sforce.com}}{parsed.operation}")
    call = SoapCall(request, parsed, version, request.get(SESSION))
    inner = handler(call)
    body = f"<{parsed.operation}Response>{inner}</{parsed.operation}Response>"
    return xml_response(envelope(body, _limit_header(request)))


def routes(app: web.Application, state: EmulatorState) -> None:
    """Add the SOAP API's routes and register its surface.

    :param app: the emulator application.
    :param state: the emulator state (unused; handlers reach it through the request).
    """
    for path in (PREFIX + r"/{version}", PREFIX + r"/{version}/{org_id}"):
        app.router.add_resource(path).add_route("POST", dispatch)
    register_surface(app, ApiSurface(name="soap", prefix=PREFIX, render_error=render_soap_error,
                                     authenticate=soap_session, counts_api_usage=True, wire=REST_HEADERS))
