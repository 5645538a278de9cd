"""Response headers as Salesforce sends them: the one place their values and rules live.

Handlers pick a content type from here and build replies with :func:`reply`, which writes the
``Content-Type`` verbatim (aiohttp's own ``content_type=``/``charset=`` spell it
``application/xml; charset=UTF-8``, which Salesforce never sends). Headers every reply of an API
carries (``Cache-Control``, ``Sforce-Limit-Info``) come from the surface's :class:`WireHeaders`,
added by one ``on_response_prepare`` hook (:func:`add_surface_headers`), errors included.

Where each value comes from (see also docs/emulator.md, "Wire details"):

- ``application/json;charset=UTF-8`` (REST, OAuth) and ``text/xml; charset=utf-8`` (SOAP), and
  ``Cache-Control: no-cache,must-revalidate,max-age=0,no-store,private`` on REST, OAuth and SOAP:
  the raw responses printed in Salesforce's own guides (the User Interface API Developer Guide's
  ``GET /ui-api/object-info/account`` example; the REST API Developer Guide's "Limit Info Header"
  example for the JSON type) and recorded replies of real orgs (a test fixture's nock recording
  of a SOAP ``login``; logged REST and OAuth token replies, 401s included).
- Bulk API 1.0 ``application/xml``, ``application/json`` and ``text/csv`` with no parameters:
  the PyPI ``salesforce-bulk`` client (heroku/salesforce-bulk) compares the header for equality
  with exactly these values and runs its integration tests against real orgs.
- ``Sforce-Limit-Info`` on REST: the REST API Developer Guide, "Limit Info Header"
  (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm);
  SOAP carries the usage in its envelope's ``LimitInfoHeader`` instead (SOAP API Developer Guide,
  "LimitInfoHeader").
- ``Location`` of a created record (``/services/data/vXX.X/sobjects/Account/001...``): the
  composite resources document it in their ``httpHeaders``; a top-level create was observed to
  send the same header (not documented for it: unconfirmed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

#: REST, OAuth, Analytics, Bulk 2.0 job info: JSON with this exact spelling (no space).
REST_JSON = "application/json;charset=UTF-8"
#: SOAP API envelopes and faults.
SOAP_XML = "text/xml; charset=utf-8"
#: Bulk API 1.0 bodies: no parameters at all (clients compare for equality).
BULK_XML = "application/xml"
BULK_JSON = "application/json"
CSV = "text/csv"
#: Bulk API 1.0 body formats by a job's ``contentType``.
BULK_V1_TYPES = {"CSV": CSV, "XML": BULK_XML, "JSON": BULK_JSON}

#: What the Salesforce app servers send on every API reply so nothing caches it.
NO_CACHE = "no-cache,must-revalidate,max-age=0,no-store,private"


@dataclass(frozen=True)
class WireHeaders:
    """Headers every reply of one API surface carries (success and error alike).

    :param cache_control: the ``Cache-Control`` value (``None``: none sent).
    :param limit_info: whether ``Sforce-Limit-Info`` is sent (for surfaces that count API usage).
    """

    cache_control: str | None = None
    limit_info: bool = False


#: REST API (and what lives under it: Bulk 2.0, Analytics, Tooling, Apex REST) and SOAP:
#: ``Cache-Control`` confirmed (see the module doc); ``Sforce-Limit-Info`` confirmed for REST. SOAP
#: documents its usage in the envelope's ``LimitInfoHeader``; that it also sends the HTTP header is
#: unconfirmed (kept: hooks read the usage from it).
REST_HEADERS = WireHeaders(cache_control=NO_CACHE, limit_info=True)
#: OAuth token endpoints: ``Cache-Control`` confirmed; they are not API calls (no usage header).
OAUTH_HEADERS = WireHeaders(cache_control=NO_CACHE)
#: Bulk API 1.0 and Pardot: ``Sforce-Limit-Info`` kept as the REST API sends it (unconfirmed for
#: both); no ``Cache-Control`` (unconfirmed).
COUNTED_HEADERS = WireHeaders(limit_info=True)
#: Surfaces whose standing headers are not confirmed (identity, CometD, Desk, the control API).
PLAIN_HEADERS = WireHeaders()


def reply(body: bytes | str, content_type: str, status: int = 200,
          headers: dict[str, str] | None = None) -> web.Response:
    """A reply whose ``Content-Type`` is exactly ``content_type``.

    :param body: the body (text is sent as UTF-8).
    :param content_type: one of this module's content types.
    :param status: HTTP status.
    :param headers: extra headers (``Location`` ...).
    """
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return web.Response(body=raw, status=status, headers={"Content-Type": content_type, **(headers or {})})


def json_reply(data: Any, content_type: str = REST_JSON, status: int = 200,
               headers: dict[str, str] | None = None) -> web.Response:
    """``data`` as JSON, with Salesforce's exact ``Content-Type`` for the API.

    :param data: the body.
    :param content_type: :data:`REST_JSON` (default) or :data:`BULK_JSON`.
    :param status: HTTP status.
    :param headers: extra headers.
    """
    return reply(json.dumps(data), content_type, status, headers)


def record_location(collection_path: str, record_id: str) -> str:
    """The ``Location`` of a record created by a POST to ``collection_path``.

    :param collection_path: the request path (``/services/data/v62.0/sobjects/Account/``).
    :param record_id: the new record's id.
    """
    return f"{collection_path.rstrip('/')}/{record_id}"


def add_surface_headers(response: web.StreamResponse, wire: WireHeaders, limit_info: str | None) -> None:
    """Add a surface's standing headers to a reply about to be sent (handlers' own values win).

    :param response: the reply.
    :param wire: the surface's header rules.
    :param limit_info: the ``Sforce-Limit-Info`` value counted for this request, if any.
    """
    if wire.cache_control and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = wire.cache_control
    if wire.limit_info and limit_info:
        response.headers["Sforce-Limit-Info"] = limit_info
