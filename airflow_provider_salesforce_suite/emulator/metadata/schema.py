"""Loads a schema file (JSON): custom objects ``Foo__c``, platform events ``Foo__e``, custom
fields ``Bar__c`` on any object, whole objects as ``salesforce-suite-emulator snapshot`` writes
them, and seed records.

Format (objects and fields keyed by name)::

    {
      "objects": {
        "Invoice__c": {"label": "Invoice", "pluralLabel": "Invoices",
                       "nameField": {"type": "autonumber", "label": "Invoice Number"},
                       "fields": {"Amount__c": {"type": "currency", "precision": 18, "scale": 2}}},
        "Order_Shipped__e": {"fields": {"OrderId__c": {"type": "text", "length": 18}}}
      },
      "fields": {"Account": {"Region__c": {"type": "picklist", "values": ["EMEA", "AMER"]}}},
      "records": {"Account": [{"Id": "001000000000042AAA", "Name": "Acme", "Region__c": "EMEA"}]}
    }

or the list form (each object and field a spec with its ``name``), as ``docs/emulator.md`` shows::

    {"objects": [{"name": "Invoice__c", "fields": [{"name": "Amount__c", "type": "currency"}]}],
     "fields": {"Account": [{"name": "Region__c", "type": "picklist", "values": ["EMEA", "AMER"]}]}}

The shipped JSON Schema (:data:`~.schema_check.JSON_SCHEMA_PATH`) documents every key; each object
and field spec is checked against it, and an error names the bad entry's path. An object with
``"complete": true`` lists every field itself (describe-level keys such as ``nillable``,
``createable``, ``idLookup`` win over what the setup-UI keys imply); one naming a standard object
the emulator already has adds the fields it lacks and takes the file's lengths and picklists.
"""

from __future__ import annotations

import json
import os
from typing import Any

from .model import FieldDef, Metadata, ObjectDef, PicklistValue, SeedRecords
from .schema_check import problem
from .standard import label_of, system_fields

_TYPES = {
    "text": "string", "string": "string", "textarea": "textarea", "longtextarea": "textarea",
    "richtextarea": "textarea", "email": "email", "phone": "phone", "url": "url",
    "picklist": "picklist", "multipicklist": "multipicklist", "checkbox": "boolean",
    "boolean": "boolean", "number": "double", "double": "double", "currency": "currency",
    "percent": "percent", "date": "date", "datetime": "datetime", "lookup": "reference",
    "masterdetail": "reference", "reference": "reference", "id": "id", "int": "int",
    "combobox": "combobox", "base64": "base64", "time": "time", "encryptedtext": "encryptedstring",
    "encryptedstring": "encryptedstring",
}
_DEFAULT_LENGTH = {"string": 255, "textarea": 255, "email": 80, "phone": 40, "url": 255,
                   "picklist": 255, "multipicklist": 4099, "combobox": 255, "encryptedstring": 175}
#: Describe-level keys of a field spec and the FieldDef attribute each sets (applied last).
_DESCRIBE_KEYS = {
    "label": "label", "length": "length", "precision": "precision", "scale": "scale", "digits": "digits",
    "nillable": "nillable", "createable": "createable", "updateable": "updateable",
    "defaultedOnCreate": "defaulted_on_create", "unique": "unique", "externalId": "external_id",
    "idLookup": "id_lookup", "nameField": "name_field", "autoNumber": "auto_number",
    "cascadeDelete": "cascade_delete", "custom": "custom",
}
#: Fields the store writes on every insert: a complete object without them gets the emulator's own.
_STORE_FIELDS = ("Id", "IsDeleted", "CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById",
                 "SystemModstamp")
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
    return build_field(name, spec, custom=True)


def build_field(name: str, spec: dict[str, Any], *, custom: bool) -> FieldDef:
    """Build a field definition from its schema-file spec (setup-UI keys, then describe-level keys).

    :param name: API name.
    :param spec: the field's spec.
    :param custom: whether it is a custom field (a spec's ``custom`` key wins).
    """
    raw_type = str(spec.get("type", "text")).lower()
    if raw_type not in _TYPES:
        raise SchemaError(f"field {name!r}: unknown type {raw_type!r}")
    ftype = _TYPES[raw_type]
    fdef = FieldDef(name=name, type=ftype, label=spec.get("label") or label_of(name), custom=custom)
    if ftype in _DEFAULT_LENGTH:
        default_len = 32768 if raw_type in ("longtextarea", "richtextarea") else _DEFAULT_LENGTH[ftype]
        fdef.length = int(spec.get("length", default_len))
    if ftype in ("double", "currency", "percent"):
        fdef.precision = int(spec.get("precision", 18))
        fdef.scale = int(spec.get("scale", 0 if ftype != "currency" else 2))
    if ftype == "int":
        fdef.digits = int(spec.get("digits", 9))
    fdef.nillable = not spec.get("required", False)
    fdef.unique = bool(spec.get("unique", False))
    fdef.external_id = bool(spec.get("externalId", False))
    fdef.id_lookup = fdef.external_id or fdef.unique
    for value in spec.get("values", []):
        if isinstance(value, dict):
            fdef.picklist.append(PicklistValue(value["value"], value.get("label", value["value"]),
                                               bool(value.get("default")), bool(value.get("active", True))))
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
    if ftype == "id":
        fdef.length = 18
    if ftype == "reference":
        _reference(fdef, raw_type, spec)
    if spec.get("calculated"):
        fdef.computed = "formula"  # not evaluated: read-only, null unless seeded
        fdef.createable = fdef.updateable = False
    for key, attr in _DESCRIBE_KEYS.items():
        if key in spec:
            setattr(fdef, attr, spec[key])
    if "restricted" in spec:
        fdef.restricted_picklist = bool(spec["restricted"])
    return fdef


def _reference(fdef: FieldDef, raw_type: str, spec: dict[str, Any]) -> None:
    """The lookup / master-detail part of a field spec."""
    target = spec.get("referenceTo")
    if not target:
        raise SchemaError(f"field {fdef.name!r}: lookup needs 'referenceTo'")
    fdef.reference_to = [target] if isinstance(target, str) else list(target)
    fdef.length = 18
    if "relationshipName" in spec:  # a snapshot says null for references without one
        fdef.relationship_name = spec["relationshipName"]
    else:
        fdef.relationship_name = (fdef.name[:-3] if fdef.name.endswith("__c") else fdef.name) + "__r"
    child = spec.get("childRelationshipName")
    if child and fdef.custom and not child.endswith("__r"):
        child += "__r"
    fdef.child_relationship_name = child or None
    if raw_type == "masterdetail":
        fdef.nillable = False
        fdef.cascade_delete = True
        fdef.updateable = bool(spec.get("reparentable", False))


def _next_prefix(metadata: Metadata, kind: str) -> str:
    head = "e0" if kind == "event" else "a0"
    for char in _PREFIX_CHARS:
        if metadata.by_prefix(head + char) is None:
            return head + char
    raise SchemaError("too many custom objects")


def _object_kind(name: str) -> str:
    if name.endswith("__e"):
        return "event"
    if name.endswith("__c"):
        return "custom"
    return "standard"


def _custom_object(metadata: Metadata, name: str, spec: dict[str, Any], where: str) -> ObjectDef:
    kind = _object_kind(name)
    if kind == "standard":
        raise SchemaError(f"{where}: custom object {name!r} must end with '__c' (or '__e' for a platform "
                          "event); a standard object the emulator does not have needs \"complete\": true "
                          "and its \"keyPrefix\"")
    label = spec.get("label") or label_of(name)
    obj = ObjectDef(
        name=name, label=label, label_plural=spec.get("pluralLabel") or label + "s",
        key_prefix=_key_prefix(metadata, name, kind, spec, where), kind=kind,
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
        obj.add_field(_field(fname, fspec, f"{where}.fields.{fname}", complete=False))
    _object_flags(obj, spec)
    return obj


def _complete_object(metadata: Metadata, name: str, spec: dict[str, Any], where: str) -> ObjectDef:
    """An object whose spec lists every field (a snapshot's), new to this org."""
    kind = _object_kind(name)
    if kind == "standard" and not spec.get("keyPrefix"):
        raise SchemaError(f"{where}: the emulator has no standard object {name!r}; its spec needs \"keyPrefix\"")
    label = spec.get("label") or label_of(name)
    obj = ObjectDef(
        name=name, label=label, label_plural=spec.get("pluralLabel") or label + "s",
        key_prefix=_key_prefix(metadata, name, kind, spec, where), kind=kind,
    )
    fields_spec = spec.get("fields", {})
    for fname, fspec in fields_spec.items():
        obj.add_field(_field(fname, fspec, f"{where}.fields.{fname}", complete=True))
    for fdef in system_fields(obj, owner=False):
        if fdef.name in _STORE_FIELDS and obj.field(fdef.name) is None:
            obj.add_field(fdef)  # the store writes these on every insert
    _object_flags(obj, spec)
    return obj


def _extend_object(obj: ObjectDef, spec: dict[str, Any], where: str) -> None:
    """Add a spec's fields to an object the org already has.

    Fields it already has keep their definition but take the spec's length, picklist values and
    restriction (an org's own, as a snapshot records them, so the org's records load); new fields
    must end in ``__c`` unless the spec is complete.
    """
    complete = bool(spec.get("complete"))
    for fname, fspec in spec.get("fields", {}).items():
        existing = obj.field(fname)
        if existing is None:
            obj.add_field(_field(fname, fspec, f"{where}.fields.{fname}", complete=complete))
            continue
        _check("fieldSpec", fspec, f"{where}.fields.{fname}")
        if existing.length and fspec.get("length"):
            existing.length = int(fspec["length"])
        if existing.type in ("picklist", "multipicklist", "combobox"):
            if fspec.get("values"):
                existing.picklist = build_field(fname, fspec, custom=existing.custom).picklist
            if "restricted" in fspec:
                existing.restricted_picklist = bool(fspec["restricted"])


def _field(name: str, spec: dict[str, Any], where: str, *, complete: bool) -> FieldDef:
    _check("fieldSpec", spec, where)
    try:
        if not complete:
            return custom_field(name, spec)
        return build_field(name, spec, custom=spec.get("custom", name.endswith("__c")))
    except SchemaError as exc:
        raise SchemaError(f"{where}: {exc}") from None


def _key_prefix(metadata: Metadata, name: str, kind: str, spec: dict[str, Any], where: str) -> str:
    prefix = spec.get("keyPrefix")
    if not prefix:
        return _next_prefix(metadata, kind)
    holder = metadata.by_prefix(prefix)
    if holder is not None and holder.name != name:
        raise SchemaError(f"{where}.keyPrefix: {prefix!r} is already the key prefix of {holder.name}")
    return prefix


def _object_flags(obj: ObjectDef, spec: dict[str, Any]) -> None:
    for key in ("createable", "updateable", "deletable", "queryable"):
        if key in spec:
            setattr(obj, key, bool(spec[key]))


def _check(definition: str, value: Any, where: str) -> None:
    found = problem(definition, value, where)
    if found:
        raise SchemaError(found)


_TOP_KEYS = ("$schema", "snapshot", "objects", "fields", "records", "omitted")


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


def apply_schema(metadata: Metadata, schema: Any, source: str = "<schema>") -> None:
    """Add a parsed schema document's objects and fields to ``metadata``, and its seed records.

    :param metadata: the registry to extend.
    :param schema: the parsed JSON document (objects and fields keyed by name, or in the list form).
    :param source: where the document comes from (for errors about its seed records).
    :raises SchemaError: the document is malformed (the message names the part).
    """
    if not isinstance(schema, dict):
        raise SchemaError(f"the document must be a JSON object with \"objects\" and/or \"fields\", "
                          f"got {type(schema).__name__}")
    unknown = sorted(set(schema) - set(_TOP_KEYS))
    if unknown:
        raise SchemaError(f"unknown key(s) {', '.join(map(repr, unknown))}; expected "
                          f"{', '.join(repr(k) for k in _TOP_KEYS[2:])}")
    for key in ("snapshot", "omitted"):
        if key in schema:
            _check("snapshotInfo" if key == "snapshot" else "omitted", schema[key], key)
    for name, spec in _named_specs(schema.get("objects", {}), "objects"):
        where = f"objects.{name}"
        spec = {**spec, "fields": dict(_named_specs(spec.get("fields", {}), f"fields of {name}"))}
        _check("objectSpec", {k: v for k, v in spec.items() if k != "fields"}, where)
        existing = metadata.get(name)
        if existing is not None and existing.kind == "standard":
            _extend_object(existing, spec, where)
        elif spec.get("complete"):
            metadata.add(_complete_object(metadata, name, spec, where))
        else:
            metadata.add(_custom_object(metadata, name, spec, where))
    fields_by_object = schema.get("fields", {})
    if not isinstance(fields_by_object, dict):
        raise SchemaError(f"fields must be an object keyed by sObject name, got {type(fields_by_object).__name__}")
    for obj_name, fields in fields_by_object.items():
        obj = metadata.get(obj_name)
        if obj is None:
            raise SchemaError(f"custom fields for unknown object {obj_name!r}")
        for fname, fspec in _named_specs(fields, f"fields of {obj_name}"):
            obj.add_field(_field(fname, fspec, f"fields.{obj_name}.{fname}", complete=False))
    for obj in metadata.objects.values():
        for fdef in obj.fields.values():
            for target in fdef.reference_to:
                if metadata.get(target) is None:
                    raise SchemaError(f"{obj.name}.{fdef.name} references unknown object {target!r}")
    _seed_records(metadata, schema.get("records"), source)


def _seed_records(metadata: Metadata, records: Any, source: str) -> None:
    """Check the ``records`` section's shape and keep it for the store (values are checked on load)."""
    if records is None:
        return
    if not isinstance(records, dict):
        raise SchemaError(f"records must be an object keyed by sObject name, got {type(records).__name__}")
    kept: dict[str, list[dict[str, Any]]] = {}
    for obj_name, rows in records.items():
        obj = metadata.get(obj_name)
        if obj is None:
            raise SchemaError(f"records.{obj_name}: unknown object {obj_name!r}")
        if not isinstance(rows, list):
            raise SchemaError(f"records.{obj_name} must be a list of records, got {type(rows).__name__}")
        for index, row in enumerate(rows):
            row = {k: v for k, v in row.items() if k != "attributes"} if isinstance(row, dict) else row
            _check("record", row, f"records.{obj_name}[{index}]")
            kept.setdefault(obj.name, []).append(row)
    if kept:
        metadata.seed_records.append(SeedRecords(source, kept))


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
        apply_schema(metadata, document, os.fspath(path))
    except SchemaError as exc:
        raise SchemaError(f"schema file {os.fspath(path)!r}: {exc}") from None
    except (TypeError, ValueError, KeyError) as exc:  # a value of the wrong kind deep in a spec
        raise SchemaError(f"schema file {os.fspath(path)!r} is malformed: {type(exc).__name__}: {exc}") from None
