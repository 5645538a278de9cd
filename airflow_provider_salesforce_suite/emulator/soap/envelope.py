"""Parsing partner SOAP requests: the envelope, its headers, the operation and its sObjects.

Parsing goes through :func:`core.safexml.parse_xml_safely` (stdlib only, no Airflow): a document
declaring a DTD or entity is refused before it reaches the parser.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from typing import Any

from ...core.safexml import local_name, parse_xml_safely
from ..errors import SalesforceApiError
from .render import CLIENT_FAULT, SOAPENV

_XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"


def client_fault(message: str) -> SalesforceApiError:
    """A ``soapenv:Client`` fault (unparseable XML, no Body, unknown operation).

    :param message: the faultstring.
    """
    return SalesforceApiError("CLIENT", message, status=500, extra={CLIENT_FAULT: True})


@dataclass
class Envelope:
    """A parsed request.

    :param operation: the operation's local name (``query``, ``create`` ...).
    :param body: the operation element.
    :param headers: SOAP header elements by local name (``SessionHeader``, ``AllOrNoneHeader`` ...).
    """

    operation: str
    body: ElementTree.Element
    headers: dict[str, ElementTree.Element] = field(default_factory=dict)

    def header_value(self, header: str, name: str) -> str | None:
        """The text of ``<header><name>`` (``SessionHeader``/``sessionId``).

        :param header: header element's local name.
        :param name: child's local name.
        """
        element = self.headers.get(header)
        return text_of(element, name) if element is not None else None

    def texts(self, name: str) -> list[str]:
        """The texts of every direct child of the operation called ``name``.

        :param name: local name.
        """
        return [(c.text or "").strip() for c in self.body if local_name(c.tag) == name]

    def text(self, name: str) -> str | None:
        """The text of the operation's first direct child called ``name``.

        :param name: local name.
        """
        return text_of(self.body, name)

    def children(self, name: str) -> list[ElementTree.Element]:
        """The operation's direct children called ``name``.

        :param name: local name.
        """
        return [c for c in self.body if local_name(c.tag) == name]


def text_of(element: ElementTree.Element, name: str) -> str | None:
    """The stripped text of ``element``'s first direct child called ``name`` (``None`` if absent).

    :param element: the parent.
    :param name: local name.
    """
    child = next((c for c in element if local_name(c.tag) == name), None)
    return None if child is None else (child.text or "").strip()


def parse_envelope(body: bytes) -> Envelope:
    """Parse a request envelope.

    :param body: the raw request body.
    :raises SalesforceApiError: a ``soapenv:Client`` fault for unsafe, malformed or incomplete XML.
    """
    root = parse_xml_safely(body)
    if root is None:
        if body and b"<!" in body:
            raise client_fault("DOCTYPE is disallowed when the feature "
                               '"http://apache.org/xml/features/disallow-doctype-decl" set to true.')
        raise client_fault("Content is not allowed in prolog." if body and not body.lstrip().startswith(b"<")
                           else "XML document structures must start and end within the same entity.")
    if root.tag != f"{{{SOAPENV}}}Envelope":
        raise client_fault(f"Unable to find envelope; found {local_name(root.tag)}")
    header = root.find(f"{{{SOAPENV}}}Header")
    soap_body = root.find(f"{{{SOAPENV}}}Body")
    operation = next(iter(soap_body), None) if soap_body is not None else None
    if operation is None:
        raise client_fault("Unable to find a body element in the SOAP request")
    headers = {local_name(h.tag): h for h in header} if header is not None else {}
    return Envelope(local_name(operation.tag), operation, headers)


def parse_sobject(element: ElementTree.Element) -> tuple[str | None, dict[str, Any], list[str]]:
    """An ``sObject`` element: ``(type, field values, fieldsToNull)``.

    ``Id`` is kept in the values (empty Ids dropped); a field sent with ``xsi:nil="true"`` is null.

    :param element: the sObject element.
    """
    sobject_type: str | None = None
    values: dict[str, Any] = {}
    to_null: list[str] = []
    for child in element:
        name = local_name(child.tag)
        text = child.text or ""
        if name == "type":
            sobject_type = text.strip()
        elif name == "fieldsToNull":
            if text.strip():
                to_null.append(text.strip())
        elif name == "Id":
            if text.strip():
                values["Id"] = text.strip()
        elif len(child):
            continue  # nested sObjects (relationship by external id) are not emulated
        else:
            values[name] = None if child.get(_XSI_NIL) == "true" else text
    return sobject_type, values, to_null
