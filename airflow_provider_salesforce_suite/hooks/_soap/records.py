"""Records as plain dicts <-> partner ``sObject`` elements, and zeep results -> plain Python values.

A record dict is ``{"type": "Account", "Id": ..., "<Field>": value}`` (the REST style
``{"attributes": {"type": ...}}`` is accepted too). Outgoing ``None`` values become ``fieldsToNull``;
nested dicts are relationship references (``{"type": "Account", "Ext_Id__c": "A-1"}``). Incoming
field text is typed from ``describeSObject`` (``soapType``) or an explicit ``xsi:type``: booleans,
numbers, dates, datetimes and times; parent relationships become nested dicts and child
relationships ``{"done", "size", "records": [...]}``.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any, Callable, Iterable, Mapping

from lxml import etree
from zeep.xsd.valueobjects import CompoundValue

from airflow_provider_salesforce_suite.hooks._soap.client import PARTNER_NS, SOBJECT_NS

XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_NIL = f"{{{XSI_NS}}}nil"
_XSI_TYPE = f"{{{XSI_NS}}}type"
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_RESERVED = frozenset({"type", "attributes", "fieldsToNull"})

#: Looks up ``{field name: soapType local name}`` of an sObject type ({} when unknown).
FieldTypes = Callable[[str], Mapping[str, str]]


def record_type(record: Mapping[str, Any], default: str | None = None) -> str:
    """The sObject type of ``record``: ``type``, ``attributes.type`` or ``default``."""
    attributes = record.get("attributes")
    kind = record.get("type") or (attributes.get("type") if isinstance(attributes, Mapping) else None) or default
    if not kind or not isinstance(kind, str):
        raise ValueError("a record needs its sObject type: a 'type' key, or pass sobject=")
    return kind


# -- outgoing ----------------------------------------------------------------------------------------
def value_text(value: Any) -> str:
    """``value`` as partner API text: ``true``/``false``, ISO dates, UTC datetimes, plain decimals."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (int, float, str)):
        return str(value) if not isinstance(value, float) else repr(value)
    if isinstance(value, (list, tuple)):  # multi-select picklist
        return ";".join(value_text(v) for v in value)
    raise TypeError(f"cannot send a {type(value).__name__} as a Salesforce field value")


def _field(name: str, value: Any) -> etree._Element:
    if not _FIELD_NAME.match(name):
        raise ValueError(f"{name!r} is not a Salesforce field name")
    element = etree.Element(f"{{{SOBJECT_NS}}}{name}")
    if isinstance(value, Mapping):  # relationship reference by external id: known by its <type>
        etree.SubElement(element, f"{{{SOBJECT_NS}}}type").text = record_type(value)
        for key, item in value.items():
            if key not in _RESERVED and item is not None:
                element.append(_field(key, item))
        return element
    try:
        element.text = value_text(value)
    except ValueError:  # lxml refuses control characters XML cannot carry
        raise ValueError(f"field {name!r} holds characters XML cannot carry") from None
    return element


def _sobject_parts(record: Mapping[str, Any], sobject: str | None) -> tuple[str, list[str], Any, list[Any]]:
    """A record's type, ``fieldsToNull`` names, ``Id`` (None when empty) and field elements, in order."""
    if not isinstance(record, Mapping):
        raise TypeError(f"a record must be a mapping, not {type(record).__name__}")
    kind = record_type(record, sobject)
    record_id, nulls, fields = None, [], []
    for name, value in record.items():
        if name in _RESERVED:
            continue
        if name == "Id":
            record_id = value or None
        elif value is None:
            if not _FIELD_NAME.match(name):
                raise ValueError(f"{name!r} is not a Salesforce field name")
            nulls.append(name)
        else:
            fields.append(_field(name, value))
    return kind, nulls, record_id, fields


def to_sobject(factory: Any, record: Mapping[str, Any], sobject: str | None = None) -> Any:
    """The zeep ``sObject`` for a record dict.

    :param factory: the zeep ``ens:sObject`` type.
    :param record: the record.
    :param sobject: the type when the record has none.
    """
    kind, nulls, record_id, fields = _sobject_parts(record, sobject)
    return factory(type=kind, fieldsToNull=nulls, Id=record_id, _value_1=fields)


_SOBJECTS = f"{{{PARTNER_NS}}}sObjects"
_TYPE, _TO_NULL, _ID = (f"{{{SOBJECT_NS}}}{name}" for name in ("type", "fieldsToNull", "Id"))


def sobjects_element(record: Mapping[str, Any], sobject: str | None = None) -> etree._Element:
    """The ``<sObjects>`` request element for a record dict, as zeep renders :func:`to_sobject`'s value
    (``type``, ``fieldsToNull``*, ``Id``?, then the fields in order; no ``xsi:type``) without zeep's
    object per record.

    :param record: the record.
    :param sobject: the type when the record has none.
    """
    kind, nulls, record_id, fields = _sobject_parts(record, sobject)
    element = etree.Element(_SOBJECTS)
    etree.SubElement(element, _TYPE).text = kind
    for name in nulls:
        etree.SubElement(element, _TO_NULL).text = name
    if record_id is not None:  # zeep's rendering of an xsd:string: bytes decoded, anything else str()
        etree.SubElement(element, _ID).text = \
            record_id.decode() if isinstance(record_id, bytes) else str(record_id)
    element.extend(fields)
    return element


# -- incoming ----------------------------------------------------------------------------------------
_LOCAL_NAMES: dict[str, str] = {}


def _local(tag: Any) -> str:
    # Field tags repeat on every record of a page: look each one up once.
    name = _LOCAL_NAMES.get(tag)
    if name is None:
        name = etree.QName(tag).localname
        if len(_LOCAL_NAMES) < 100_000:
            _LOCAL_NAMES[tag] = name
    return name


def _time(text: str) -> time:
    return time.fromisoformat(text.rstrip("Z"))


#: soapType / xsi:type local name -> converter of the text (anything else stays text).
_CONVERT_KIND: dict[str, Callable[[str], Any]] = {
    "boolean": "true".__eq__, "int": int, "long": int, "integer": int, "short": int, "byte": int,
    "double": float, "decimal": float, "float": float, "date": date.fromisoformat,
    "dateTime": datetime.fromisoformat, "time": _time,
}
_CONVERTERS: dict[str, Callable[[str], Any] | None] = {}


def _converter(declared: str | None) -> Callable[[str], Any] | None:
    """The converter for a declared type (``xsd:int``, ``tns:ID`` ...); cached, as few types repeat."""
    if not declared:
        return None
    try:
        return _CONVERTERS[declared]
    except KeyError:
        convert = _CONVERT_KIND.get(declared.rsplit(":", 1)[-1])
        if len(_CONVERTERS) < 10_000:
            _CONVERTERS[declared] = convert
        return convert


class RecordReader:
    """Turns zeep results into plain Python values, reading sObjects with typed fields.

    :param field_types: ``sObject type -> {field: soapType local name}`` (from describe, cached by the caller).
    """

    def __init__(self, field_types: FieldTypes | None = None) -> None:
        self._field_types = field_types or (lambda _kind: {})

    def record(self, value: Any) -> dict[str, Any] | None:
        """A record dict from a zeep ``sObject`` or a raw ``sObject`` element."""
        if value is None:
            return None
        if isinstance(value, CompoundValue):
            kind, record_id = value["type"], value["Id"]
            children = value["_value_1"] or []
        else:
            if value.get(_NIL) == "true":
                return None
            kind, record_id, children = None, None, []
            for child in value:
                name = _local(child.tag)
                if name == "type":
                    kind = child.text
                elif name == "Id" and child.get(_NIL) != "true":
                    record_id = child.text
                elif name != "fieldsToNull":
                    children.append(child)
        return self.build(kind, record_id, children)

    def build(self, kind: str | None, record_id: str | None, fields: Iterable[Any]) -> dict[str, Any]:
        """A record dict from its type, its ``Id`` and its field elements (typed as described).

        :param kind: the sObject type.
        :param record_id: the record id (left out when empty).
        :param fields: the field elements, in document order.
        """
        types = self._field_types(kind) if kind else {}
        out: dict[str, Any] = {"type": kind}
        if record_id:
            out["Id"] = record_id
        for child in fields:
            name = _local(child.tag)
            out[name] = self._field_value(child, types.get(name))
        return out

    def _field_value(self, element: Any, soap_type: str | None) -> Any:
        if element.get(_NIL) == "true":
            return None
        if len(element):
            names = {_local(c.tag) for c in element}
            if "records" in names or "done" in names:
                return self.query_result_element(element)
            return self.record(element)
        text = element.text or ""
        convert = _converter(element.get(_XSI_TYPE) or soap_type)
        if convert is None:
            return text
        try:
            return convert(text)
        except ValueError:  # text that does not fit the declared type stays text
            return text

    def query_result_element(self, element: Any) -> dict[str, Any]:
        """A nested (child relationship) QueryResult element as ``{"done", "size", "records"}``."""
        out: dict[str, Any] = {"done": True, "size": 0, "records": []}
        for child in element:
            name = _local(child.tag)
            if name == "records":
                out["records"].append(self.record(child))
            elif name == "done":
                out["done"] = child.text == "true"
            elif name == "size":
                out["size"] = int(child.text or 0)
            elif name == "queryLocator" and child.get(_NIL) != "true":
                out["queryLocator"] = child.text
        return out

    def plain(self, value: Any) -> Any:
        """A zeep result as plain dicts/lists (sObjects as record dicts)."""
        if isinstance(value, CompoundValue):
            xsd_type = getattr(value, "_xsd_type", None)
            if xsd_type is not None and getattr(xsd_type, "qname", None) is not None and \
                    xsd_type.qname.namespace == SOBJECT_NS:
                return self.record(value)
            return {key: self.plain(value[key]) for key in value}
        if isinstance(value, list):
            return [self.plain(item) for item in value]
        if isinstance(value, etree._Element):
            return self.record(value)
        return value


__all__ = ["PARTNER_NS", "RecordReader", "record_type", "sobjects_element", "to_sobject", "value_text"]
