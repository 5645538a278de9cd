"""Safe XML for Salesforce's XML wire formats (SOAP login and query pages, Bulk API 1.0).

Salesforce never sends a DTD, so any document declaring one (or an entity) is refused before it
reaches the parser: entity expansion ("billion laughs") and external entities are impossible.
Errors about such a reply say so (:func:`unsafe_xml_reason`, error code :data:`UNSAFE_XML`) rather
than calling it unparseable.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from typing import Any
from xml.sax.saxutils import escape

_FORBIDDEN_XML = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
#: ``error_code`` of errors about a reply refused as unsafe XML.
UNSAFE_XML = "UNSAFE_XML"
# Characters XML 1.0 cannot carry at all, even escaped.
_INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def parse_xml_safely(body: bytes | None) -> ElementTree.Element | None:
    """The root element of ``body``, or None when it is empty, malformed or declares a DTD/entity.

    :param body: the raw XML document.
    """
    if not body or declares_dtd(body):
        return None
    try:
        return ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return None


def declares_dtd(body: bytes) -> bool:
    """Whether ``body`` declares a DTD or an entity (such a document is refused, never parsed).

    :param body: the raw XML document.
    """
    return b"<!" in body and _FORBIDDEN_XML.search(body) is not None


def unsafe_xml_reason(body: bytes | None) -> str | None:
    """Why ``body`` was refused as unsafe XML, or None when it declares no DTD or entity.

    :param body: the raw reply.
    """
    found = _FORBIDDEN_XML.search(body) if body and b"<!" in body else None
    if found is None:
        return None
    what = "a DTD (<!DOCTYPE>)" if found.group(1).upper() == b"DOCTYPE" else "an entity (<!ENTITY>)"
    return (f"reply refused as unsafe XML: it declares {what}, which Salesforce never sends; it was not parsed "
            "(that blocks entity-expansion bombs and external entities)")


def lxml_parser() -> Any:
    """A fresh lxml parser for a document :func:`declares_dtd` passed: no DTD loading or validation,
    no entity resolution, no network, no huge trees, comments dropped. lxml is imported here, lazily.
    """
    from lxml import etree

    return etree.XMLParser(resolve_entities=False, load_dtd=False, dtd_validation=False, no_network=True,
                           huge_tree=False, remove_comments=True, recover=False)


def local_name(tag: str) -> str:
    """``{namespace}name`` -> ``name``."""
    return tag.rsplit("}", 1)[-1]


def xml_text(value: object) -> str:
    """``value`` as escaped XML character data (``&``, ``<``, ``>`` escaped; invalid characters dropped).

    :param value: any value; ``str()`` of it is escaped.
    """
    return escape(_INVALID_XML_CHARS.sub("", str(value)))
