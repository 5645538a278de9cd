"""Query plans for ``/query?explain=``: Salesforce's plan shape, computed from the parsed query.

The emulator's "optimizer" is a sketch of Salesforce's: a filter on an indexed field (Id, the
name field, external ids, unique fields, lookups, CreatedDate, SystemModstamp) with ``=``, ``IN``
or ``LIKE 'x%'`` offers an Index plan whose cost is its selectivity; a TableScan is always
offered, costing more as the table grows. Plans are sorted cheapest first, as Salesforce's are.
"""

from __future__ import annotations

from typing import Any

from ..metadata.model import ObjectDef
from . import ast

_ALWAYS_INDEXED = frozenset({"Id", "CreatedDate", "SystemModstamp", "RecordTypeId", "OwnerId"})


def _indexed(obj: ObjectDef, name: str) -> bool:
    fdef = obj.field(name)
    if fdef is None:
        return False
    return (fdef.name in _ALWAYS_INDEXED or fdef.name_field or fdef.external_id or fdef.unique
            or fdef.type == "reference")


def filter_fields(condition: ast.Condition | None) -> list[tuple[str, bool]]:
    """``(field, selective_operator)`` for each root-object field the WHERE clause filters on.

    :param condition: the parsed WHERE clause.
    """
    if condition is None:
        return []
    if isinstance(condition, ast.BoolOp):
        return [f for item in condition.items for f in filter_fields(item)]
    if isinstance(condition, ast.Not):
        return [(name, False) for name, _ in filter_fields(condition.item)]
    left = getattr(condition, "left", None)
    if not isinstance(left, ast.FieldRef) or len(left.parts) != 1:
        return []
    selective = (
        (isinstance(condition, ast.Compare) and condition.op == "=")
        or (isinstance(condition, ast.InList) and not condition.negate)
        or (isinstance(condition, ast.Like) and not str(condition.value.value).startswith("%"))
    )
    return [(left.parts[0], selective)]


def plans(obj: ObjectDef, query: ast.Query, cardinality: int, sobject_cardinality: int) -> list[dict[str, Any]]:
    """The plans Salesforce would weigh for ``query``, cheapest first.

    :param obj: the FROM object.
    :param query: the parsed query.
    :param cardinality: rows the query matches (before LIMIT).
    :param sobject_cardinality: live rows of the object.
    """
    filtered = filter_fields(query.where)
    table_scan_cost = round(0.65 + sobject_cardinality / 100_000, 4)
    unindexed = sorted({obj.field(n).name for n, _ in filtered if obj.field(n) and not _indexed(obj, n)})
    notes = [{"description": "Not considering filter for optimization because unindexed",
              "fields": [name], "tableEnumOrId": obj.name} for name in unindexed]
    if query.where is None:
        notes.append({"description": "Not considering filter for optimization because unindexed",
                      "fields": ["IsDeleted"], "tableEnumOrId": obj.name})
    result = [{
        "cardinality": cardinality, "fields": [], "leadingOperationType": "TableScan", "notes": notes,
        "relativeCost": table_scan_cost, "sobjectCardinality": sobject_cardinality, "sobjectType": obj.name,
    }]
    index_fields = sorted({obj.field(n).name for n, selective in filtered if selective and _indexed(obj, n)})
    for name in index_fields:
        selectivity = cardinality / max(sobject_cardinality, 1)
        result.append({
            "cardinality": cardinality, "fields": [name], "leadingOperationType": "Index", "notes": [],
            "relativeCost": round(selectivity * 0.9 + 0.0001, 4), "sobjectCardinality": sobject_cardinality,
            "sobjectType": obj.name,
        })
    return sorted(result, key=lambda p: p["relativeCost"])
