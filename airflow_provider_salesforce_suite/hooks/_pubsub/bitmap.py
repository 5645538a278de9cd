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


#: Distinct bitmap texts a table remembers the names of (an org's changes repeat a few shapes).
_MEMO_SIZE = 4096


class BitmapTable:
    """The field names one schema's bitmaps can name, worked out once per schema (the schema's nested
    records are found once, not per event), and the names of bitmap texts already seen.

    :param schema: the event's Avro record schema (JSON as ``GetSchema`` returns it).
    """

    def __init__(self, schema: Mapping[str, Any]) -> None:
        named = _named_records(dict(schema), {})
        fields = list(schema.get("fields") or [])
        #: top-level field names by position
        self.top: tuple[str, ...] = tuple(str(f["name"]) for f in fields)
        #: position -> (field name, its record's child names) for compound fields, None for the others
        self.nested: tuple[tuple[str, tuple[str, ...]] | None, ...] = tuple(
            (str(f["name"]), tuple(str(c["name"]) for c in record.get("fields") or []))
            if (record := _record_of(f.get("type"), named)) is not None else None
            for f in fields)
        self._memo: dict[str, tuple[str, ...]] = {}

    def names(self, values: list[str] | None) -> list[str]:
        """Field names of one bitmap field's value (``["0x1A", "3-0x02"]``; None or empty: none).

        :raises BitmapError: naming the bitmap that does not fit the schema.
        """
        if not values:
            return []
        names: list[str] = []
        for value in values:
            text = str(value)
            found = self._memo.get(text)
            if found is None:
                found = self._one(text)
                if len(self._memo) < _MEMO_SIZE:
                    self._memo[text] = found
            if names:
                names.extend(name for name in found if name not in names)
            else:
                names.extend(found)  # one bitmap's names are distinct already
        return names

    def _one(self, text: str) -> tuple[str, ...]:
        if text[:2].lower() == "0x":
            return tuple(_bits(text, self.top, "top-level"))
        if "-" in text and text.split("-", 1)[0].isdigit():
            position_text, bitmap = text.split("-", 1)
            position = int(position_text)
            if position >= len(self.top):
                raise BitmapError(f"bitmap {text!r} names field position {position}, but the schema has "
                                  f"{len(self.top)} fields")
            compound = self.nested[position]
            if compound is None:
                raise BitmapError(f"bitmap {text!r} names field {self.top[position]!r}, which is not a compound "
                                  "(record) field")
            parent, children = compound
            return tuple(f"{parent}.{child}" for child in _bits(bitmap, children, parent))
        return (text,)  # already a field name


def _bits(hex_text: str, fields: tuple[str, ...], where: str) -> list[str]:
    try:
        value = int(hex_text[2:] if hex_text[:2].lower() == "0x" else hex_text, 16)
    except ValueError:
        raise BitmapError(f"{where} bitmap {hex_text!r} is not hexadecimal") from None
    beyond = value >> len(fields)
    if beyond:
        first = len(fields) + (beyond & -beyond).bit_length() - 1  # the lowest bit past the last field
        raise BitmapError(f"{where} bitmap {hex_text!r} sets bit {first}, but the schema has "
                          f"{len(fields)} fields there")
    return [fields[position] for position in range(value.bit_length()) if value >> position & 1]


def decode_bitmaps(values: list[str] | None, schema: Mapping[str, Any] | BitmapTable) -> list[str]:
    """Field names of one bitmap field's value.

    :param values: e.g. ``["0x1A", "3-0x02"]`` (None or empty: no fields).
    :param schema: the event's Avro record schema (JSON as ``GetSchema`` returns it), or its
        :class:`BitmapTable` (what a caller decoding many events keeps).
    :raises BitmapError: naming the bitmap that does not fit the schema.
    """
    table = schema if isinstance(schema, BitmapTable) else BitmapTable(schema)
    return table.names(values)


def decode_change_header(payload: dict[str, Any], schema: Mapping[str, Any] | BitmapTable) -> dict[str, Any]:
    """``payload`` with its ``ChangeEventHeader`` bitmap fields turned into field names (in place).

    A payload without a ``ChangeEventHeader`` (a platform event) is returned as it is.

    :param payload: the decoded Avro record.
    :param schema: its Avro schema, or the schema's :class:`BitmapTable`.
    :raises BitmapError: a bitmap that does not fit the schema.
    """
    header = payload.get(HEADER_FIELD)
    if not isinstance(header, dict):
        return payload
    table = schema if isinstance(schema, BitmapTable) else BitmapTable(schema)
    for name in BITMAP_FIELDS:
        if name in header:
            header[name] = table.names(header.get(name))
    return payload
