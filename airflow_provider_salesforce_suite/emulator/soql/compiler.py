"""Compiles a SOQL AST into parameterized SQLite SQL plus a plan that shapes rows into records.

Parent relationship paths become LEFT JOINs (one per distinct path; a polymorphic relationship
such as ``Owner`` or ``What`` joins each target table and COALESCEs). Child subqueries run once
per page for all parent ids of the page. User values only ever travel as SQL parameters;
identifiers in the SQL come from metadata, never from the query text.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from .. import ids
from ..errors import SalesforceApiError
from ..metadata.model import ID_TYPES, NUMBER_TYPES, TEXT_TYPES, FieldDef, Metadata, ObjectDef
from ..metadata.validation import format_datetime, parse_datetime
from . import ast
from .dates import date_range
from .errors import soql_error
from .plan import AggregateOutput, ChildPlan, Plan, RelShape, Shape

AGGREGATES = frozenset({"COUNT", "COUNT_DISTINCT", "SUM", "AVG", "MIN", "MAX"})
# Date functions: SQL over the ISO text (date 'YYYY-MM-DD' or datetime 'YYYY-MM-DDTHH:MM:SS...').
DATE_FUNCTIONS: dict[str, tuple[str, str]] = {
    "CALENDAR_YEAR": ("CAST(substr({0}, 1, 4) AS INTEGER)", "int"),
    "CALENDAR_MONTH": ("CAST(substr({0}, 6, 2) AS INTEGER)", "int"),
    "CALENDAR_QUARTER": ("((CAST(substr({0}, 6, 2) AS INTEGER) + 2) / 3)", "int"),
    "DAY_IN_MONTH": ("CAST(substr({0}, 9, 2) AS INTEGER)", "int"),
    "DAY_IN_WEEK": ("(CAST(strftime('%w', substr({0}, 1, 10)) AS INTEGER) + 1)", "int"),
    "DAY_IN_YEAR": ("CAST(strftime('%j', substr({0}, 1, 10)) AS INTEGER)", "int"),
    "HOUR_IN_DAY": ("CAST(substr({0}, 12, 2) AS INTEGER)", "int"),
    "DAY_ONLY": ("substr({0}, 1, 10)", "date"),
}
# Functions that change presentation only; the emulator returns the stored value.
PASSTHROUGH = frozenset({"TOLABEL", "FORMAT", "CONVERTCURRENCY", "CONVERTTIMEZONE"})
MAX_OFFSET = 2000
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Typed:
    """A compiled operand: SQL expression, Salesforce type, field (if any) and output key."""

    sql: str
    type: str
    fdef: FieldDef | None
    aggregate: bool
    key: str
    path: tuple[str, ...] = ()


@dataclass
class _Rel:
    name: str
    targets: list[tuple[str, ObjectDef]]
    id_sql: str


class _Scope:
    """Aliases and joins of one SELECT statement."""

    def __init__(self, obj: ObjectDef, prefix: str) -> None:
        self.obj = obj
        self.prefix = prefix
        self.base = f"{prefix}0"
        self.rels: dict[tuple[str, ...], _Rel] = {}
        self.joins: list[str] = []
        self._n = 0

    def alias(self) -> str:
        self._n += 1
        return f"{self.prefix}{self._n}"

    def from_sql(self) -> str:
        return " ".join([f"{_q(self.obj.name)} AS {self.base}", *self.joins])


class Compiler:
    """Compiles one query text.

    :param metadata: the org's metadata.
    :param soql: the query text (for error positions).
    :param include_deleted: include recycle-bin rows (queryAll).
    :param today: today's UTC date for relative date literals.
    """

    def __init__(self, metadata: Metadata, soql: str, include_deleted: bool, today: dt.date) -> None:
        self.metadata = metadata
        self.soql = soql
        self.include_deleted = include_deleted
        self.today = today
        self._scopes = 0

    # ----------------------------------------------------------------- errors

    def _error(self, code: str, node: ast.Node | tuple[int, int], message: str) -> SalesforceApiError:
        line, column = (node.line, node.column) if isinstance(node, ast.Node) else node
        return soql_error(code, self.soql, line, column, message)

    def _no_column(self, node: ast.Node, name: str, obj: ObjectDef) -> SalesforceApiError:
        return self._error(
            "INVALID_FIELD", node,
            f"No such column '{name}' on entity '{obj.name}'. If you are attempting to use a custom field, "
            "be sure to append the '__c' after the custom field name. Please reference your WSDL or the "
            "describe call for the appropriate names.",
        )

    def _object(self, query: ast.Query) -> ObjectDef:
        obj = self.metadata.get(query.sobject)
        if obj is None or not obj.queryable:
            raise self._error(
                "INVALID_TYPE", (query.sobject_line, query.sobject_column),
                f"sObject type '{query.sobject}' is not supported. If you are attempting to use a custom "
                "object, be sure to append the '__c' after the entity name. Please reference your WSDL or "
                "the describe call for the appropriate names.",
            )
        return obj

    def _new_scope(self, obj: ObjectDef, kind: str) -> _Scope:
        self._scopes += 1
        return _Scope(obj, f"{kind}{self._scopes}_")

    # ----------------------------------------------------------------- field paths

    def resolve(self, scope: _Scope, ref: ast.FieldRef) -> Typed:
        """Resolve a field path to SQL, adding LEFT JOINs for its relationships.

        :param scope: the statement's scope.
        :param ref: the path.
        """
        parts = list(ref.parts)
        if len(parts) > 1 and parts[0].lower() == scope.obj.name.lower() and scope.obj.relationship(parts[0]) is None:
            parts = parts[1:]  # "Account.Name" on Account
        targets: list[tuple[str, ObjectDef]] = [(scope.base, scope.obj)]
        key: tuple[str, ...] = ()
        canonical: list[str] = []
        for part in parts[:-1]:
            fdef = targets[0][1].relationship(part) if len(targets) == 1 else None
            if fdef is None:
                raise self._error(
                    "INVALID_FIELD", ref,
                    f"Didn't understand relationship '{part}' in field path. If you are attempting to use a "
                    "custom relationship, be sure to append the '__r' after the custom relationship name. "
                    "Please reference your WSDL or the describe call for the appropriate names.",
                )
            key += (part.lower(),)
            rel = scope.rels.get(key)
            if rel is None:
                parent_alias = targets[0][0]
                joined = []
                for target_name in fdef.reference_to:
                    target = self.metadata.get(target_name)
                    if target is None:
                        continue
                    alias = scope.alias()
                    scope.joins.append(
                        f'LEFT JOIN {_q(target.name)} AS {alias} ON {alias}."Id" = {parent_alias}.{_q(fdef.name)}'
                    )
                    joined.append((alias, target))
                id_sql = (f'{joined[0][0]}."Id"' if len(joined) == 1
                          else "COALESCE(" + ", ".join(f'{a}."Id"' for a, _ in joined) + ")")
                rel = scope.rels[key] = _Rel(fdef.relationship_name or part, joined, id_sql)
            canonical.append(rel.name)
            targets = rel.targets
        last = parts[-1]
        if len(targets) > 1 and last.lower() == "type":
            # On a polymorphic relationship (What, Who, Owner) Type is the referenced object's name.
            cases = " ".join(f"WHEN {a}.\"Id\" IS NOT NULL THEN '{o.name}'" for a, o in targets)
            fdef = FieldDef(name="Type", type="string", label="Type")
            return Typed(f"(CASE {cases} END)", "string", fdef, False, "Type", tuple(canonical))
        found = [(alias, obj.field(last)) for alias, obj in targets if obj.field(last) is not None]
        if not found:
            raise self._no_column(ref, last, targets[0][1])
        fdef = found[0][1]
        sql = (f"{found[0][0]}.{_q(fdef.name)}" if len(found) == 1
               else "COALESCE(" + ", ".join(f"{a}.{_q(f.name)}" for a, f in found) + ")")
        return Typed(sql, fdef.type, fdef, False, fdef.name, tuple(canonical))

    def operand(self, scope: _Scope, node: ast.Operand) -> Typed:
        """Compile a field path or function call.

        :param scope: the statement's scope.
        :param node: the operand.
        """
        if isinstance(node, ast.FieldRef):
            return self.resolve(scope, node)
        name = node.name
        if name in AGGREGATES:
            if node.arg is None:
                if name != "COUNT":
                    raise self._error("MALFORMED_QUERY", node, "unexpected token: ')'")
                return Typed("COUNT(*)", "int", None, True, "expr")
            arg = self.operand(scope, node.arg)
            if name == "COUNT":
                return Typed(f"COUNT({arg.sql})", "int", None, True, "expr")
            if name == "COUNT_DISTINCT":
                return Typed(f"COUNT(DISTINCT {arg.sql})", "int", None, True, "expr")
            if name in ("SUM", "AVG") and arg.type not in NUMBER_TYPES:
                raise self._error("MALFORMED_QUERY", node,
                                  f"field {arg.key} does not support aggregate operator {name}")
            result_type = "double" if name == "AVG" else arg.type
            return Typed(f"{name}({arg.sql})", result_type, arg.fdef if name in ("MIN", "MAX") else None,
                         True, "expr")
        if node.arg is None:
            raise self._error("MALFORMED_QUERY", node, f"unexpected token: '{name}'")
        if name in DATE_FUNCTIONS:
            arg = self.operand(scope, node.arg)
            if arg.type not in ("date", "datetime"):
                raise self._error("MALFORMED_QUERY", node, f"{name} only works on date and datetime fields")
            template, result_type = DATE_FUNCTIONS[name]
            return Typed(template.format(arg.sql), result_type, None, arg.aggregate, "expr")
        if name in PASSTHROUGH:
            arg = self.operand(scope, node.arg)
            return Typed(arg.sql, arg.type, arg.fdef, arg.aggregate, arg.key, arg.path)
        raise self._error("MALFORMED_QUERY", node, f"Unknown function: {name}")

    # ----------------------------------------------------------------- values

    def _string(self, literal: ast.Literal, *, like: bool = False) -> str:
        raw = literal.value
        out: list[str] = []
        i = 0
        while i < len(raw):
            char = raw[i]
            if char != "\\":
                out.append(char)
                i += 1
                continue
            nxt = raw[i + 1]
            if like and nxt in "%_\\":
                out.append("\\" + nxt)  # stays escaped for LIKE ... ESCAPE '\'
            elif nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
            elif nxt in "%_":
                out.append("\\" + nxt)
            else:
                raise self._error("MALFORMED_QUERY", literal,
                                  f"Invalid string literal '{raw}'. Illegal character sequence '\\{nxt}' in string literal.")
            i += 2
        return "".join(out)

    def _type_error(self, literal: ast.Literal, target: Typed, expected: str) -> SalesforceApiError:
        quoted = "should be enclosed in quotes" if expected == "string" else "should not be enclosed in quotes"
        return self._error("INVALID_FIELD", literal,
                           f"value of filter criterion for field '{target.key}' must be of type {expected} "
                           f"and {quoted}")

    def value(self, target: Typed, literal: ast.Literal) -> tuple[str, Any, Any]:
        """Convert a literal for comparison with ``target``.

        :return: ``("null", None, None)``, ``("scalar", value, None)`` or ``("range", lo, hi)``.
        """
        kind, ftype = literal.kind, target.type
        if kind == "null":
            return "null", None, None
        if ftype in ID_TYPES:
            if kind != "string":
                raise self._type_error(literal, target, "id")
            text = self._string(literal)
            normalized = ids.normalize(text)
            if normalized is None:
                raise SalesforceApiError("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {text}")
            return "scalar", normalized, None
        if ftype in TEXT_TYPES:
            if kind != "string":
                raise self._type_error(literal, target, "string")
            return "scalar", self._string(literal), None
        if ftype in NUMBER_TYPES:
            if kind != "number":
                raise self._type_error(literal, target, "double" if ftype != "int" else "int")
            return "scalar", literal.value, None
        if ftype == "boolean":
            if kind != "boolean":
                raise self._type_error(literal, target, "boolean")
            return "scalar", int(literal.value), None
        if ftype in ("date", "datetime"):
            wire = "date" if ftype == "date" else "dateTime"
            if kind == "dateliteral":
                name, n = literal.value
                try:
                    start, end = date_range(name, n, self.today)
                except ValueError:
                    raise self._error("MALFORMED_QUERY", literal, f"unexpected token: '{literal.raw}'") from None
                if ftype == "date":
                    return "range", start.isoformat(), end.isoformat()
                return "range", f"{start.isoformat()}T00:00:00.000+0000", f"{end.isoformat()}T00:00:00.000+0000"
            if ftype == "date" and kind == "date":
                return "scalar", literal.value, None
            if ftype == "datetime" and kind == "datetime":
                parsed = parse_datetime(literal.value)
                if parsed is None:
                    raise self._type_error(literal, target, wire)
                return "scalar", format_datetime(parsed), None
            raise self._type_error(literal, target, wire)
        if kind == "string":
            return "scalar", self._string(literal), None
        return "scalar", literal.value, None

    # ----------------------------------------------------------------- conditions

    def condition(self, scope: _Scope, node: ast.Condition, params: list[Any], *, having: bool = False) -> str:
        """Compile a WHERE/HAVING condition, appending its parameters in order.

        :param scope: the statement's scope.
        :param node: the condition.
        :param params: receives the SQL parameters.
        :param having: whether aggregates are allowed (HAVING).
        """
        if isinstance(node, ast.BoolOp):
            return "(" + f" {node.op} ".join(self.condition(scope, i, params, having=having) for i in node.items) + ")"
        if isinstance(node, ast.Not):
            return f"(NOT {self.condition(scope, node.item, params, having=having)})"
        left = self.operand(scope, node.left)
        if left.aggregate and not having:
            raise self._error("MALFORMED_QUERY", node.left,
                              "Aggregate functions are not allowed in the WHERE clause; use HAVING")
        if left.fdef is not None and left.fdef.type in ("textarea",) and not isinstance(node, ast.Compare):
            raise self._error("INVALID_FIELD", node.left, f"field '{left.key}' can not be filtered in a query call")
        if isinstance(node, ast.Compare):
            return self._compare(left, node.op, node.value, params)
        if isinstance(node, ast.Like):
            if node.value.kind != "string" or left.type not in TEXT_TYPES | ID_TYPES:
                raise self._type_error(node.value, left, "string")
            params.append(self._string(node.value, like=True))
            return f"({left.sql} LIKE ? ESCAPE '\\')"
        if isinstance(node, ast.InList):
            parts = []
            has_null = False
            values: list[Any] = []
            for literal in node.values:
                kind, lo, hi = self.value(left, literal)
                if kind == "null":
                    has_null = True
                elif kind == "range":
                    parts.append(self._range(left.sql, "=", lo, hi, params))
                else:
                    values.append(lo)
            if values:
                params.extend(values)
                parts.insert(0, f"{left.sql} IN ({', '.join('?' * len(values))})")
            if has_null:
                parts.append(f"{left.sql} IS NULL")
            test = "(" + " OR ".join(parts) + ")" if parts else "0"
            # SOQL's NOT IN keeps rows whose value is null (SQL would drop them).
            return f"(NOT {test} OR ({left.sql} IS NULL AND NOT {int(has_null)}))" if node.negate else test
        if isinstance(node, ast.InSubquery):
            if left.type not in ID_TYPES:
                raise self._error("INVALID_FIELD", node.left,
                                  f"The left operand of a semi join must be an ID or a reference field: {left.key}")
            sub_sql = self._semi_join(node.query, params)
            if node.negate:
                return f"({left.sql} IS NULL OR {left.sql} NOT IN ({sub_sql}))"
            return f"({left.sql} IN ({sub_sql}))"
        if isinstance(node, ast.Includes):
            if left.type != "multipicklist":
                raise self._error("INVALID_FIELD", node.left,
                                  f"INCLUDES or EXCLUDES operator only valid on multipicklist field: {left.key}")
            alternatives = []
            for literal in node.values:
                if literal.kind != "string":
                    raise self._type_error(literal, left, "string")
                terms = [t.strip() for t in self._string(literal).split(";") if t.strip()]
                clauses = []
                for term in terms:
                    clauses.append(f"(';' || {left.sql} || ';') LIKE ? ESCAPE '\\'")
                    params.append("%;" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ";%")
                alternatives.append("(" + " AND ".join(clauses or ["0"]) + ")")
            test = "(" + " OR ".join(alternatives) + ")"
            return f"({left.sql} IS NULL OR NOT {test})" if node.exclude else f"({left.sql} IS NOT NULL AND {test})"
        raise AssertionError(node)

    def _range(self, sql: str, op: str, lo: Any, hi: Any, params: list[Any]) -> str:
        """A comparison with a date period [lo, hi): Salesforce compares against the whole period."""
        if op == "=":
            params += [lo, hi]
            return f"({sql} >= ? AND {sql} < ?)"
        if op in ("!=", "<>"):
            params += [lo, hi]
            return f"({sql} < ? OR {sql} >= ? OR {sql} IS NULL)"
        bound = {"<": lo, ">=": lo, "<=": hi, ">": hi}[op]
        sql_op = {"<": "<", ">=": ">=", "<=": "<", ">": ">="}[op]
        params.append(bound)
        return f"({sql} {sql_op} ?)"

    def _compare(self, left: Typed, op: str, literal: ast.Literal, params: list[Any]) -> str:
        kind, lo, hi = self.value(left, literal)
        if kind == "null":
            if op == "=":
                return f"({left.sql} IS NULL)"
            if op in ("!=", "<>"):
                return f"({left.sql} IS NOT NULL)"
            return "0"
        if kind == "range":
            return self._range(left.sql, op, lo, hi, params)
        params.append(lo)
        if op in ("!=", "<>"):
            # SOQL's != matches null values too.
            return f"({left.sql} != ? OR {left.sql} IS NULL)"
        return f"({left.sql} {op} ?)"

    def _semi_join(self, query: ast.Query, params: list[Any]) -> str:
        obj = self._object(query)
        scope = self._new_scope(obj, "s")
        if len(query.select) != 1 or not isinstance(query.select[0], ast.SelectField):
            raise self._error("MALFORMED_QUERY", (query.sobject_line, query.sobject_column),
                              "semi join sub-selects can only select one field")
        selected = self.resolve(scope, query.select[0].ref)
        if selected.type not in ID_TYPES:
            raise self._error("INVALID_FIELD", query.select[0],
                              f"The selected field in a semi join sub-select must be an ID or a reference: {selected.key}")
        conditions = [f'{scope.base}."IsDeleted" = 0', f"{selected.sql} IS NOT NULL"]
        sub_params: list[Any] = []
        if query.where is not None:
            conditions.append(self.condition(scope, query.where, sub_params))
        params.extend(sub_params)
        sql = f"SELECT {selected.sql} FROM {scope.from_sql()} WHERE {' AND '.join(conditions)}"
        if query.limit is not None:
            sql += f" LIMIT {int(query.limit)}"
        return sql

    # ----------------------------------------------------------------- queries

    def compile(self, query: ast.Query) -> Plan:
        """Compile the top-level query.

        :param query: the parsed query.
        """
        obj = self._object(query)
        if query.offset is not None and query.offset > MAX_OFFSET:
            raise SalesforceApiError("NUMBER_OUTSIDE_VALID_RANGE",
                                     f"Maximum SOQL offset allowed is {MAX_OFFSET}")
        scope = self._new_scope(obj, "t")
        return self._compile_select(query, scope, child=None)

    def _expand_fields(self, query: ast.Query, func: ast.FuncCall, obj: ObjectDef) -> list[FieldDef]:
        kind = func.arg.text.upper() if isinstance(func.arg, ast.FieldRef) else ""
        if kind not in ("ALL", "STANDARD", "CUSTOM"):
            raise self._error("MALFORMED_QUERY", func, "FIELDS() requires ALL, STANDARD or CUSTOM")
        if kind in ("ALL", "CUSTOM") and (query.limit is None or query.limit > 200):
            raise self._error("MALFORMED_QUERY", func, "The SOQL FIELDS function must have a LIMIT of at most 200")
        return [f for f in obj.fields.values()
                if f.type != "base64" and (kind == "ALL" or (f.custom == (kind == "CUSTOM")))]

    def _compile_select(self, query: ast.Query, scope: _Scope, child: tuple[str, str] | None) -> Plan:
        obj = scope.obj
        has_aggregate = any(
            isinstance(i, ast.SelectFunc) and i.func.name in AGGREGATES for i in query.select
        )
        if has_aggregate or query.group_by:
            if child is not None:
                raise self._error("MALFORMED_QUERY", query.select[0], "Aggregate relationship is used in an unsupported complex sub-query")
            return self._compile_aggregate(query, scope)
        columns: list[str] = [f'{scope.base}."Id"']
        shape = Shape(obj.name, 0)
        rel_shapes: dict[tuple[str, ...], RelShape] = {}
        seen: set[tuple[tuple[str, ...], str]] = set()
        children: list[ChildPlan] = []

        def add_field(typed: Typed, node: ast.Node) -> None:
            marker = (typed.path, typed.key)
            if marker in seen:
                raise self._error("MALFORMED_QUERY", node, f"duplicate field selected: {'.'.join((*typed.path, typed.key))}")
            seen.add(marker)
            target = shape
            rel_key: tuple[str, ...] = ()
            for name in typed.path:
                rel_key += (name.lower(),)
                sub = rel_shapes.get(rel_key)
                if sub is None:
                    rel = scope.rels[rel_key]
                    columns.append(rel.id_sql)
                    sub = rel_shapes[rel_key] = RelShape(name, len(columns) - 1, {o.key_prefix: o.name for _, o in rel.targets})
                    target.entries.append((name, "rel", sub))
                target = sub
            columns.append(typed.sql)
            target.entries.append((typed.key, "leaf", (len(columns) - 1, typed.fdef)))

        for item in query.select:
            if isinstance(item, ast.SelectField):
                add_field(self.resolve(scope, item.ref), item)
            elif isinstance(item, ast.SelectFunc):
                if item.func.name == "FIELDS":
                    for fdef in self._expand_fields(query, item.func, obj):
                        add_field(Typed(f"{scope.base}.{_q(fdef.name)}", fdef.type, fdef, False, fdef.name), item)
                else:
                    typed = self.operand(scope, item.func)
                    if typed.fdef is None:
                        raise self._error("MALFORMED_QUERY", item, f"unexpected token: '{item.func.name}'")
                    add_field(typed, item)
            elif isinstance(item, ast.SelectTypeOf):
                for ref in item.fields:
                    path = ast.FieldRef(ref.line, ref.column, [item.relationship, *ref.parts])
                    add_field(self.resolve(scope, path), ref)
            elif isinstance(item, ast.SelectSubquery):
                if child is not None:
                    raise self._error("MALFORMED_QUERY", (item.query.sobject_line, item.query.sobject_column),
                                      "Nesting of semi join sub-selects is not supported")
                children.append(self._child(item.query, obj))
                shape.entries.append((children[-1].relationship, "child", len(children) - 1))

        params: list[Any] = []
        conditions = [] if self.include_deleted else [f'{scope.base}."IsDeleted" = 0']
        if query.where is not None:
            conditions.append(self.condition(scope, query.where, params))
        fk_sql = None
        if child is not None:
            fk_sql = f"{scope.base}.{_q(child[0])}"
            columns.insert(0, fk_sql)
            shape.shift(1)
        order = self._order_by(scope, query.order_by)
        sql = f"SELECT {', '.join(columns)} FROM {scope.from_sql()}"
        where_sql = " AND ".join(conditions) if conditions else "1"
        plan = Plan(sql=sql, where_sql=where_sql, params=params, order_sql=order, record_shape=shape, children=children,
                    limit=query.limit, offset=query.offset)
        if child is not None:
            plan.fk_sql = fk_sql
        return plan

    def _order_by(self, scope: _Scope, items: list[ast.OrderItem]) -> str:
        parts = []
        for item in items:
            typed = self.operand(scope, item.expr)
            if typed.fdef is not None and typed.fdef.type in ("textarea", "multipicklist", "base64"):
                raise self._error("INVALID_FIELD", item.expr,
                                  f"field '{typed.key}' can not be sorted in a query call")
            nulls_first = item.nulls_first if item.nulls_first is not None else not item.descending
            parts.append(f"{typed.sql} {'DESC' if item.descending else 'ASC'} NULLS {'FIRST' if nulls_first else 'LAST'}")
        return ", ".join(parts)

    def _child(self, query: ast.Query, parent: ObjectDef) -> ChildPlan:
        rel = parent.child(query.sobject)
        if rel is None:
            raise self._error(
                "INVALID_TYPE", (query.sobject_line, query.sobject_column),
                f"Didn't understand relationship '{query.sobject}' in FROM part of query call. If you are "
                "attempting to use a custom relationship, be sure to append the '__r' after the custom "
                "relationship name. Please reference your WSDL or the describe call for the appropriate names.",
            )
        child_obj = self.metadata.objects[rel.child_sobject]
        scope = self._new_scope(child_obj, "c")
        plan = self._compile_select(query, scope, child=(rel.field, rel.relationship_name or ""))
        return ChildPlan(relationship=rel.relationship_name or query.sobject, plan=plan)

    def _compile_aggregate(self, query: ast.Query, scope: _Scope) -> Plan:
        group = [self.operand(scope, g) for g in query.group_by]
        group_sql = {g.sql for g in group}
        columns: list[str] = []
        outputs: list[AggregateOutput] = []
        expr_n = 0
        count_only = False
        for item in query.select:
            if isinstance(item, ast.SelectField):
                typed = self.resolve(scope, item.ref)
                if typed.sql not in group_sql:
                    raise self._error("MALFORMED_QUERY", item, f"Field must be grouped or aggregated: {item.ref.text}")
                key = item.alias or typed.key
            elif isinstance(item, ast.SelectFunc):
                typed = self.operand(scope, item.func)
                if item.func.name == "COUNT" and item.func.arg is None:
                    if len(query.select) != 1 or query.group_by:
                        raise self._error("MALFORMED_QUERY", item, "COUNT() must be the only element in the SELECT list")
                    count_only = True
                if not typed.aggregate and typed.sql not in group_sql:
                    raise self._error("MALFORMED_QUERY", item, f"Field must be grouped or aggregated: {item.func.name}")
                if item.alias:
                    key = item.alias
                else:
                    key = f"expr{expr_n}"
                    expr_n += 1
            else:
                raise self._error("MALFORMED_QUERY", item, "Aggregate query does not support this select item")
            columns.append(typed.sql)
            outputs.append(AggregateOutput(key, typed.type, typed.fdef))
        params: list[Any] = []
        conditions = [] if self.include_deleted else [f'{scope.base}."IsDeleted" = 0']
        if query.where is not None:
            conditions.append(self.condition(scope, query.where, params))
        where_sql = " AND ".join(conditions) if conditions else "1"
        if count_only:
            inner = f"SELECT 1 FROM {scope.from_sql()} WHERE {where_sql}"
            plan = Plan(sql=inner, where_sql="", params=params, order_sql="", record_shape=None, children=[],
                        limit=query.limit, offset=query.offset, count_only=True)
            return plan
        group_by = ", ".join(g.sql for g in group)
        having_sql = ""
        if query.having is not None:
            having_sql = self.condition(scope, query.having, params, having=True)
        order = self._order_by(scope, query.order_by)
        sql = f"SELECT {', '.join(columns)} FROM {scope.from_sql()}"
        return Plan(sql=sql, where_sql=where_sql, params=params, order_sql=order, record_shape=None, children=[],
                    limit=query.limit, offset=query.offset, group_sql=group_by, having_sql=having_sql,
                    aggregate=outputs)


__all__ = ["Compiler", "Typed"]
