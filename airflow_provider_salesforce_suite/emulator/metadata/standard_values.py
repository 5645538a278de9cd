"""The picklist-value setup objects (``LeadStatus``, ``OpportunityStage``, ``CaseStatus`` ...) and
record types, as metadata.

``standard_values.json`` holds each value set's default rows and the rules it imposes on the
records using it (``Opportunity.StageName`` fills ``Probability`` ...). This module reads that file,
makes the target picklists' describe values follow a set's rows, and adds ``RecordTypeId`` to the
objects that can have record types. The store seeds the rows and applies the rules
(:mod:`..store.setup_rules`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from .model import FieldDef, Metadata, PicklistValue
from .standard import make_field


@dataclass(frozen=True)
class ValueSet:
    """One picklist-value setup object and the record field whose values it holds.

    :param sobject: the setup object (``LeadStatus``).
    :param target: ``(object, field)`` of the picklist it defines (``("Lead", "Status")``), if any.
    :param rows: default rows, complete (``ApiName``, ``MasterLabel``, ``SortOrder``, flags).
    :param always: record field -> setup field, derived from the row on every write of the picklist.
    :param fill: record field -> setup field, derived only when the request does not give the field.
    :param stamp: record datetime field -> setup flag: set to now when the flag turns true, cleared
        when it turns false (``Case.ClosedDate``).
    """

    sobject: str
    target: tuple[str, str] | None
    rows: tuple[Mapping[str, Any], ...]
    always: Mapping[str, str] = field(default_factory=dict)
    fill: Mapping[str, str] = field(default_factory=dict)
    stamp: Mapping[str, str] = field(default_factory=dict)


#: ForecastCategoryName (label) -> ForecastCategory (API enum), per the OpportunityStage reference.
_FORECAST_CATEGORY = {"Omitted": "Omitted", "Pipeline": "Pipeline", "Best Case": "BestCase",
                      "Commit": "Forecast", "Closed": "Closed"}


@lru_cache(maxsize=1)
def _document() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("standard_values.json").read_text("utf-8")
    return json.loads(text)


def _complete(sobject: str, index: int, row: Mapping[str, Any]) -> dict[str, Any]:
    full: dict[str, Any] = {"ApiName": row["MasterLabel"], "SortOrder": index + 1, **row}
    if sobject == "OpportunityStage":
        full.setdefault("IsActive", True)
        full["ForecastCategory"] = _FORECAST_CATEGORY[full["ForecastCategoryName"]]
    return full


@lru_cache(maxsize=1)
def value_sets() -> tuple[ValueSet, ...]:
    """Every value set of ``standard_values.json``, with complete default rows."""
    sets = []
    for name, spec in _document().items():
        if name.startswith("_"):
            continue
        target = tuple(spec["field"].split(".", 1)) if "field" in spec else None
        rows = tuple(_complete(name, i, row) for i, row in enumerate(spec["rows"]))
        sets.append(ValueSet(name, target, rows, spec.get("set", {}), spec.get("fill", {}),  # type: ignore[arg-type]
                             spec.get("stamp", {})))
    return tuple(sets)


def record_type_objects(metadata: Metadata) -> list[str]:
    """The objects that can have record types: the standard ones Salesforce allows, and every custom object.

    :param metadata: the registry.
    """
    standard = [n for n in _document()["_record_types"] if metadata.get(n) is not None]
    return standard + sorted(o.name for o in metadata.objects.values() if o.kind == "custom")


def set_picklist(fdef: FieldDef, rows: Iterable[Mapping[str, Any]]) -> None:
    """Make a picklist's values the given setup rows (``ApiName``, ``MasterLabel``, ``IsDefault``,
    ``IsActive``), in order; an inactive row is listed inactive and cannot be chosen.

    :param fdef: the picklist field.
    :param rows: the setup rows, sorted by ``SortOrder``.
    """
    fdef.picklist = [PicklistValue(r["ApiName"], r.get("MasterLabel") or r["ApiName"], bool(r.get("IsDefault")),
                                   bool(r.get("IsActive", True))) for r in rows]
    fdef.defaulted_on_create = fdef.defaulted_on_create or any(p.default for p in fdef.picklist)


def apply_standard_values(metadata: Metadata) -> None:
    """Picklists from the default setup rows, ``RecordTypeId`` fields and ``RecordType.SobjectType`` values.

    Run once the custom schema files are loaded (custom objects can have record types too).

    :param metadata: the registry to complete.
    """
    for value_set in value_sets():
        if value_set.target is None:
            continue
        obj = metadata.get(value_set.target[0])
        fdef = obj.field(value_set.target[1]) if obj is not None else None
        if fdef is not None:
            set_picklist(fdef, value_set.rows)
    capable = record_type_objects(metadata)
    for name in capable:
        obj = metadata.objects[name]
        if obj.field("RecordTypeId") is None:
            obj.add_field(make_field("RecordTypeId", "reference", "ref:RecordType rel:RecordType",
                                     {"label": "Record Type ID"}))
    record_type = metadata.get("RecordType")
    sobject_type = record_type.field("SobjectType") if record_type is not None else None
    if sobject_type is not None:
        sobject_type.picklist = [PicklistValue(name, metadata.objects[name].label) for name in capable]
