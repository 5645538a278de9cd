"""Record validation: client values -> canonical, typed column values, or Salesforce's errors.

Validation is per field and table-driven (one converter closure per field, built once per
object) so bulk loads of a million rows stay cheap. Checks that need the database (references
exist, unique values) live in the store.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from .. import ids
from ..errors import SalesforceApiError
from .model import FieldDef, Metadata, ObjectDef

Converter = Callable[[Any], Any]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_JSON_TYPE = {"double": "double", "currency": "double", "percent": "double", "int": "int",
              "boolean": "boolean", "date": "date", "datetime": "datetime"}


def format_datetime(value: dt.datetime) -> str:
    """Salesforce's datetime wire format, always UTC: ``2026-11-28T01:02:03.000+0000``.

    :param value: an aware or naive (taken as UTC) datetime.
    """
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def parse_datetime(text: str) -> dt.datetime | None:
    """Parse an ISO-8601 datetime (``Z``, ``+0000``, ``+00:00``, fractional seconds, or a bare date).

    :param text: the text.
    """
    raw = text.strip()
    if len(raw) == 10:
        try:
            return dt.datetime.combine(dt.date.fromisoformat(raw), dt.time(), dt.timezone.utc)
        except ValueError:
            return None
    raw = raw.replace("Z", "+00:00").replace("z", "+00:00")
    # Python wants "+00:00"; Salesforce also sends "+0000".
    match = re.search(r"([+-])(\d{2})(\d{2})$", raw)
    if match:
        raw = raw[: match.start()] + f"{match.group(1)}{match.group(2)}:{match.group(3)}"
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value


def _parser_error(fdef: FieldDef, value: Any) -> SalesforceApiError:
    # What Salesforce's JSON deserializer answers for e.g. "abc" in a number field.
    kind = "VALUE_STRING" if isinstance(value, str) else (
        "VALUE_TRUE" if value is True else "VALUE_FALSE" if value is False else
        "START_OBJECT" if isinstance(value, dict) else "START_ARRAY" if isinstance(value, list) else
        "VALUE_NUMBER_INT" if isinstance(value, int) else "VALUE_NUMBER_FLOAT"
    )
    shown = value if not isinstance(value, (dict, list)) else ""
    return SalesforceApiError(
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {_JSON_TYPE.get(fdef.type, 'string')} from {kind} value "
        f"{shown} or request may be missing a required field",
        fields=[fdef.name],
    )


def _nul_error(fdef: FieldDef, value: str) -> SalesforceApiError:
    """A text value holding NUL (``\\u0000``, e.g. from a CSV cell): refused, never stored.

    JSON can carry it, but XML (SOAP, Bulk 1.0 XML) cannot, and text columns downstream rarely
    survive it; the record is rejected naming the field and the character's position.

    :param fdef: the field.
    :param value: the value.
    """
    return SalesforceApiError(
        "FIELD_INTEGRITY_EXCEPTION",
        f"{fdef.label}: value contains the invalid character NUL (U+0000) at position {value.index(chr(0)) + 1}",
        fields=[fdef.name],
    )


def _text_converter(fdef: FieldDef) -> Converter:
    max_len = fdef.length
    is_email = fdef.type == "email"
    values = fdef.picklist_values if fdef.restricted_picklist else None
    multi = fdef.type == "multipicklist"
    label, name = fdef.label, fdef.name

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or isinstance(value, (dict, list)):
            raise _parser_error(fdef, value)
        if not isinstance(value, str):
            value = str(value)
        if value == "":
            return None  # Salesforce stores empty strings as null
        if "\x00" in value:
            raise _nul_error(fdef, value)
        if max_len and len(value) > max_len:
            raise SalesforceApiError(
                "STRING_TOO_LONG", f"{label}: data value too large: {value} (max length={max_len})",
                fields=[name],
            )
        if is_email and not _EMAIL.match(value):
            raise SalesforceApiError(
                "INVALID_EMAIL_ADDRESS", f"{label}: invalid email address: {value}", fields=[name]
            )
        if values is not None:
            parts = value.split(";") if multi else [value]
            canonical = []
            for part in parts:
                found = values.get(part.lower())
                if found is None:
                    raise SalesforceApiError(
                        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                        f"{label}: bad value for restricted picklist field: {part}",
                        fields=[name],
                    )
                canonical.append(found)
            value = ";".join(canonical)
        if fdef.check is not None:
            fdef.check(value)
        return value

    return convert


def _number_converter(fdef: FieldDef) -> Converter:
    is_int = fdef.type == "int"
    scale = fdef.scale
    max_int_digits = (fdef.digits if is_int else fdef.precision - fdef.scale) or 18
    label, name = fdef.label, fdef.name

    def convert(value: Any) -> Any:
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise _parser_error(fdef, value)
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise _parser_error(fdef, value) from None
        else:
            number = float(value)
        if math.isnan(number) or math.isinf(number):
            raise _parser_error(fdef, value)
        if is_int:
            if number != int(number):
                raise _parser_error(fdef, value)
            result: int | float = int(number)
        else:
            result = round(number, scale)
        if abs(number) >= 10 ** max_int_digits:
            raise SalesforceApiError(
                "NUMBER_OUTSIDE_VALID_RANGE",
                f"{label}: value outside of valid range on numeric field: {value}",
                fields=[name],
            )
        return result

    return convert


def _boolean_converter(fdef: FieldDef) -> Converter:
    def convert(value: Any) -> Any:
        if value is None:
            return 0  # a checkbox set to null is false
        if value is True or value is False:
            return int(value)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return int(value.lower() == "true")
        raise _parser_error(fdef, value)

    return convert


def _date_converter(fdef: FieldDef) -> Converter:
    def convert(value: Any) -> Any:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise _parser_error(fdef, value)
        if len(value) == 10:
            try:
                return dt.date.fromisoformat(value).isoformat()
            except ValueError:
                raise _parser_error(fdef, value) from None
        # A datetime sent for a date field keeps its (UTC) date, as Salesforce does.
        parsed = parse_datetime(value)
        if parsed is None:
            raise _parser_error(fdef, value)
        return parsed.astimezone(dt.timezone.utc).date().isoformat()

    return convert


def _datetime_converter(fdef: FieldDef) -> Converter:
    def convert(value: Any) -> Any:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise _parser_error(fdef, value)
        parsed = parse_datetime(value)
        if parsed is None:
            raise _parser_error(fdef, value)
        return format_datetime(parsed)

    return convert


def _reference_converter(fdef: FieldDef, metadata: Metadata) -> Converter:
    prefixes = {o.key_prefix for o in (metadata.get(t) for t in fdef.reference_to) if o}
    label, name = fdef.label, fdef.name

    def convert(value: Any) -> Any:
        if value is None or value == "":
            return None
        normalized = ids.normalize(value)
        if normalized is None:
            raise SalesforceApiError(
                "MALFORMED_ID", f"{label}: id value of incorrect type: {value}", fields=[name]
            )
        if normalized[:3] not in prefixes:
            raise SalesforceApiError(
                "FIELD_INTEGRITY_EXCEPTION", f"{label}: id value of incorrect type: {value}",
                fields=[name],
            )
        return normalized

    return convert


def converter_for(fdef: FieldDef, metadata: Metadata) -> Converter:
    """The converter of one field's client values to stored values.

    :param fdef: the field.
    :param metadata: the registry (for reference targets).
    """
    if fdef.type in ("double", "currency", "percent", "int"):
        return _number_converter(fdef)
    if fdef.type == "boolean":
        return _boolean_converter(fdef)
    if fdef.type == "date":
        return _date_converter(fdef)
    if fdef.type == "datetime":
        return _datetime_converter(fdef)
    if fdef.type in ("reference", "id"):
        return _reference_converter(fdef, metadata)
    return _text_converter(fdef)


class RecordValidator:
    """Validates and converts the values of one sObject's records for create and update.

    :param obj: the object.
    :param metadata: the registry.
    """

    def __init__(self, obj: ObjectDef, metadata: Metadata) -> None:
        self.obj = obj
        self._converters = {f.name: converter_for(f, metadata) for f in obj.fields.values()}
        self._by_key: dict[str, FieldDef] = {}
        self.required = [f for f in obj.fields.values() if f.required_on_create]
        self.defaults = self._defaults()

    def _defaults(self) -> dict[str, Any]:
        defaults: dict[str, Any] = {}
        for fdef in self.obj.fields.values():
            if not fdef.createable and fdef.type != "boolean":
                continue
            default = next((p.value for p in fdef.picklist if p.default), fdef.default_value)
            if default is not None:
                defaults[fdef.name] = self._converters[fdef.name](default)
        return defaults

    def _field(self, key: str) -> FieldDef:
        fdef = self._by_key.get(key)
        if fdef is None:
            fdef = self.obj.field(key)
            if fdef is None:
                raise SalesforceApiError(
                    "INVALID_FIELD", f"No such column '{key}' on sobject of type {self.obj.name}"
                )
            self._by_key[key] = fdef
        return fdef

    def clean(self, values: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
        """Canonical field name -> stored value, for the fields present in ``values``.

        :param values: the client's values (``attributes`` is ignored, as Salesforce does).
        :param creating: create (checks createable and required fields) or update.
        """
        out: dict[str, Any] = {}
        for key, value in values.items():
            if key == "attributes":
                continue
            fdef = self._field(key)
            if fdef.name == "Id":
                if creating:
                    raise SalesforceApiError("INVALID_FIELD", "cannot specify Id in an insert call")
                continue
            if not (fdef.createable if creating else fdef.updateable):
                raise SalesforceApiError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {fdef.name}. Please check the security "
                    "settings of this field and verify that it is read/write for your profile or "
                    "permission set.",
                    fields=[fdef.name],
                )
            converted = self._converters[fdef.name](value)
            if converted is None and not creating and not fdef.nillable and fdef.type != "boolean":
                raise SalesforceApiError(
                    "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{fdef.name}]",
                    fields=[fdef.name],
                )
            out[fdef.name] = converted
        if creating:
            missing = [f.name for f in self.required if out.get(f.name) is None]
            if missing:
                raise SalesforceApiError(
                    "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]",
                    fields=missing,
                )
        return out


def api_value(fdef: FieldDef | None, value: Any) -> Any:
    """A stored value as the REST API returns it (checkboxes as booleans, numbers as JSON numbers).

    :param fdef: the field (``None`` for computed values such as ``COUNT()``).
    :param value: the stored value.
    """
    if fdef is None:
        return value
    if fdef.type == "boolean":
        return bool(value) if value is not None else None
    if value is not None and fdef.type in ("double", "currency", "percent"):
        return float(value)
    return value
