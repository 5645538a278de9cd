"""Safe XML for Salesforce's XML wire formats (SOAP login, Bulk API 1.0).

Salesforce never sends a DTD, so any document declaring one (or an entity) is refused before it
reaches the parser: entity expansion ("billion laughs") and external entities are impossible.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from xml.sax.saxutils import escape

_FORBIDDEN_XML = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
# Characters XML 1.0 cannot carry at all, even escaped.
_INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def parse_xml_safely(body: bytes | None) -> ElementTree.Element | None:
    """The root element of ``body``, or None when it is empty, malformed or declares a DTD/entity.

    :param body: the raw XML document.
    """
    if not body or _FORBIDDEN_XML.search(body):
        return None
    try:
        return ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return None


def local_name(tag: str) -> str:
    """``{namespace}name`` -> ``name``."""
    return tag.rsplit("}", 1)[-1]


def xml_text(value: object) -> str:
    """``value`` as escaped XML character data (``&``, ``<``, ``>`` escaped; invalid characters dropped).

    :param value: any value; ``str()`` of it is escaped.
    """
    return escape(_INVALID_XML_CHARS.sub("", str(value)))
