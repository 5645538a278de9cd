"""Partner SOAP wire format: response envelopes, sObjects, QueryResults and faults.

Responses use Salesforce's layout: the partner namespace as the default namespace (clients such
as simple-salesforce look ``sessionId`` up without a prefix), sObject fields in
``urn:sobject.partner.soap.sforce.com`` (``sf:``), ``xsi:nil="true"`` for nulls and ``xsi:type``
on field values.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from ...core.safexml import xml_text
from ..errors import SalesforceApiError
from ..metadata.model import ObjectDef
from ..wire import SOAP_XML, reply

SOAPENV = "http://schemas.xmlsoap.org/soap/envelope/"
PARTNER = "urn:partner.soap.sforce.com"
SOBJECT = "urn:sobject.partner.soap.sforce.com"
FAULT = "urn:fault.partner.soap.sforce.com"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSD = "http://www.w3.org/2001/XMLSchema"

#: Field types -> the xsi:type Salesforce writes on values.
_XSD_TYPES = {"boolean": "xsd:boolean", "double": "xsd:double", "currency": "xsd:double", "percent": "xsd:double",
              "int": "xsd:int", "long": "xsd:long", "date": "xsd:date", "datetime": "xsd:dateTime",
              "time": "xsd:time", "base64": "xsd:base64Binary"}
#: Error codes -> the typed fault in ``detail`` (anything else is an UnexpectedErrorFault).
_FAULT_TYPES = {"INVALID_SESSION_ID": "InvalidSessionIdFault", "MALFORMED_QUERY": "MalformedQueryFault",
                "INVALID_FIELD": "InvalidFieldFault", "INVALID_TYPE": "InvalidSObjectFault",
                "INVALID_LOGIN": "LoginFault", "LOGIN_MUST_USE_SECURITY_TOKEN": "LoginFault",
                "INVALID_ID_FIELD": "InvalidIdFault", "MALFORMED_ID": "InvalidIdFault",
                "INVALID_QUERY_LOCATOR": "InvalidQueryLocatorFault", "MALFORMED_SEARCH": "MalformedSearchFault",
                "INVALID_NEW_PASSWORD": "InvalidNewPasswordFault"}
#: Faults that extend ApiQueryFault and so carry row and column.
_QUERY_FAULTS = frozenset({"MalformedQueryFault", "InvalidFieldFault", "InvalidSObjectFault", "MalformedSearchFault"})
_POSITION = re.compile(r"ERROR at Row:(\d+):Column:(\d+)")
#: error.extra key marking a SOAP-level client error (bad XML, unknown operation): soapenv:Client.
CLIENT_FAULT = "soap_client_fault"


def envelope(body: str, header: str = "") -> str:
    """A complete response envelope around ``body`` (and an optional SOAP header).

    :param body: the body's inner XML.
    :param header: the header's inner XML (``LimitInfoHeader``).
    """
    head = f"<soapenv:Header>{header}</soapenv:Header>" if header else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{SOAPENV}" '
            f'xmlns="{PARTNER}" xmlns:xsd="{XSD}" xmlns:xsi="{XSI}" xmlns:sf="{SOBJECT}">'
            f"{head}<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>")


def xml_response(text: str, status: int = 200) -> web.Response:
    """``text/xml; charset=utf-8`` as Salesforce sends it.

    :param text: the document.
    :param status: HTTP status.
    """
    return reply(text, SOAP_XML, status)


def spell(value: Any) -> str:
    """A Python value as XML text (``true``/``false`` for booleans).

    :param value: the value.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    return str(value)


def soap_datetime(text: str) -> str:
    """A REST date-time (``...000+0000``) in SOAP's xsd:dateTime spelling (``...000Z``).

    :param text: the REST value.
    """
    return text[:-5] + "Z" if text.endswith("+0000") else text


def element(tag: str, value: Any) -> str:
    """Plain (untyped) element(s) for a result structure: dicts nest, lists repeat, ``None`` is nil.

    :param tag: element name (with its prefix, if any).
    :param value: the value.
    """
    if isinstance(value, list):
        return "".join(element(tag, item) for item in value)
    if value is None:
        return f'<{tag} xsi:nil="true"/>'
    if isinstance(value, dict):
        return f"<{tag}>{''.join(element(k, v) for k, v in value.items())}</{tag}>"
    return f"<{tag}>{xml_text(spell(value))}</{tag}>"


def typed_value(tag: str, value: Any, field_type: str | None) -> str:
    """One sObject field value with its ``xsi:type`` (``xsi:nil`` when null).

    :param tag: element name (``sf:Name``).
    :param value: the API value.
    :param field_type: the field's describe type (``None``: inferred from the value).
    """
    if value is None:
        return f'<{tag} xsi:nil="true"/>'
    if field_type is None:
        field_type = ("boolean" if isinstance(value, bool) else "int" if isinstance(value, int)
                      else "double" if isinstance(value, float) else "string")
    xsd = _XSD_TYPES.get(field_type, "xsd:string")
    if xsd == "xsd:dateTime":
        value = soap_datetime(str(value))
    return f'<{tag} xsi:type="{xsd}">{xml_text(spell(value))}</{tag}>'


def sobject(tag: str, record: dict[str, Any] | None, obj: ObjectDef | None, metadata: Any) -> str:
    """A REST-shaped record (``attributes`` + fields) as a partner ``sObject``.

    Salesforce writes ``sf:type`` then ``sf:Id`` (nil when the Id was not selected) and then
    every selected field, the Id again included; parents nest as sObjects, child subqueries as
    QueryResults. A nested parent gets a nil ``sf:Id`` unless its Id was selected, as documented in
    https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_partner_queries.htm.

    :param tag: element name (``records``, ``sf:Account``).
    :param record: the record (``None``: a nil element).
    :param obj: the record's object definition (``None``: aggregate results, types inferred).
    :param metadata: the store's metadata, to type nested records.
    """
    if record is None:
        return f'<{tag} xsi:nil="true"/>'
    sobject_type = record.get("attributes", {}).get("type") or (obj.name if obj else "")
    parts = [f"<sf:type>{xml_text(sobject_type)}</sf:type>", typed_value("sf:Id", record.get("Id"), "id")
             if record.get("Id") else '<sf:Id xsi:nil="true"/>']
    for key, value in record.items():
        if key == "attributes":
            continue
        if isinstance(value, dict) and "records" in value:
            child = metadata.get(_child_type(obj, key) or "") if obj else None
            parts.append(query_result(f"sf:{key}", value, child, metadata))
        elif isinstance(value, dict):
            parent = metadata.get(value.get("attributes", {}).get("type", "")) if metadata else None
            parts.append(sobject(f"sf:{key}", value, parent, metadata))
        else:
            fdef = obj.field(key) if obj else None
            parts.append(typed_value(f"sf:{key}", value, fdef.type if fdef else None))
    return f'<{tag} xsi:type="sf:sObject">{"".join(parts)}</{tag}>'


def _child_type(obj: ObjectDef, relationship: str) -> str | None:
    for rel in obj.child_relationships:
        if rel.relationship_name and rel.relationship_name.lower() == relationship.lower():
            return rel.child_sobject
    return None


def query_result(tag: str, result: dict[str, Any] | None, obj: ObjectDef | None, metadata: Any,
                 locator: str | None = None) -> str:
    """A REST query page as a ``QueryResult`` (done, queryLocator, records, size).

    :param tag: element name (``result`` or ``sf:Contacts``).
    :param result: the REST page (``None``: nil, an empty child subquery).
    :param obj: the queried object.
    :param metadata: the store's metadata.
    :param locator: the queryLocator of the next page.
    """
    if result is None:
        return f'<{tag} xsi:nil="true"/>'
    records = "".join(sobject("records", r, obj, metadata) for r in result.get("records", []))
    loc = f"<queryLocator>{xml_text(locator)}</queryLocator>" if locator else '<queryLocator xsi:nil="true"/>'
    return (f'<{tag} xsi:type="QueryResult"><done>{spell(bool(result.get("done", True)))}</done>{loc}'
            f"{records}<size>{int(result.get('totalSize', 0))}</size></{tag}>")


def error_xml(error: SalesforceApiError, tag: str = "errors") -> str:
    """One per-record ``Error`` (fields, message, statusCode).

    :param error: the error.
    :param tag: element name.
    """
    fields = "".join(f"<fields>{xml_text(f)}</fields>" for f in error.fields)
    return f"<{tag}>{fields}<message>{xml_text(error.message)}</message><statusCode>{xml_text(error.error_code)}</statusCode></{tag}>"


def fault_xml(error: SalesforceApiError) -> str:
    """The whole fault envelope for ``error``.

    :param error: the error.
    """
    if error.extra.get(CLIENT_FAULT):
        inner = f"<faultcode>soapenv:Client</faultcode><faultstring>{xml_text(error.message)}</faultstring>"
    else:
        code = error.error_code
        kind = _FAULT_TYPES.get(code, "UnexpectedErrorFault")
        detail = f"<sf:exceptionCode>{xml_text(code)}</sf:exceptionCode><sf:exceptionMessage>{xml_text(error.message)}</sf:exceptionMessage>"
        if kind in _QUERY_FAULTS:
            found = _POSITION.search(error.message)
            row, column = (found.group(1), found.group(2)) if found else ("-1", "-1")
            detail += f"<sf:row>{row}</sf:row><sf:column>{column}</sf:column>"
        inner = (f"<faultcode>sf:{xml_text(code)}</faultcode><faultstring>{xml_text(code)}: {xml_text(error.message)}"
                 f'</faultstring><detail><sf:{kind} xsi:type="sf:{kind}">{detail}</sf:{kind}></detail>')
    return (f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{SOAPENV}" '
            f'xmlns:sf="{FAULT}" xmlns:xsi="{XSI}"><soapenv:Body><soapenv:Fault>{inner}</soapenv:Fault>'
            "</soapenv:Body></soapenv:Envelope>")


def render_soap_error(request: web.Request, error: SalesforceApiError) -> web.Response:
    """The SOAP surface's error renderer: a ``soapenv:Fault``, HTTP 500 as Salesforce answers
    faults (404/405 for unknown URLs and injected 5xx/429 statuses keep theirs).

    :param request: the request.
    :param error: the error.
    """
    status = error.status if error.status >= 500 or error.status in (404, 405, 429) else 500
    return xml_response(fault_xml(error), status=status)
