"""Bulk API 1.0 wire format: ``<error>``/``jobInfo``/``batchInfo``/``batchInfoList`` as XML or JSON.

Which format answers is Salesforce's rule ("Content Type Header", Bulk API Developer Guide,
https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/async_api_headers_content_type.htm):
once the job is known, its ``contentType`` decides (JSON jobs answer JSON, CSV and XML jobs XML);
before that (creating a job, an unknown job id) the request's ``Content-Type`` does, XML by default.
Content types carry no parameters (:mod:`..wire`). Errors are ``<error xmlns=...><exceptionCode/>
<exceptionMessage/></error>`` (or the JSON ``{"exceptionCode","exceptionMessage"}``); an invalid
session is a 400 here.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ...core.safexml import xml_text
from ..errors import SalesforceApiError
from ..web import _request_key
from ..wire import BULK_JSON, BULK_XML
from ..wire import reply as wire_reply

NS = "http://www.force.com/2009/06/asyncapi/dataload"
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
    """Whether the reply should be JSON: the job's format once known, else the request's
    ``Content-Type`` (``Accept`` when it has none).

    :param request: the request.
    """
    if WANTS_JSON in request:
        return bool(request[WANTS_JSON])
    return "json" in (request.headers.get("Content-Type") or request.headers.get("Accept", "")).lower()


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
        return wire_reply(json.dumps({"exceptionCode": code, "exceptionMessage": error.message}), BULK_JSON, status)
    body = (f'<?xml version="1.0" encoding="UTF-8"?><error xmlns="{NS}"><exceptionCode>{xml_text(code)}'
            f"</exceptionCode><exceptionMessage>{xml_text(error.message)}</exceptionMessage></error>")
    return wire_reply(body, BULK_XML, status)


def v1_error(code: str, message: str, status: int = 400) -> SalesforceApiError:
    """A Bulk 1.0 error (``InvalidJob``, ``InvalidBatch``, ``InvalidXML`` ...).

    :param code: the exception code.
    :param message: the message.
    :param status: HTTP status.
    """
    return SalesforceApiError(code, message, status=status)


def _elements(fields: dict[str, Any]) -> str:
    return "".join(f"<{k}>{xml_text(_spell(v))}</{k}>" for k, v in fields.items() if v is not None)


def to_xml(root: str, fields: dict[str, Any]) -> str:
    """``<root xmlns=NS><k>v</k>...</root>`` with Salesforce's value spelling.

    :param root: root element name.
    :param fields: ordered fields (``None`` values are left out).
    """
    return f'<?xml version="1.0" encoding="UTF-8"?><{root} xmlns="{NS}">{_elements(fields)}</{root}>'


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
        return wire_reply(json.dumps({k: v for k, v in fields.items() if v is not None}), BULK_JSON, status)
    return wire_reply(to_xml(root, fields), BULK_XML, status)


def reply_list(request: web.Request, infos: list[dict[str, Any]]) -> web.Response:
    """A ``batchInfoList`` in the job's format (JSON: ``{"batchInfo": [...]}``).

    :param request: the request.
    :param infos: the batches' infos, in order.
    """
    infos = [{k: v for k, v in info.items() if v is not None} for info in infos]
    if wants_json(request):
        return wire_reply(json.dumps({"batchInfo": infos}), BULK_JSON)
    inner = "".join(f"<batchInfo>{_elements(info)}</batchInfo>" for info in infos)
    return wire_reply(f'<?xml version="1.0" encoding="UTF-8"?><batchInfoList xmlns="{NS}">{inner}</batchInfoList>',
                      BULK_XML)
