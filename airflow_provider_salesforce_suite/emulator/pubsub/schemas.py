"""Avro schemas of change events and platform events, shaped as Salesforce generates them.

* Platform event ``Order__e``: record ``Order__e`` (namespace ``com.sforce.eventbus``) with
  ``CreatedDate`` (long, epoch ms) and ``CreatedById`` (string), then each custom field as a
  nullable union ``["null", type]`` defaulting to null.
* Change event ``AccountChangeEvent``: ``ChangeEventHeader`` first (a record: entityName,
  recordIds, changeType enum, changeOrigin, transactionKey, sequenceNumber, commitTimestamp,
  commitNumber, commitUser, nulledFields, diffFields, changedFields), then the object's fields as
  nullable unions. Compound fields are nested records as in Salesforce's schemas: a person name
  (``Name``: Salutation, FirstName, LastName) and addresses (``BillingAddress``: Street, City,
  State, PostalCode, Country); their parts are not top-level fields.

Types: text, ids and picklists are ``string``; booleans ``boolean``; ``int`` fields ``int``;
double/currency/percent ``double``; datetimes ``long`` (epoch ms, Salesforce's form); dates
``int`` (days since the epoch; the documentation is silent on dates, decided here).
``schema_id`` is a fingerprint: the URL-safe base64 of the MD5 of the schema's canonical JSON
(22 characters, stable for the same schema). Pure Python: no fastavro import here.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..metadata import ObjectDef

NAMESPACE = "com.sforce.eventbus"
#: Fields a change event never carries in its body (the record id is in the header's recordIds).
CDC_SKIPPED = frozenset({"Id", "IsDeleted", "SystemModstamp"})
CHANGE_TYPES = ["CREATE", "UPDATE", "DELETE", "UNDELETE", "GAP_CREATE", "GAP_UPDATE", "GAP_DELETE",
                "GAP_UNDELETE", "GAP_OVERFLOW", "SNAPSHOT"]
_STRING_ARRAY = {"type": "array", "items": "string"}
HEADER_SCHEMA: dict[str, Any] = {
    "type": "record", "name": "ChangeEventHeader", "namespace": NAMESPACE,
    "fields": [
        {"name": "entityName", "type": "string"},
        {"name": "recordIds", "type": _STRING_ARRAY},
        {"name": "changeType", "type": {"type": "enum", "name": "ChangeType", "namespace": NAMESPACE,
                                        "symbols": CHANGE_TYPES}},
        {"name": "changeOrigin", "type": "string"},
        {"name": "transactionKey", "type": "string"},
        {"name": "sequenceNumber", "type": "int"},
        {"name": "commitTimestamp", "type": "long"},
        {"name": "commitNumber", "type": "long"},
        {"name": "commitUser", "type": "string"},
        {"name": "nulledFields", "type": _STRING_ARRAY},
        {"name": "diffFields", "type": _STRING_ARRAY},
        {"name": "changedFields", "type": _STRING_ARRAY},
    ],
}
_NAME_PARTS = ("Salutation", "FirstName", "LastName")
_ADDRESS_PARTS = ("Street", "City", "State", "PostalCode", "Country")
_ADDRESS_PREFIXES = ("Billing", "Shipping", "Mailing", "Other", "")
_EPOCH_DAY = dt.date(1970, 1, 1)


def avro_type(field_type: str) -> str:
    """The Avro type of a Salesforce field type.

    :param field_type: ``string``, ``boolean``, ``datetime`` ...
    """
    if field_type == "boolean":
        return "boolean"
    if field_type == "int":
        return "int"
    if field_type in ("double", "currency", "percent"):
        return "double"
    if field_type == "datetime":
        return "long"
    if field_type == "date":
        return "int"
    return "string"


@dataclass
class Compound:
    """A compound field: a nested record whose parts are flat fields of the object.

    :param name: the compound field's name (``Name``, ``BillingAddress``).
    :param record: the nested record's type name (``Switchable_PersonName``, ``Address``).
    :param parts: nested field name -> the object's flat field (``City`` -> ``BillingCity``).
    """

    name: str
    record: str
    parts: dict[str, str]


@dataclass
class EventSchema:
    """One topic's Avro schema and how the object's fields map onto it.

    :param schema: the Avro schema (a JSON-ready dict).
    :param schema_id: its fingerprint.
    :param fields: top-level field names in schema order (position = bitmap bit).
    :param types: flat field -> Salesforce field type, for value conversion.
    :param compounds: compound field name -> :class:`Compound`.
    """

    schema: dict[str, Any]
    schema_id: str
    fields: list[str]
    types: dict[str, str]
    compounds: dict[str, Compound] = field(default_factory=dict)
    #: flat field -> (top-level position, nested position or None)
    positions: dict[str, tuple[int, int | None]] = field(default_factory=dict)

    @property
    def json(self) -> str:
        """The schema as ``GetSchema`` returns it."""
        return json.dumps(self.schema, separators=(",", ":"))


def change_event_name(obj: ObjectDef) -> str:
    """``AccountChangeEvent`` or, for ``Foo__c``, ``Foo__ChangeEvent``.

    :param obj: a CDC-capable object.
    """
    base = obj.name[:-1] if obj.name.endswith("__c") else obj.name
    return f"{base}ChangeEvent"


_CACHE: dict[tuple[Any, ...], EventSchema] = {}


def event_schema(obj: ObjectDef) -> EventSchema:
    """The schema of ``obj``'s events: its platform event schema, or its change event schema.

    Cached per object shape (a schema file or metadata change gives a new schema and id).

    :param obj: a platform event or a CDC-capable object.
    """
    key = (obj.name, obj.kind, tuple((f.name, f.type, f.custom, f.computed) for f in obj.fields.values()))
    schema = _CACHE.get(key)
    if schema is None:
        schema = platform_event_schema(obj) if obj.kind == "event" else change_event_schema(obj, change_event_name(obj))
        _CACHE[key] = schema
    return schema


def fingerprint(schema: dict[str, Any]) -> str:
    """``schema_id``: 22 URL-safe base64 characters of the MD5 of the schema's canonical JSON.

    :param schema: an Avro schema.
    """
    canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    digest = hashlib.md5(canonical.encode(), usedforsecurity=False).digest()
    return base64.urlsafe_b64encode(digest).decode()[:22]


def _nullable(name: str, avro: Any) -> dict[str, Any]:
    return {"name": name, "type": ["null", avro], "default": None}


def _compounds(obj: ObjectDef) -> list[Compound]:
    found = []
    if all(p in obj.fields for p in ("FirstName", "LastName")) and obj.fields.get("Name") is not None \
            and obj.fields["Name"].computed == "fullname":
        found.append(Compound("Name", "Switchable_PersonName", {p: p for p in _NAME_PARTS if p in obj.fields}))
    for prefix in _ADDRESS_PREFIXES:
        parts = {p: prefix + p for p in _ADDRESS_PARTS}
        if all(flat in obj.fields for flat in parts.values()):
            found.append(Compound(prefix + "Address", "Address", parts))
    return found


def change_event_schema(obj: ObjectDef, event_name: str) -> EventSchema:
    """The schema of ``obj``'s change events.

    :param obj: a CDC-capable object.
    :param event_name: the change event's name (``AccountChangeEvent``, ``Invoice__ChangeEvent``).
    """
    compounds = {c.name: c for c in _compounds(obj)}
    in_compound = {flat: c for c in compounds.values() for flat in c.parts.values()}
    fields: list[dict[str, Any]] = [{"name": "ChangeEventHeader", "type": HEADER_SCHEMA}]
    names = ["ChangeEventHeader"]
    positions: dict[str, tuple[int, int | None]] = {}
    types: dict[str, str] = {}
    defined: set[str] = {"ChangeEventHeader"}
    for name, fdef in obj.fields.items():
        if name in CDC_SKIPPED:
            continue
        types[name] = fdef.type
        compound = compounds.get(name) or in_compound.get(name)
        if compound is not None:
            if compound.name in names:
                continue
            nested = [_nullable(part, avro_type(obj.fields[flat].type)) for part, flat in compound.parts.items()]
            record: Any = compound.record if compound.record in defined else {
                "type": "record", "name": compound.record, "namespace": NAMESPACE, "fields": nested}
            defined.add(compound.record)
            for index, flat in enumerate(compound.parts.values()):
                positions[flat] = (len(names), index)
                types[flat] = obj.fields[flat].type
            fields.append(_nullable(compound.name, record))
            names.append(compound.name)
            continue
        positions[name] = (len(names), None)
        fields.append(_nullable(name, avro_type(fdef.type)))
        names.append(name)
    schema = {"type": "record", "name": event_name, "namespace": NAMESPACE, "fields": fields}
    return EventSchema(schema, fingerprint(schema), names, types, compounds, positions)


def platform_event_schema(obj: ObjectDef) -> EventSchema:
    """The schema of platform event ``obj`` (``Order__e``).

    :param obj: a platform event object.
    """
    fields: list[dict[str, Any]] = [{"name": "CreatedDate", "type": "long"}, {"name": "CreatedById", "type": "string"}]
    types = {"CreatedDate": "datetime", "CreatedById": "reference"}
    for name, fdef in obj.fields.items():
        if fdef.custom:
            fields.append(_nullable(name, avro_type(fdef.type)))
            types[name] = fdef.type
    schema = {"type": "record", "name": obj.name, "namespace": NAMESPACE, "fields": fields}
    names = [f["name"] for f in fields]
    return EventSchema(schema, fingerprint(schema), names, types,
                       positions={n: (i, None) for i, n in enumerate(names)})


# -- values -------------------------------------------------------------------------------------


def to_avro(value: Any, field_type: str) -> Any:
    """A stored field value (as the store and REST show it) in its Avro form.

    :param value: the value (``None`` stays ``None``).
    :param field_type: the Salesforce field type.
    """
    if value is None:
        return None
    kind = avro_type(field_type)
    if kind == "long":
        return int(_parse_datetime(value).timestamp() * 1000)
    if kind == "int" and field_type == "date":
        return (dt.date.fromisoformat(str(value)[:10]) - _EPOCH_DAY).days
    if kind == "int":
        return int(value)
    if kind == "double":
        return float(value)
    if kind == "boolean":
        return bool(value)
    return str(value)


def from_avro(value: Any, field_type: str) -> Any:
    """A decoded Avro value as the store takes it (the inverse of :func:`to_avro`).

    :param value: the decoded value.
    :param field_type: the Salesforce field type.
    """
    if value is None:
        return None
    if field_type == "datetime":
        moment = dt.datetime.fromtimestamp(value / 1000, dt.timezone.utc)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    if field_type == "date":
        return (_EPOCH_DAY + dt.timedelta(days=value)).isoformat()
    return value


def _parse_datetime(value: Any) -> dt.datetime:
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc)
    text = str(value).replace("Z", "+00:00")
    if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":":  # +0000 -> +00:00
        text = text[:-2] + ":" + text[-2:]
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
