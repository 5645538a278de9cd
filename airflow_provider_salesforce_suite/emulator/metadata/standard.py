"""Expands the compact standard-object spec (``standard_objects.json``) into definitions.

The JSON keeps one short line per field; this module fills in everything else a describe result
has (labels, system fields, owner, defaults), so the data file stays readable.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

from .model import FieldDef, ObjectDef, PicklistValue

_DEFAULT_LENGTH = {"string": 255, "textarea": 255, "email": 80, "phone": 40, "url": 255,
                   "combobox": 255, "picklist": 255, "multipicklist": 4099}


def label_of(name: str) -> str:
    """A human label from an API name: ``AnnualRevenue`` -> ``Annual Revenue``, ``AccountId`` -> ``Account ID``.

    :param name: an API name.
    """
    base = name[:-3] if name.endswith(("__c", "__e")) else name
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", base).replace("_", " ").split()
    if words and words[-1] == "Id":
        words[-1] = "ID"
    return " ".join(words)


def make_field(name: str, ftype: str, *args: Any, custom: bool = False) -> FieldDef:
    """Build a field from the compact spec ``[type, length|precision, scale?, "flags", {overrides}]``.

    :param name: API name.
    :param ftype: Salesforce type.
    :param args: the rest of the spec.
    :param custom: whether it is a custom field.
    """
    ints = [a for a in args if isinstance(a, int)]
    flags: list[str] = []
    overrides: dict[str, Any] = {}
    values_spec: str | None = None
    for arg in args:
        if isinstance(arg, str):
            # "vals:" runs to the end of the string because values contain spaces.
            head, sep, vals = arg.partition("vals:")
            flags += head.split()
            if sep:
                values_spec = vals
        elif isinstance(arg, dict):
            overrides.update(arg)
    fdef = FieldDef(name=name, type=ftype, label=label_of(name), custom=custom)
    if ftype in ("double", "currency", "percent"):
        fdef.precision, fdef.scale = (ints + [18, 0])[:2] if len(ints) != 1 else (ints[0], 0)
    elif ftype == "int":
        fdef.digits = ints[0] if ints else 9
    elif ftype in _DEFAULT_LENGTH or ftype == "base64":
        fdef.length = ints[0] if ints else _DEFAULT_LENGTH.get(ftype, 0)
        if ftype == "base64" and not fdef.length:
            fdef.length = 0
    elif ftype in ("reference", "id"):
        fdef.length = 18
    if values_spec is not None:
        for raw in values_spec.split("|"):
            default = raw.startswith("*")
            value = raw[1:] if default else raw
            fdef.picklist.append(PicklistValue(value, value, default))
    for flag in flags:
        key, _, val = flag.partition(":")
        if key == "req":
            fdef.nillable = False
        elif key == "ro":
            fdef.createable = fdef.updateable = False
        elif key == "create":
            fdef.updateable = False
        elif key == "ext":
            fdef.external_id = fdef.id_lookup = True
        elif key == "uniq":
            fdef.unique = True
        elif key == "idl":
            fdef.id_lookup = True
        elif key == "dflt":
            fdef.defaulted_on_create = True
        elif key == "name":
            fdef.name_field = True
        elif key == "auto":
            fdef.auto_number = True
            fdef.nillable = False
            fdef.defaulted_on_create = True
        elif key == "fullname":
            fdef.computed = "fullname"
        elif key == "restricted":
            fdef.restricted_picklist = True
        elif key == "cascade":
            fdef.cascade_delete = True
        elif key == "ref":
            fdef.reference_to = val.split(",")
        elif key == "rel":
            fdef.relationship_name = val
        elif key == "crel":
            fdef.child_relationship_name = val
        elif key == "def":
            fdef.default_value = {"true": True, "false": False}.get(val, val)
            fdef.defaulted_on_create = True
        else:
            raise ValueError(f"unknown field flag {flag!r} on {name}")
    if ftype == "boolean":
        # Checkboxes are never null in Salesforce: they default to false on create.
        fdef.nillable = False
        fdef.defaulted_on_create = True
        if fdef.default_value is None:
            fdef.default_value = False
    if any(p.default for p in fdef.picklist):
        fdef.defaulted_on_create = True
    if "label" in overrides:
        fdef.label = overrides["label"]
    return fdef


def system_fields(obj: ObjectDef, *, owner: bool) -> list[FieldDef]:
    """The audit fields every sObject has, plus ``OwnerId`` where the object is owned.

    :param obj: the object (for labels).
    :param owner: whether to add ``OwnerId``.
    """
    fields = [
        make_field("Id", "id", "ro idl", {"label": f"{obj.label} ID"}),
        make_field("IsDeleted", "boolean", "ro", {"label": "Deleted"}),
        make_field("CreatedDate", "datetime", "ro req dflt"),
        make_field("CreatedById", "reference", "ro req dflt ref:User rel:CreatedBy"),
        make_field("LastModifiedDate", "datetime", "ro req dflt"),
        make_field("LastModifiedById", "reference", "ro req dflt ref:User rel:LastModifiedBy"),
        make_field("SystemModstamp", "datetime", "ro req dflt", {"label": "System Modstamp"}),
    ]
    fields[0].nillable = False
    if owner:
        owner_field = make_field("OwnerId", "reference", "req dflt ref:Group,User rel:Owner")
        fields.insert(1, owner_field)
    return fields


def load_standard_objects() -> list[ObjectDef]:
    """All standard objects from the packaged ``standard_objects.json``."""
    text = resources.files(__package__).joinpath("standard_objects.json").read_text("utf-8")
    spec = json.loads(text)
    objects = []
    for name, ospec in spec.items():
        if name.startswith("_"):
            continue
        flags = ospec.get("o", "").split()
        obj = ObjectDef(name=name, label=ospec["l"], label_plural=ospec["lp"], key_prefix=ospec["p"])
        obj.createable = "nocreate" not in flags
        obj.updateable = "noupdate" not in flags
        obj.deletable = "nodelete" not in flags
        obj.setup = "setup" in flags
        for fdef in system_fields(obj, owner="owner" in flags):
            obj.add_field(fdef)
        name_flag = next((f for f in flags if f.startswith("name")), None)
        if name_flag:
            length = int(name_flag[4:] or 255)
            obj.add_field(make_field("Name", "string", length, "req name idl", {"label": f"{obj.label} Name"}))
        for fname, fspec in ospec["f"].items():
            obj.add_field(make_field(fname, fspec[0], *fspec[1:]))
        objects.append(obj)
    return objects
