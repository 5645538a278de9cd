"""Change event bitmaps -> field names.

``ChangeEventHeader.changedFields``, ``nulledFields`` and ``diffFields`` arrive as lists of strings:
``"0x..."`` is a hex bitmap over the top-level fields of the event's Avro schema (bit i, counted from
the least significant bit of the whole number, is field i), ``"N-0x..."`` a bitmap over the fields of
the record nested at top-level position N (compound fields such as ``Name``), named
``Parent.Child``. Anything else (already a field name) is kept as it is.
"""

from __future__ import annotations

from typing import Any, Mapping

#: The ChangeEventHeader fields that carry bitmaps.
BITMAP_FIELDS = ("changedFields", "nulledFields", "diffFields")
HEADER_FIELD = "ChangeEventHeader"


class BitmapError(ValueError):
    """A bitmap that does not fit the schema (bad hex, a bit beyond the fields, a nested position that
    is not a record)."""


def _named_records(schema: Any, found: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    if isinstance(schema, list):
        for branch in schema:
            _named_records(branch, found)
    elif isinstance(schema, dict):
        if schema.get("type") == "record":
            name = str(schema.get("name"))
            namespace = schema.get("namespace")
            found[name] = schema
            if namespace and "." not in name:
                found[f"{namespace}.{name}"] = schema
            for item in schema.get("fields") or []:
                _named_records(item.get("type"), found)
        elif schema.get("type") in ("array", "map"):
            _named_records(schema.get("items") or schema.get("values"), found)
    return found


def _record_of(field_type: Any, named: Mapping[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The record type inside a field type (a nullable union, a named reference, the record itself)."""
    if isinstance(field_type, list):
        for branch in field_type:
            record = _record_of(branch, named)
            if record is not None:
                return record
        return None
    if isinstance(field_type, str):
        return named.get(field_type)
    if isinstance(field_type, dict) and field_type.get("type") == "record":
        return field_type
    return None


def _bits(hex_text: str, fields: list[dict[str, Any]], where: str) -> list[str]:
    try:
        value = int(hex_text[2:] if hex_text[:2].lower() == "0x" else hex_text, 16)
    except ValueError:
        raise BitmapError(f"{where} bitmap {hex_text!r} is not hexadecimal") from None
    names = []
    position = 0
    while value:
        if value & 1:
            if position >= len(fields):
                raise BitmapError(f"{where} bitmap {hex_text!r} sets bit {position}, but the schema has "
                                  f"{len(fields)} fields there")
            names.append(str(fields[position]["name"]))
        value >>= 1
        position += 1
    return names


def decode_bitmaps(values: list[str] | None, schema: Mapping[str, Any],
                   named: Mapping[str, dict[str, Any]] | None = None) -> list[str]:
    """Field names of one bitmap field's value.

    :param values: e.g. ``["0x1A", "3-0x02"]`` (None or empty: no fields).
    :param schema: the event's Avro record schema (JSON as ``GetSchema`` returns it).
    :param named: the schema's named records (computed when omitted).
    :raises BitmapError: naming the bitmap that does not fit the schema.
    """
    if not values:
        return []
    top = list(schema.get("fields") or [])
    named = named if named is not None else _named_records(dict(schema), {})
    names: list[str] = []
    for value in values:
        text = str(value)
        if text[:2].lower() == "0x":
            found = _bits(text, top, "top-level")
        elif "-" in text and text.split("-", 1)[0].isdigit():
            position_text, bitmap = text.split("-", 1)
            position = int(position_text)
            if position >= len(top):
                raise BitmapError(f"bitmap {text!r} names field position {position}, but the schema has "
                                  f"{len(top)} fields")
            parent = top[position]
            record = _record_of(parent.get("type"), named)
            if record is None:
                raise BitmapError(f"bitmap {text!r} names field {parent.get('name')!r}, which is not a compound "
                                  "(record) field")
            found = [f"{parent['name']}.{child}" for child in _bits(bitmap, list(record.get("fields") or []),
                                                                    f"{parent['name']}")]
        else:
            found = [text]  # already a field name
        names.extend(name for name in found if name not in names)
    return names


def decode_change_header(payload: dict[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """``payload`` with its ``ChangeEventHeader`` bitmap fields turned into field names (in place).

    A payload without a ``ChangeEventHeader`` (a platform event) is returned as it is.

    :param payload: the decoded Avro record.
    :param schema: its Avro schema.
    :raises BitmapError: a bitmap that does not fit the schema.
    """
    header = payload.get(HEADER_FIELD)
    if not isinstance(header, dict):
        return payload
    named = _named_records(dict(schema), {})
    for name in BITMAP_FIELDS:
        if name in header:
            header[name] = decode_bitmaps(header.get(name), schema, named)
    return payload
