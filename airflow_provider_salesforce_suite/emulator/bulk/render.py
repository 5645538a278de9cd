"""Bulk API 1.0 wire format: ``<error>``/``jobInfo``/``batchInfo`` as XML or JSON.

Errors are ``<error xmlns=...><exceptionCode/><exceptionMessage/></error>`` (or the JSON
``{"exceptionCode","exceptionMessage"}`` for JSON jobs); an invalid session is a 400 here.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ...core.safexml import xml_text
from ..errors import SalesforceApiError
from ..web import _request_key

NS = "http://www.force.com/2009/06/asyncapi/dataload"
XML_CONTENT_TYPE = "application/xml"
JSON_CONTENT_TYPE = "application/json"
#: request[WANTS_JSON]: the job is a JSON job (set by the handlers once the job is known).
WANTS_JSON: Any = _request_key("bulk_v1_json", bool)

#: REST-style codes (middlewares, faults) -> Bulk 1.0 exception codes.
_CODES = {
    "INVALID_SESSION_ID": "InvalidSessionId",
    "NOT_FOUND": "InvalidUrl",
    "METHOD_NOT_ALLOWED": "InvalidUrl",
    "REQUEST_LIMIT_EXCEEDED": "ExceededQuota",
    "UNKNOWN_EXCEPTION": "ClientInputError",
    "REQUEST_ENTITY_TOO_LARGE": "InvalidBatch",
}


def wants_json(request: web.Request) -> bool:
    """Whether the reply should be JSON (a JSON job, or a JSON request/Accept header).

    :param request: the request.
    """
    if WANTS_JSON in request:
        return bool(request[WANTS_JSON])
    kinds = (request.headers.get("Content-Type", "") + request.headers.get("Accept", "")).lower()
    return "json" in kinds


def render_v1_error(request: web.Request, error: SalesforceApiError) -> web.Response:
    """Render ``error`` as Bulk API 1.0 does.

    :param request: the request.
    :param error: the error.
    """
    code = _CODES.get(error.error_code, error.error_code)
    status = 400 if code == "InvalidSessionId" else error.status
    if code == "InvalidUrl":
        status = 404 if error.status == 404 else 405
    if wants_json(request):
        return web.Response(body=json.dumps({"exceptionCode": code, "exceptionMessage": error.message}),
                            status=status, content_type=JSON_CONTENT_TYPE, charset="UTF-8")
    body = (f'<?xml version="1.0" encoding="UTF-8"?><error xmlns="{NS}"><exceptionCode>{xml_text(code)}'
            f"</exceptionCode><exceptionMessage>{xml_text(error.message)}</exceptionMessage></error>")
    return web.Response(text=body, status=status, content_type=XML_CONTENT_TYPE, charset="UTF-8")


def v1_error(code: str, message: str, status: int = 400) -> SalesforceApiError:
    """A Bulk 1.0 error (``InvalidJob``, ``InvalidBatch``, ``InvalidXML`` ...).

    :param code: the exception code.
    :param message: the message.
    :param status: HTTP status.
    """
    return SalesforceApiError(code, message, status=status)


def to_xml(root: str, fields: dict[str, Any]) -> str:
    """``<root xmlns=NS><k>v</k>...</root>`` with Salesforce's value spelling.

    :param root: root element name.
    :param fields: ordered fields (``None`` values are left out).
    """
    inner = "".join(f"<{k}>{xml_text(_spell(v))}</{k}>" for k, v in fields.items() if v is not None)
    return f'<?xml version="1.0" encoding="UTF-8"?><{root} xmlns="{NS}">{inner}</{root}>'


def _spell(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    return str(value)


def reply(request: web.Request, root: str, fields: dict[str, Any], status: int = 200) -> web.Response:
    """A jobInfo/batchInfo reply in the request's format.

    :param request: the request.
    :param root: XML root element name.
    :param fields: the info's fields.
    :param status: HTTP status.
    """
    if wants_json(request):
        return web.Response(body=json.dumps({k: v for k, v in fields.items() if v is not None}), status=status,
                            content_type=JSON_CONTENT_TYPE, charset="UTF-8")
    return web.Response(text=to_xml(root, fields), status=status, content_type=XML_CONTENT_TYPE, charset="UTF-8")
