"""Loads a user's custom schema file (JSON): custom objects ``Foo__c``, platform events
``Foo__e`` and custom fields ``Bar__c`` on any object.

Format (objects and fields keyed by name)::

    {
      "objects": {
        "Invoice__c": {"label": "Invoice", "pluralLabel": "Invoices",
                       "nameField": {"type": "autonumber", "label": "Invoice Number"},
                       "fields": {"Amount__c": {"type": "currency", "precision": 18, "scale": 2}}},
        "Order_Shipped__e": {"fields": {"OrderId__c": {"type": "text", "length": 18}}}
      },
      "fields": {"Account": {"Region__c": {"type": "picklist", "values": ["EMEA", "AMER"]}}}
    }

or the list form (each object and field a spec with its ``name``), as ``docs/emulator.md`` shows::

    {"objects": [{"name": "Invoice__c", "fields": [{"name": "Amount__c", "type": "currency"}]}],
     "fields": {"Account": [{"name": "Region__c", "type": "picklist", "values": ["EMEA", "AMER"]}]}}

Field keys: ``type`` (text, textarea, longtextarea, email, phone, url, picklist, multipicklist,
checkbox, number, currency, percent, date, datetime, lookup, masterdetail), ``label``,
``length``, ``precision``, ``scale``, ``required``, ``unique``, ``externalId``, ``values``,
``restricted`` (default true, as Salesforce's setup UI), ``default``, ``referenceTo``,
``relationshipName``, ``childRelationshipName``, ``reparentable``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from .model import FieldDef, Metadata, ObjectDef, PicklistValue
from .standard import label_of, system_fields

_TYPES = {
    "text": "string", "string": "string", "textarea": "textarea", "longtextarea": "textarea",
    "richtextarea": "textarea", "email": "email", "phone": "phone", "url": "url",
    "picklist": "picklist", "multipicklist": "multipicklist", "checkbox": "boolean",
    "boolean": "boolean", "number": "double", "double": "double", "currency": "currency",
    "percent": "percent", "date": "date", "datetime": "datetime", "lookup": "reference",
    "masterdetail": "reference",
}
_DEFAULT_LENGTH = {"string": 255, "textarea": 255, "email": 80, "phone": 40, "url": 255,
                   "picklist": 255, "multipicklist": 4099}
_PREFIX_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class SchemaError(ValueError):
    """A custom schema file is invalid (a configuration error, not a Salesforce API error)."""


def custom_field(name: str, spec: dict[str, Any]) -> FieldDef:
    """Build a custom field definition from its schema-file spec.

    :param name: API name, ending in ``__c``.
    :param spec: the field's spec.
    """
    if not name.endswith("__c"):
        raise SchemaError(f"custom field {name!r} must end with '__c'")
    raw_type = str(spec.get("type", "text")).lower()
    if raw_type not in _TYPES:
        raise SchemaError(f"custom field {name!r}: unknown type {raw_type!r}")
    ftype = _TYPES[raw_type]
    fdef = FieldDef(name=name, type=ftype, label=spec.get("label") or label_of(name), custom=True)
    if ftype in _DEFAULT_LENGTH:
        default_len = 32768 if raw_type in ("longtextarea", "richtextarea") else _DEFAULT_LENGTH[ftype]
        fdef.length = int(spec.get("length", default_len))
    if ftype in ("double", "currency", "percent"):
        fdef.precision = int(spec.get("precision", 18))
        fdef.scale = int(spec.get("scale", 0 if ftype != "currency" else 2))
    fdef.nillable = not spec.get("required", False)
    fdef.unique = bool(spec.get("unique", False))
    fdef.external_id = bool(spec.get("externalId", False))
    fdef.id_lookup = fdef.external_id or fdef.unique
    values = spec.get("values", [])
    for i, value in enumerate(values):
        if isinstance(value, dict):
            fdef.picklist.append(
                PicklistValue(value["value"], value.get("label", value["value"]), bool(value.get("default")))
            )
        else:
            fdef.picklist.append(PicklistValue(str(value), str(value), False))
    if ftype in ("picklist", "multipicklist"):
        fdef.restricted_picklist = bool(spec.get("restricted", True))
        if any(p.default for p in fdef.picklist):
            fdef.defaulted_on_create = True
    if "default" in spec:
        fdef.default_value = spec["default"]
        fdef.defaulted_on_create = True
    if ftype == "boolean":
        fdef.nillable = False
        fdef.defaulted_on_create = True
        fdef.default_value = bool(spec.get("default", False))
    if ftype == "reference":
        target = spec.get("referenceTo")
        if not target:
            raise SchemaError(f"custom field {name!r}: lookup needs 'referenceTo'")
        fdef.reference_to = [target] if isinstance(target, str) else list(target)
        fdef.length = 18
        fdef.relationship_name = spec.get("relationshipName") or name[:-3] + "__r"
        child = spec.get("childRelationshipName")
        fdef.child_relationship_name = (child if child.endswith("__r") else child + "__r") if child else None
        if raw_type == "masterdetail":
            fdef.nillable = False
            fdef.cascade_delete = True
            fdef.updateable = bool(spec.get("reparentable", False))
    return fdef


def _next_prefix(metadata: Metadata, kind: str) -> str:
    head = "e0" if kind == "event" else "a0"
    for char in _PREFIX_CHARS:
        if metadata.by_prefix(head + char) is None:
            return head + char
    raise SchemaError("too many custom objects")


def _custom_object(metadata: Metadata, name: str, spec: dict[str, Any]) -> ObjectDef:
    if name.endswith("__e"):
        kind = "event"
    elif name.endswith("__c"):
        kind = "custom"
    else:
        raise SchemaError(f"custom object {name!r} must end with '__c' (or '__e' for a platform event)")
    label = spec.get("label") or label_of(name)
    obj = ObjectDef(
        name=name, label=label, label_plural=spec.get("pluralLabel") or label + "s",
        key_prefix=spec.get("keyPrefix") or _next_prefix(metadata, kind), kind=kind,
    )
    fields_spec = spec.get("fields", {})
    has_master = any(str(f.get("type", "")).lower() == "masterdetail" for f in fields_spec.values())
    if kind == "event":
        # Platform events are insert-only and not queryable.
        obj.updateable = obj.deletable = obj.queryable = False
    for fdef in system_fields(obj, owner=kind == "custom" and not has_master):
        obj.add_field(fdef)
    if kind == "custom":
        name_spec = spec.get("nameField", {})
        auto = str(name_spec.get("type", "text")).lower() == "autonumber"
        name_field = FieldDef(
            name="Name", type="string", label=name_spec.get("label", f"{label} Name"),
            length=80 if not auto else 30, name_field=True, id_lookup=True,
            nillable=auto, auto_number=auto, defaulted_on_create=True,
            createable=not auto, updateable=not auto,
        )
        obj.add_field(name_field)
    for fname, fspec in fields_spec.items():
        obj.add_field(custom_field(fname, fspec))
    return obj


_TOP_KEYS = ("objects", "fields")


def _named_specs(entries: Any, what: str) -> list[tuple[str, dict[str, Any]]]:
    """(name, spec) pairs of ``{"Name__c": {...}}`` or of the list form ``[{"name": "Name__c", ...}]``.

    :param entries: the mapping or list from the schema document.
    :param what: what the entries are, for errors (``objects``, ``fields of Invoice__c`` ...).
    """
    if isinstance(entries, dict):
        pairs = list(entries.items())
    elif isinstance(entries, list):
        pairs = []
        for index, item in enumerate(entries):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
                raise SchemaError(f"{what}[{index}] must be an object with a \"name\", got {item!r:.80}")
            pairs.append((item["name"], {k: v for k, v in item.items() if k != "name"}))
    else:
        raise SchemaError(f"{what} must be an object keyed by name or a list of objects with a \"name\", "
                          f"got {type(entries).__name__}")
    for name, spec in pairs:
        if not isinstance(spec, dict):
            raise SchemaError(f"{what}: {name!r} must be an object, got {type(spec).__name__}")
    return pairs


def apply_schema(metadata: Metadata, schema: Any) -> None:
    """Add a parsed schema document's objects and fields to ``metadata``.

    :param metadata: the registry to extend.
    :param schema: the parsed JSON document (objects and fields keyed by name, or in the list form).
    :raises SchemaError: the document is malformed (the message names the part).
    """
    if not isinstance(schema, dict):
        raise SchemaError(f"the document must be a JSON object with \"objects\" and/or \"fields\", "
                          f"got {type(schema).__name__}")
    unknown = sorted(set(schema) - set(_TOP_KEYS))
    if unknown:
        raise SchemaError(f"unknown key(s) {', '.join(map(repr, unknown))}; expected \"objects\" and/or \"fields\"")
    for name, spec in _named_specs(schema.get("objects", {}), "objects"):
        spec = {**spec, "fields": dict(_named_specs(spec.get("fields", {}), f"fields of {name}"))}
        metadata.add(_custom_object(metadata, name, spec))
    fields_by_object = schema.get("fields", {})
    if not isinstance(fields_by_object, dict):
        raise SchemaError(f"fields must be an object keyed by sObject name, got {type(fields_by_object).__name__}")
    for obj_name, fields in fields_by_object.items():
        obj = metadata.get(obj_name)
        if obj is None:
            raise SchemaError(f"custom fields for unknown object {obj_name!r}")
        for fname, fspec in _named_specs(fields, f"fields of {obj_name}"):
            obj.add_field(custom_field(fname, fspec))
    for obj in metadata.objects.values():
        for fdef in obj.fields.values():
            for target in fdef.reference_to:
                if metadata.get(target) is None:
                    raise SchemaError(f"{obj.name}.{fdef.name} references unknown object {target!r}")


def load_schema_file(metadata: Metadata, path: str | os.PathLike) -> None:
    """Read a JSON schema file and apply it.

    :param metadata: the registry to extend.
    :param path: the file.
    :raises SchemaError: the file cannot be read, is not JSON or is malformed (the message names it).
    """
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except OSError as exc:
        raise SchemaError(f"schema file {os.fspath(path)!r} cannot be read: {exc.strerror}") from None
    except ValueError as exc:
        raise SchemaError(f"schema file {os.fspath(path)!r} is not valid JSON: {exc}") from None
    try:
        apply_schema(metadata, document)
    except SchemaError as exc:
        raise SchemaError(f"schema file {os.fspath(path)!r}: {exc}") from None
    except (TypeError, ValueError, KeyError) as exc:  # a value of the wrong kind deep in a spec
        raise SchemaError(f"schema file {os.fspath(path)!r} is malformed: {type(exc).__name__}: {exc}") from None
