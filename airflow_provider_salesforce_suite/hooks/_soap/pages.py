"""``query``/``queryAll``/``queryMore`` pages read straight from the response XML.

zeep builds an object per record before :class:`~.records.RecordReader` converts it; for query
pages that is most of the time spent. This reader walks the ``QueryResult`` with lxml (parsed with
``core/safexml.py``'s settings) and hands each record's fields to the same ``RecordReader``, so the
dicts are the ones the zeep path makes. It reads only what it can vouch for: a 200 response whose
``QueryResult`` and top-level ``sObject`` records follow the WSDL's sequences. Anything else (a
fault, an HTTP error, malformed XML, an unexpected element) returns None and zeep reads the same
response, raising the same errors as before. :func:`response_element` (the safe parse and the
envelope walk) is shared with ``saves.py``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from airflow_provider_salesforce_suite.core.safexml import declares_dtd, lxml_parser
from airflow_provider_salesforce_suite.hooks._soap.client import PARTNER_NS, SOBJECT_NS
from airflow_provider_salesforce_suite.hooks._soap.records import XSI_NS, RecordReader

SOAPENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
_NIL = f"{{{XSI_NS}}}nil"
_XSI_TYPE = f"{{{XSI_NS}}}type"
_BODY = f"{{{SOAPENV_NS}}}Body"
_ENVELOPE = f"{{{SOAPENV_NS}}}Envelope"
_RESULT = f"{{{PARTNER_NS}}}result"
_DONE, _LOCATOR, _RECORDS, _SIZE = (f"{{{PARTNER_NS}}}{name}" for name in ("done", "queryLocator", "records", "size"))
_TYPE, _TO_NULL, _ID = (f"{{{SOBJECT_NS}}}{name}" for name in ("type", "fieldsToNull", "Id"))
_SOBJECT_PREFIX = f"{{{SOBJECT_NS}}}"
_FIELD_TAGS: set[str] = set()  # field tags already seen in the sObject namespace
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


class QueryPage(NamedTuple):
    """One ``QueryResult``: the records as record dicts, ``done``, ``queryLocator`` and ``size``."""

    records: list[dict[str, Any]]
    done: bool | None
    query_locator: str | None
    size: int | None

    def as_dict(self) -> dict[str, Any]:
        """The page as :meth:`SalesforceSoapHook.call` returns a ``QueryResult``."""
        return {"done": self.done, "queryLocator": self.query_locator, "records": self.records, "size": self.size}


class UnsafeXml(Exception):
    """The response declares a DTD or entities: refused before parsing."""


class Unsupported(Exception):
    """A shape this reader does not vouch for: zeep reads the response instead."""


def read_query_page(status: int, content: bytes, operation: str, reader: RecordReader) -> QueryPage | None:
    """The page in a ``{operation}Response``, or None when zeep should read the response.

    :param status: HTTP status of the response.
    :param content: the response body.
    :param operation: ``query``, ``queryAll`` or ``queryMore``.
    :param reader: types and converts the records' fields.
    :raises UnsafeXml: the response declares a DTD or entities.
    """
    try:
        return _page(response_element(status, content, operation), reader)
    except Unsupported:
        return None


def response_element(status: int, content: bytes, operation: str) -> Any:
    """The ``{operation}Response`` element of a 200 response (parsed with ``core/safexml.py``'s settings).

    :param status: HTTP status of the response.
    :param content: the response body.
    :param operation: the partner operation.
    :raises UnsafeXml: the response declares a DTD or entities.
    :raises Unsupported: anything else (a fault, an HTTP error, malformed XML): zeep reads it.
    """
    if status != 200 or not content:
        raise Unsupported
    if declares_dtd(content):
        raise UnsafeXml
    from lxml import etree

    try:
        root = etree.fromstring(content, lxml_parser())
    except etree.XMLSyntaxError:
        raise Unsupported from None
    if root.tag != _ENVELOPE:
        raise Unsupported
    body = next((child for child in root if child.tag == _BODY), None)
    if body is None:
        raise Unsupported
    return only_child(body, f"{{{PARTNER_NS}}}{operation}Response")  # a Fault is not


def only_child(element: Any, tag: str) -> Any:
    children = [child for child in element if isinstance(child.tag, str)]
    if len(children) != 1 or children[0].tag != tag:
        raise Unsupported
    return children[0]


def _page(response: Any, reader: RecordReader) -> QueryPage:
    result = only_child(response, _RESULT)
    kind = result.get(_XSI_TYPE)
    if kind is not None and kind.rpartition(":")[2] != "QueryResult":
        raise Unsupported
    done = locator = size = None
    records: list[dict[str, Any]] = []
    step = 0  # position in the QueryResult sequence: done, queryLocator, records*, size
    for child in result:
        tag = child.tag
        if tag == _DONE and step < 1:
            done, step = boolean(child), 1
        elif tag == _LOCATOR and step < 2:
            if child.get(_NIL) != "true" and not child.text:
                raise Unsupported
            locator, step = (None if child.get(_NIL) == "true" else child.text), 2
        elif tag == _RECORDS and step < 4:
            step = 3
            records.append(_record(child, reader))
        elif tag == _SIZE and step < 4:
            size, step = _integer(child), 4
        else:  # out of sequence, unknown, a comment or processing instruction
            raise Unsupported
    return QueryPage(records, done, locator, size)


def boolean(element: Any) -> bool:
    value = _BOOLEANS.get(element.text or "")  # zeep's reading: exactly these spellings
    if value is None or len(element):
        raise Unsupported
    return value


def _integer(element: Any) -> int:
    try:
        return int(element.text)
    except (TypeError, ValueError):
        raise Unsupported from None


def _record(element: Any, reader: RecordReader) -> dict[str, Any]:
    """A top-level record, read as zeep reads the ``sObject`` sequence (type, fieldsToNull*, Id?, any*)."""
    kind = element.get(_XSI_TYPE)
    if element.get(_NIL) == "true" or kind is not None and kind.rpartition(":")[2] != "sObject":
        raise Unsupported  # a nil record (zeep makes it {"type": None}) or another type: zeep's to read
    children = list(element)
    first = children[0] if children else None
    if first is None or first.tag != _TYPE or not first.text or len(first):
        raise Unsupported
    record_id = None
    at, count = 1, len(children)
    while at < count and children[at].tag == _TO_NULL:
        at += 1
    if at < count and children[at].tag == _ID:
        if len(children[at]):
            raise Unsupported
        record_id = None if children[at].get(_NIL) == "true" else children[at].text
        at += 1
    fields = children[at:]
    for child in fields:  # sObject fields only (no comments or processing instructions either)
        if child.tag not in _FIELD_TAGS:
            if not isinstance(child.tag, str) or not child.tag.startswith(_SOBJECT_PREFIX):
                raise Unsupported
            if len(_FIELD_TAGS) < 100_000:
                _FIELD_TAGS.add(child.tag)
    return reader.build(first.text, record_id, fields)
