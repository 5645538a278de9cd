"""Avro payloads: schemaless decode/encode with parsed schemas cached by schema id, and the check of
an event against its topic's schema before it is sent.

fastavro is imported lazily (the ``pubsub`` extra). A schema id is a fingerprint of the schema, so
one process-wide cache serves every connection and org.
"""

from __future__ import annotations

import io
import json
import threading
from datetime import datetime, timezone
from typing import Any, Mapping

from airflow_provider_salesforce_suite.core.errors import SalesforcePubSubSchemaError
from airflow_provider_salesforce_suite.hooks._pubsub.bitmap import BitmapError, decode_change_header

_CACHE: dict[str, AvroSchema] = {}
_LOCK = threading.Lock()
_VALUE_CHARS = 60


def _branches(field_type: Any) -> list[Any]:
    return list(field_type) if isinstance(field_type, list) else [field_type]


def _type_name(branch: Any) -> str:
    return branch.get("type") if isinstance(branch, dict) else str(branch)


class AvroSchema:
    """One topic schema: its JSON, the parsed form fastavro uses, and the codec functions.

    :param schema_id: the schema's id (fingerprint).
    :param schema_json: the schema as ``GetSchema`` returns it (JSON text).
    :raises SalesforcePubSubSchemaError: the text is not a usable Avro record schema.
    """

    def __init__(self, schema_id: str, schema_json: str) -> None:
        import fastavro

        self.schema_id = schema_id
        try:
            self.schema: dict[str, Any] = json.loads(schema_json)
            self.parsed = fastavro.parse_schema(json.loads(schema_json))
        except (ValueError, TypeError, KeyError, fastavro.schema.SchemaParseException) as exc:
            raise SalesforcePubSubSchemaError(f"schema {schema_id} is not a usable Avro schema: {exc}") from None
        if not isinstance(self.schema, dict) or self.schema.get("type") != "record":
            raise SalesforcePubSubSchemaError(f"schema {schema_id} is not an Avro record schema")
        self.fields: dict[str, dict[str, Any]] = {str(f["name"]): f for f in self.schema.get("fields") or []}

    @property
    def name(self) -> str:
        """The record's name (the event's API name)."""
        return str(self.schema.get("name"))

    # -- subscribe ---------------------------------------------------------------------------------
    def decode(self, payload: bytes) -> dict[str, Any]:
        """The record of an Avro (schemaless) payload; change event bitmaps turned into field names.

        :raises SalesforcePubSubSchemaError: the payload does not decode with this schema.
        """
        import fastavro

        try:
            record = fastavro.schemaless_reader(io.BytesIO(payload), self.parsed)
        except Exception as exc:  # fastavro raises EOFError, ValueError, UnicodeDecodeError ... on bad data
            raise SalesforcePubSubSchemaError(
                f"an event payload does not decode with schema {self.schema_id} ({type(exc).__name__}: {exc})"
            ) from None
        if not isinstance(record, dict):
            raise SalesforcePubSubSchemaError(f"schema {self.schema_id} decoded a {type(record).__name__}, not a record")
        try:
            return decode_change_header(record, self.schema)
        except BitmapError as exc:
            raise SalesforcePubSubSchemaError(f"change event header does not fit schema {self.schema_id}: {exc}") from None

    # -- publish -----------------------------------------------------------------------------------
    def prepare(self, event: Mapping[str, Any], *, where: str, defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``event`` as a complete record of this schema: text converted to the field's type (CSV input),
        ``defaults`` filled where the event has no value, optional fields absent -> null.

        :param event: the caller's event.
        :param where: names the event in errors (``"event 3 (key 'abc')"``).
        :param defaults: values for fields the event leaves out or null (``CreatedDate``, ``CreatedById``).
        :raises SalesforcePubSubSchemaError: naming the field that does not fit.
        """
        from fastavro.validation import ValidationError, validate

        if not isinstance(event, Mapping):
            raise SalesforcePubSubSchemaError(f"{where} is a {type(event).__name__}, not a mapping of field values")
        unknown = [str(k) for k in event if str(k) not in self.fields]
        if unknown:
            raise SalesforcePubSubSchemaError(
                f"{where} has field {unknown[0]!r}, which the {self.name} schema does not have (its fields: "
                f"{', '.join(self.fields)})")
        record: dict[str, Any] = {}
        for name, spec in self.fields.items():
            value = event.get(name)
            if value is None and defaults and defaults.get(name) is not None:
                value = defaults[name]
            if name not in event and value is None:
                if "default" in spec:
                    record[name] = spec["default"]
                    continue
                if "null" not in [_type_name(b) for b in _branches(spec["type"])]:
                    raise SalesforcePubSubSchemaError(f"{where} has no value for {name!r}, which the {self.name} "
                                                      "schema requires")
            record[name] = _coerce(value, spec["type"], name, where)
        try:
            validate(record, self.parsed, raise_errors=True)
        except ValidationError as exc:
            raise SalesforcePubSubSchemaError(f"{where} does not fit the {self.name} schema: "
                                              f"{_describe_validation(exc, self.schema)}") from None
        return record

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """The Avro (schemaless) payload of a record from :meth:`prepare`."""
        import fastavro

        out = io.BytesIO()
        fastavro.schemaless_writer(out, self.parsed, dict(record))
        return out.getvalue()


def _coerce(value: Any, field_type: Any, name: str, where: str) -> Any:
    """Text from CSV (and datetimes) converted to a scalar field's Avro type; anything else unchanged."""
    names = [_type_name(b) for b in _branches(field_type)]
    kinds = [n for n in names if n != "null"]
    if isinstance(value, datetime) and ("long" in kinds):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return int(moment.timestamp() * 1000)
    if not isinstance(value, str) or "string" in kinds or not kinds:
        return value
    text = value.strip()
    if text == "" and "null" in names:
        return None
    try:
        if "boolean" in kinds and text.lower() in ("true", "false"):
            return text.lower() == "true"
        if "long" in kinds or "int" in kinds:
            try:
                return int(text)
            except ValueError:
                if "long" not in kinds:
                    raise
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
                moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
                return int(moment.timestamp() * 1000)  # DateTime fields are epoch milliseconds
        if "double" in kinds or "float" in kinds:
            return float(text)
    except ValueError:
        raise SalesforcePubSubSchemaError(
            f"{where}: field {name!r} is {_short(value)!r}, which is not a {' or '.join(kinds)}") from None
    return value


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _VALUE_CHARS else text[:_VALUE_CHARS] + "..."


def _describe_validation(exc: Any, schema: Mapping[str, Any]) -> str:
    """The field fastavro complained about (``Parent.Child`` for a compound field's part), what it holds
    and which types would fit."""
    errors = list(getattr(exc, "errors", None) or ())
    if not errors:
        return _short(str(exc)) or "invalid record"
    # A leaf value is the real culprit (not the union around the nested record that holds it).
    leaves = [e for e in errors if not isinstance(e.datum, (dict, list))]
    culprit = (leaves or errors)[0]
    expected = sorted({_type_name(e.schema) for e in errors if e.field == culprit.field})
    record_name, _, child = str(culprit.field).rpartition(".")
    top = {str(schema.get("name")), f"{schema.get('namespace')}.{schema.get('name')}"}
    field_path = child
    if record_name not in top:
        short = record_name.rsplit(".", 1)[-1]
        for spec in schema.get("fields") or []:
            names = {_type_name(b) if not isinstance(b, dict) else str(b.get("name")) for b in _branches(spec["type"])}
            if short in names or record_name in names:
                field_path = f"{spec['name']}.{child}"
                break
    value = culprit.datum
    return (f"field {field_path!r} is {_short(value)!r} ({type(value).__name__}), "
            f"expected {' or '.join(expected)}")


def cached_schema(schema_id: str) -> AvroSchema | None:
    """The parsed schema of ``schema_id`` if this process has it."""
    return _CACHE.get(schema_id)


def remember_schema(schema_id: str, schema_json: str) -> AvroSchema:
    """Parse and cache a schema (once per schema id and process).

    :raises SalesforcePubSubSchemaError: the text is not a usable Avro record schema.
    """
    with _LOCK:
        known = _CACHE.get(schema_id)
        if known is None:
            known = _CACHE[schema_id] = AvroSchema(schema_id, schema_json)
        return known
