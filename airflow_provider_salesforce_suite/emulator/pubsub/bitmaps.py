"""Change event field bitmaps (``changedFields``, ``nulledFields``, ``diffFields``) as Salesforce
sends them over the Pub/Sub API.

A bitmap field is a list of strings: the first, ``"0x..."``, is a hexadecimal bitmap over the
top-level positions of the event's Avro schema (bit i set: the field at position i); each compound
field with parts in the list adds ``"{position}-0x..."``, a bitmap over the nested record's fields.
The top-level element always comes first, ``"0x00"`` when only compound parts are listed: clients
modelled on Salesforce's examples read nested elements only after a top-level one.
"""

from __future__ import annotations

from collections.abc import Iterable

from .schemas import EventSchema


def _hex(bits: int) -> str:
    digits = f"{bits:X}"
    return "0x" + ("0" * (len(digits) % 2)) + digits  # whole bytes, as in Salesforce's '0x650004E0'


def encode(field_names: Iterable[str], schema: EventSchema) -> list[str]:
    """The bitmap strings for ``field_names``.

    :param field_names: the object's flat field names (``Name``, ``BillingCity``); names the
        schema does not have are skipped.
    :param schema: the topic's schema.
    """
    top = 0
    nested: dict[int, int] = {}
    for name in field_names:
        position = schema.positions.get(name)
        if position is None:
            continue
        index, part = position
        if part is None:
            top |= 1 << index
        else:
            nested[index] = nested.get(index, 0) | (1 << part)
    if not top and not nested:
        return []
    return [_hex(top)] + [f"{index}-{_hex(bits)}" for index, bits in sorted(nested.items())]
