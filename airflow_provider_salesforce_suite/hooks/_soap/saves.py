"""``create``/``update``/``upsert`` without zeep's object per record, both ways.

Out: zeep still builds the envelope (headers, ``externalIDFieldName``) with no ``sObjects``;
:class:`AppendSObjects`, a zeep plugin, appends the ``<sObjects>`` elements built by
``records.sobjects_element`` (the XML zeep renders for the same records) to the operation element.
In: :func:`read_save_results` reads the ``SaveResult``/``UpsertResult`` list straight from the response
XML (parsed as ``pages.py`` parses query pages), the dicts zeep's reading makes. It reads only what it
can vouch for; anything else returns None and zeep reads the same response, raising the same errors.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import zeep

from airflow_provider_salesforce_suite.hooks._soap.client import PARTNER_NS
from airflow_provider_salesforce_suite.hooks._soap.pages import Unsupported, boolean, response_element
from airflow_provider_salesforce_suite.hooks._soap.records import XSI_NS

#: The operations whose requests and results this module handles.
SAVE_OPERATIONS = frozenset({"create", "update", "upsert"})
_NIL = f"{{{XSI_NS}}}nil"
_RESULT = f"{{{PARTNER_NS}}}result"
_ERRORS, _CREATED, _ID, _SUCCESS, _FIELDS, _MESSAGE, _STATUS = (
    f"{{{PARTNER_NS}}}{name}" for name in ("errors", "created", "id", "success", "fields", "message", "statusCode"))
_SAVE_POSITIONS = {_ERRORS: 0, _ID: 1, _SUCCESS: 2}
_UPSERT_POSITIONS = {_CREATED: 0, _ERRORS: 1, _ID: 2, _SUCCESS: 3}
#: The result types' element sequences this reader knows (a WSDL declaring others: zeep reads).
EXPECTED_SEQUENCES = {"SaveResult": ("errors", "id", "success"),
                      "UpsertResult": ("created", "errors", "id", "success"),
                      "Error": ("fields", "message", "statusCode")}


def wsdl_matches(client: Any) -> bool:
    """Whether ``client``'s WSDL declares the result types as :data:`EXPECTED_SEQUENCES` does.

    :param client: the zeep client.
    """
    for name, sequence in EXPECTED_SEQUENCES.items():
        try:
            declared = client.get_type(f"{{{PARTNER_NS}}}{name}")
        except Exception:  # noqa: BLE001 - an unknown type: not the WSDL this reader knows
            return False
        if tuple(element_name for element_name, _element in declared.elements) != sequence:
            return False
    return True


class AppendSObjects(zeep.Plugin):
    """Appends prepared ``<sObjects>`` elements to the outgoing operation element (per thread)."""

    def __init__(self) -> None:
        self._local = threading.local()

    @contextmanager
    def appending(self, elements: Sequence[Any]) -> Iterator[None]:
        """Append ``elements`` to every envelope sent inside the block (a replay sends them again).

        :param elements: the ``<sObjects>`` elements.
        """
        self._local.pending = elements
        try:
            yield
        finally:
            self._local.pending = None

    def egress(self, envelope: Any, http_headers: Any, operation: Any, binding_options: Any) -> Any:
        """zeep's hook on the envelope about to be sent."""
        pending = getattr(self._local, "pending", None)
        if pending is not None:
            body = envelope.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
            request = body.find(f"{{{PARTNER_NS}}}{operation.name}")
            request.extend(pending)  # moved out of a previous attempt's envelope, if any
        return envelope, http_headers


def read_save_results(status: int, content: bytes, operation: str) -> list[dict[str, Any]] | None:
    """The results in a ``createResponse``/``updateResponse``/``upsertResponse``, or None when zeep
    should read the response.

    :param status: HTTP status of the response.
    :param content: the response body.
    :param operation: ``create``, ``update`` or ``upsert``.
    :raises UnsafeXml: the response declares a DTD or entities.
    """
    try:
        response = response_element(status, content, operation)
        return [_result(child, operation == "upsert") for child in response]
    except Unsupported:
        return None


def _text(element: Any, nillable: bool = False) -> str | None:
    """A simple element's text (an empty or structured element is zeep's to read)."""
    if element.attrib:
        if nillable and dict(element.attrib) == {_NIL: "true"} and not len(element) and not element.text:
            return None
        raise Unsupported
    if len(element) or not element.text:
        raise Unsupported
    return element.text


def _result(element: Any, upsert: bool) -> dict[str, Any]:
    """One result, read as zeep reads the sequence ``created? (upsert), errors*, id?, success?``."""
    if element.tag != _RESULT or element.attrib or not len(element):
        raise Unsupported  # an xsi:type this reader does not know; an empty result (zeep: None)
    out: dict[str, Any] = {"created": None, "errors": []} if upsert else {"errors": []}
    out["id"] = out["success"] = None
    positions = _UPSERT_POSITIONS if upsert else _SAVE_POSITIONS
    last = -1
    for child in element:
        tag = child.tag
        at = positions.get(tag)
        if at is None or at < last or at == last and tag != _ERRORS:
            raise Unsupported  # unknown, out of sequence or repeated
        last = at
        if tag == _ERRORS:
            out["errors"].append(_error(child))
        elif tag == _ID:
            out["id"] = _text(child, nillable=True)
        elif child.attrib:
            raise Unsupported
        else:
            out["created" if tag == _CREATED else "success"] = boolean(child)
    return out


def _error(element: Any) -> dict[str, Any]:
    """One ``Error``: ``fields*, message?, statusCode?``."""
    if element.attrib:
        raise Unsupported  # e.g. an xsi:type'd DuplicateError
    out: dict[str, Any] = {"fields": [], "message": None, "statusCode": None}
    step = 0
    for child in element:
        tag = child.tag
        if tag == _FIELDS and step == 0:
            out["fields"].append(_text(child))
        elif tag == _MESSAGE and step < 1:
            out["message"], step = _text(child), 1
        elif tag == _STATUS and step < 2:
            out["statusCode"], step = _text(child, nillable=True), 2
        else:
            raise Unsupported
    return out
