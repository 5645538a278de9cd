"""The partner WSDL's complex types, so result structures built from REST dicts (describe,
user info) are written with exactly the WSDL's elements in its sequence order.

The WSDL (``airflow_provider_salesforce_suite/wsdl/partner.wsdl``) is the wire contract shared
with the zeep-based hook; reading it here keeps the emulator from drifting from it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from ...core.safexml import local_name, parse_xml_safely
from .render import element

WSDL_PATH = Path(__file__).resolve().parents[2] / "wsdl" / "partner.wsdl"
_XSD = "{http://www.w3.org/2001/XMLSchema}"


@functools.lru_cache(maxsize=1)
def complex_types() -> dict[str, list[tuple[str, str]]]:
    """complexType name -> its sequence as ``(element name, type local name)`` (bases first)."""
    root = parse_xml_safely(WSDL_PATH.read_bytes())
    assert root is not None, "partner.wsdl must parse"
    raw: dict[str, tuple[str | None, list[tuple[str, str]]]] = {}
    for ctype in root.iter(f"{_XSD}complexType"):
        name = ctype.get("name")
        if not name:
            continue
        extension = next(ctype.iter(f"{_XSD}extension"), None)
        base = local_name(extension.get("base", "").split(":")[-1]) if extension is not None else None
        seq = [(e.get("name"), (e.get("type") or "").split(":")[-1]) for e in ctype.iter(f"{_XSD}element")
               if e.get("name")]
        raw[name] = (base, seq)

    def flatten(name: str) -> list[tuple[str, str]]:
        base, seq = raw.get(name, (None, []))
        return (flatten(base) if base else []) + seq

    return {name: flatten(name) for name in raw}


def shaped(tag: str, type_name: str, data: dict[str, Any]) -> str:
    """``data`` as element ``tag`` of WSDL type ``type_name``: the WSDL's elements only, in its
    order, nested complex types shaped the same way; keys the WSDL lacks are left out.

    :param tag: element name.
    :param type_name: the complexType's name (``DescribeSObjectResult``).
    :param data: the values (REST-shaped dict).
    """
    types = complex_types()
    parts = []
    for name, child_type in types.get(type_name, []):
        if name not in data:
            continue
        value = data[name]
        if child_type in types and value is not None:
            items = value if isinstance(value, list) else [value]
            parts += [shaped(name, child_type, item) for item in items if isinstance(item, dict)]
        else:
            parts.append(element(name, value))
    return f"<{tag}>{''.join(parts)}</{tag}>"
