"""SAQL (a useful subset) parsed with a lark grammar and compiled to SQLite SQL.

Supported: ``load``, ``filter ... by``, ``group ... by <field> | (<fields>) | all``,
``foreach ... generate <expr> [as 'alias']`` with ``count() sum() avg() min() max() unique()``,
``order ... by <field> [asc|desc]``, ``limit ... <n>``. Each statement reads a named stream and
writes one; the last statement's stream is the result. Errors raise ``SalesforceApiError``
(HTTP 400, errorCode ``119``, as the Wave query resource answers a query it cannot run).
"""

from __future__ import annotations

from dataclasses import dataclass, field as dc_field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedInput

from ..errors import SalesforceApiError

#: Wave's errorCode for a query that does not parse or cannot run. Not in Salesforce's documentation
#: of the query resource: unconfirmed (docs/contract-tests.md lists it).
SAQL_ERROR_CODE = "119"
_AGGREGATES = {"count", "sum", "avg", "min", "max", "unique"}


def saql_error(message: str) -> SalesforceApiError:
    """The error the query resource answers for bad SAQL.

    :param message: what is wrong.
    """
    return SalesforceApiError(SAQL_ERROR_CODE, message, status=400)


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark((Path(__file__).parent / "saql.lark").read_text(), parser="lalr", propagate_positions=True)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Stream:
    """A compiled stream: its SQL, its columns (name -> ``string``/``numeric``) and pending group."""

    sql: str
    columns: dict[str, str]
    group: list[str] | None = None
    dataset: str = ""


@dataclass
class CompiledQuery:
    """The result of compiling a SAQL query.

    :param sql: a SELECT over dataset tables.
    :param params: its parameters.
    :param columns: result column -> ``string`` or ``numeric``.
    :param datasets: the datasets it loads (as named in ``load``).
    """

    sql: str
    params: list[Any]
    columns: dict[str, str]
    datasets: list[str] = dc_field(default_factory=list)


#: Resolves a ``load`` target to ``(table, {column: type})``; raises when unknown.
Resolver = Callable[[str], "tuple[str, dict[str, str]]"]


def compile_saql(text: str, resolve: Resolver) -> CompiledQuery:
    """Parse and compile ``text``.

    :param text: the SAQL query.
    :param resolve: maps a ``load`` target (``"name"`` or ``"datasetId/versionId"``) to its table.
    :raises SalesforceApiError: a syntax error, an unknown stream, dataset or field.
    """
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise saql_error(f"Syntax error at line {exc.line}, column {exc.column}: "
                         f"unexpected input near {text[exc.pos_in_stream:exc.pos_in_stream + 20]!r}"
                         if getattr(exc, "pos_in_stream", None) is not None else
                         f"Syntax error at line {exc.line}, column {exc.column}") from None
    except LarkError as exc:
        raise saql_error(f"Syntax error: {exc}") from None
    return _Compiler(resolve).run(tree)


class _Compiler:
    def __init__(self, resolve: Resolver) -> None:
        self.resolve = resolve
        self.streams: dict[str, Stream] = {}
        self.params: list[Any] = []
        self.datasets: list[str] = []

    def run(self, tree: Tree) -> CompiledQuery:
        last: Stream | None = None
        for statement in tree.children:
            target, operation = statement.children
            last = getattr(self, "_" + operation.data)(operation)
            self.streams[str(target)] = last
        assert last is not None
        if last.group is not None:
            raise saql_error("A grouped stream must be followed by a foreach statement")
        return CompiledQuery(last.sql, self.params, last.columns, self.datasets)

    def _stream(self, name: Token) -> Stream:
        stream = self.streams.get(str(name))
        if stream is None:
            raise saql_error(f"Undefined stream '{name}' at line {name.line}")
        return stream

    # -- statements ------------------------------------------------------------------------------
    def _load(self, node: Tree) -> Stream:
        target = _unquote(node.children[0])
        table, columns = self.resolve(target)
        self.datasets.append(target)
        return Stream(f"SELECT * FROM {_q(table)}", dict(columns), dataset=target)

    def _filter(self, node: Tree) -> Stream:
        source = self._stream(node.children[0])
        if source.group is not None:
            raise saql_error("filter cannot follow group; filter before grouping or after foreach")
        where, _ = self._expr(node.children[1], source, aggregates=False)
        return Stream(f"SELECT * FROM ({source.sql}) WHERE {where}", source.columns, dataset=source.dataset)

    def _group(self, node: Tree) -> Stream:
        source = self._stream(node.children[0])
        keys = node.children[1]
        fields = [] if keys.data == "group_all" else [self._field(f, source) for f in keys.children]
        return Stream(source.sql, source.columns, group=fields, dataset=source.dataset)

    def _foreach(self, node: Tree) -> Stream:
        source = self._stream(node.children[0])
        grouped = source.group is not None
        parts, columns = [], {}
        for projection in node.children[1:]:
            expr, alias = projection.children[0], projection.children[1] if len(projection.children) > 1 else None
            sql, kind = self._expr(expr, source, aggregates=grouped)
            name = _unquote(alias) if alias is not None else _default_alias(expr)
            if name in columns:
                raise saql_error(f"Duplicate projection name '{name}' in foreach")
            if grouped and not _has_aggregate(expr) and not self._is_group_key(expr, source):
                raise saql_error(f"'{name}' must be a grouping field or an aggregate function after group")
            parts.append(f"{sql} AS {_q(name)}")
            columns[name] = kind
        select = f"SELECT {', '.join(parts)} FROM ({source.sql})"
        if grouped and source.group:
            select += " GROUP BY " + ", ".join(_q(f) for f in source.group)
        return Stream(select, columns, dataset=source.dataset)

    def _order(self, node: Tree) -> Stream:
        source = self._stream(node.children[0])
        if source.group is not None:
            raise saql_error("order cannot follow group; order after foreach")
        keys = []
        for key in node.children[1:]:
            name = self._field(key.children[0], source)
            direction = str(key.children[1]).upper() if len(key.children) > 1 else "ASC"
            keys.append(f"{_q(name)} {direction}")
        return Stream(f"SELECT * FROM ({source.sql}) ORDER BY {', '.join(keys)}", source.columns, dataset=source.dataset)

    def _limit(self, node: Tree) -> Stream:
        source = self._stream(node.children[0])
        if source.group is not None:
            raise saql_error("limit cannot follow group; limit after foreach")
        return Stream(f"SELECT * FROM ({source.sql}) LIMIT {int(node.children[1])}", source.columns,
                      dataset=source.dataset)

    # -- expressions -----------------------------------------------------------------------------
    def _field(self, node: Tree, source: Stream) -> str:
        tokens = node.children
        if len(tokens) == 2 and str(tokens[0]) not in self.streams:
            raise saql_error(f"Undefined stream '{tokens[0]}' at line {tokens[0].line}")
        name = _unquote(tokens[-1])
        if name not in source.columns:
            raise saql_error(f"Unknown field '{name}' in stream at line {tokens[-1].line}; "
                             f"fields are: {', '.join(source.columns)}")
        return name

    def _is_group_key(self, expr: Any, source: Stream) -> bool:
        return isinstance(expr, Tree) and expr.data == "field" and self._field(expr, source) in (source.group or [])

    def _expr(self, node: Any, source: Stream, *, aggregates: bool) -> tuple[str, str]:
        """SQL and type (``string``/``numeric``/``boolean``) of an expression."""
        if isinstance(node, Token):
            raise saql_error(f"Unexpected '{node}'")
        kind = node.data
        ch = node.children
        if kind == "field":
            name = self._field(node, source)
            return _q(name), source.columns[name]
        if kind == "string":
            self.params.append(_unquote(ch[0]))
            return "?", "string"
        if kind == "number":
            self.params.append(float(ch[0]) if any(c in str(ch[0]) for c in ".eE") else int(ch[0]))
            return "?", "numeric"
        if kind == "null":
            return "NULL", "string"
        if kind == "call":
            return self._call(node, source, aggregates)
        if kind in ("or_expr", "and_expr", "sum_expr", "product"):
            sql, out = self._expr(ch[0], source, aggregates=aggregates)
            for i in range(1, len(ch), 2):
                op = str(ch[i])
                right, _ = self._expr(ch[i + 1], source, aggregates=aggregates)
                op = {"&&": "AND", "||": "OR"}.get(op, op.upper())
                sql = f"({sql} {op} {right})"
            return sql, "boolean" if kind in ("or_expr", "and_expr") else out
        if kind == "not_":
            inner, _ = self._expr(ch[1], source, aggregates=aggregates)
            return f"(NOT {inner})", "boolean"
        if kind == "comparison":
            left, _ = self._expr(ch[0], source, aggregates=aggregates)
            right, _ = self._expr(ch[2], source, aggregates=aggregates)
            op = {"==": "IS", "!=": "IS NOT"}.get(str(ch[1]), str(ch[1]))
            return f"({left} {op} {right})", "boolean"
        if kind in ("in_", "not_in"):
            left, _ = self._expr(ch[0], source, aggregates=aggregates)
            values = [c for c in ch[1:] if isinstance(c, Tree)]
            items = [self._expr(v, source, aggregates=aggregates)[0] for v in values]
            neg = "NOT " if kind == "not_in" else ""
            return f"({left} {neg}IN ({', '.join(items)}))", "boolean"
        raise saql_error(f"Unsupported expression '{kind}'")

    def _call(self, node: Tree, source: Stream, aggregates: bool) -> tuple[str, str]:
        func = str(node.children[0]).lower()
        arg = node.children[1] if len(node.children) > 1 else None
        if func in _AGGREGATES and not aggregates:
            raise saql_error(f"Aggregate function {func}() needs a preceding group statement")
        if func == "count":
            if arg is not None:
                inner, _ = self._expr(arg, source, aggregates=False)
                return f"COUNT({inner})", "numeric"
            return "COUNT(*)", "numeric"
        if arg is None:
            raise saql_error(f"{func}() takes one argument")
        inner, kind = self._expr(arg, source, aggregates=False)
        if func == "unique":
            return f"COUNT(DISTINCT {inner})", "numeric"
        if func in ("sum", "avg") and kind != "numeric":
            raise saql_error(f"{func}() needs a measure (numeric field)")
        return f"{func.upper()}({inner})", kind if func in ("min", "max") else "numeric"


def _unquote(token: Any) -> str:
    text = str(token)
    if len(text) >= 2 and text[0] in "\"'" and text[-1] == text[0]:
        text = text[1:-1]
        return text.replace("\\" + token[0], token[0]).replace("\\\\", "\\")
    return text


def _has_aggregate(node: Any) -> bool:
    if isinstance(node, Token):
        return False
    if node.data == "call" and str(node.children[0]).lower() in _AGGREGATES:
        return True
    return any(_has_aggregate(c) for c in node.children if c is not None)


def _default_alias(node: Any) -> str:
    if isinstance(node, Tree) and node.data == "field":
        return _unquote(node.children[-1])
    if isinstance(node, Tree) and node.data == "call":
        func = str(node.children[0]).lower()
        arg = node.children[1] if len(node.children) > 1 else None
        return func if arg is None else f"{func}_{_default_alias(arg)}"
    return "expr"
