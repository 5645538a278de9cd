"""Parses SOQL text into the :mod:`.ast` with the packaged lark grammar (``soql.lark``)."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from ..errors import SalesforceApiError
from . import ast
from .errors import soql_error

@functools.lru_cache(maxsize=1)
def _lark() -> Lark:
    grammar = resources.files(__package__).joinpath("soql.lark").read_text("utf-8")
    # LALR with the contextual lexer: names that are keywords elsewhere (Order, Group) still lex
    # as names where only a name can appear.
    return Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True)


def _pos(item: Any) -> tuple[int, int]:
    if isinstance(item, Token):
        return item.line or 1, item.column or 1
    if isinstance(item, ast.Node):
        return item.line, item.column
    if isinstance(item, Tree) and item.meta and not item.meta.empty:
        return item.meta.line, item.meta.column
    return 1, 1


class _ToAst(Transformer):
    """Turns the lark parse tree into AST nodes."""

    def __init__(self, soql: str) -> None:
        super().__init__()
        self._soql = soql

    # ---- select list
    def field_path(self, items: list[Token]) -> ast.FieldRef:
        line, column = _pos(items[0])
        return ast.FieldRef(line, column, [str(t) for t in items])

    def alias(self, items: list[Token]) -> str:
        return str(items[0])

    def function(self, items: list[Any]) -> ast.FuncCall:
        line, column = _pos(items[0])
        return ast.FuncCall(line, column, str(items[0]).upper(), items[1] if len(items) > 1 else None)

    def select_field(self, items: list[Any]) -> ast.SelectField:
        ref = items[0]
        return ast.SelectField(ref.line, ref.column, ref, items[1] if len(items) > 1 else None)

    def select_func(self, items: list[Any]) -> ast.SelectFunc:
        func = items[0]
        return ast.SelectFunc(func.line, func.column, func, items[1] if len(items) > 1 else None)

    def select_subquery(self, items: list[Any]) -> ast.SelectSubquery:
        query = items[0]
        return ast.SelectSubquery(query.line, query.column, query)

    def typeof(self, items: list[Any]) -> ast.SelectTypeOf:
        line, column = _pos(items[0])
        branches = [i for i in items[1:] if isinstance(i, list)]
        # The ELSE branch (last) applies to every type the emulator resolves.
        fields = branches[-1] if branches else []
        return ast.SelectTypeOf(line, column, str(items[0]), fields)

    def when_clause(self, items: list[Any]) -> list[ast.FieldRef]:
        return items[1:]

    def else_clause(self, items: list[Any]) -> list[ast.FieldRef]:
        return list(items)

    def select_list(self, items: list[Any]) -> list[Any]:
        return list(items)

    # ---- clauses
    def using_scope(self, items: list[Token]) -> tuple[str, str]:
        return "scope", str(items[0])

    def where(self, items: list[Any]) -> tuple[str, Any]:
        return "where", items[0]

    def with_clause(self, items: list[Token]) -> tuple[str, str]:
        return "with_clause", str(items[0]).upper()

    def group_by(self, items: list[Any]) -> tuple[str, list[Any]]:
        return "group_by", list(items)

    def having(self, items: list[Any]) -> tuple[str, Any]:
        return "having", items[0]

    def order_by(self, items: list[Any]) -> tuple[str, list[Any]]:
        return "order_by", list(items)

    def direction(self, items: list[Token]) -> tuple[str, bool]:
        return "direction", str(items[0]).upper() == "DESC"

    def nulls(self, items: list[Token]) -> tuple[str, bool]:
        return "nulls", str(items[0]).upper() == "FIRST"

    def order_item(self, items: list[Any]) -> ast.OrderItem:
        expr = items[0]
        opts = dict(items[1:])
        return ast.OrderItem(expr.line, expr.column, expr, opts.get("direction", False), opts.get("nulls"))

    def limit(self, items: list[Token]) -> tuple[str, int]:
        return "limit", int(items[0])

    def offset(self, items: list[Token]) -> tuple[str, int]:
        return "offset", int(items[0])

    def for_clause(self, items: list[Token]) -> tuple[str, str]:
        return "for_clause", str(items[0]).upper()

    def _query(self, items: list[Any]) -> ast.Query:
        select, sobject, *clauses = items
        query = ast.Query(1, 1, select, str(sobject), *_pos(sobject))
        for key, value in clauses:
            setattr(query, key, value)
        return query

    query = _query
    subquery = _query

    def start(self, items: list[Any]) -> ast.Query:
        return items[0]

    # ---- conditions
    def or_cond(self, items: list[Any]) -> ast.BoolOp:
        return ast.BoolOp(*_pos(items[0]), "OR", list(items))

    def and_cond(self, items: list[Any]) -> ast.BoolOp:
        return ast.BoolOp(*_pos(items[0]), "AND", list(items))

    def not_(self, items: list[Any]) -> ast.Not:
        return ast.Not(*_pos(items[0]), items[1])

    def compare(self, items: list[Any]) -> ast.Compare:
        left, op, value = items
        return ast.Compare(left.line, left.column, left, str(op), value)

    def like(self, items: list[Any]) -> ast.Like:
        return ast.Like(items[0].line, items[0].column, items[0], items[2])

    def in_(self, items: list[Any]) -> ast.InList:
        return ast.InList(items[0].line, items[0].column, items[0], items[2], False)

    def not_in(self, items: list[Any]) -> ast.InList:
        return ast.InList(items[0].line, items[0].column, items[0], items[3], True)

    def in_sub(self, items: list[Any]) -> ast.InSubquery:
        return ast.InSubquery(items[0].line, items[0].column, items[0], items[2], False)

    def not_in_sub(self, items: list[Any]) -> ast.InSubquery:
        return ast.InSubquery(items[0].line, items[0].column, items[0], items[3], True)

    def includes(self, items: list[Any]) -> ast.Includes:
        return ast.Includes(items[0].line, items[0].column, items[0], items[2], False)

    def excludes(self, items: list[Any]) -> ast.Includes:
        return ast.Includes(items[0].line, items[0].column, items[0], items[2], True)

    def value_list(self, items: list[Any]) -> list[ast.Literal]:
        return list(items)

    # ---- literals
    def string(self, items: list[Token]) -> ast.Literal:
        tok = items[0]
        return ast.Literal(*_pos(tok), "string", str(tok)[1:-1], str(tok))

    def number(self, items: list[Token]) -> ast.Literal:
        tok = items[0]
        text = str(tok)
        value: int | float = float(text) if any(c in text for c in ".eE") else int(text)
        return ast.Literal(*_pos(tok), "number", value, text)

    def date(self, items: list[Token]) -> ast.Literal:
        return ast.Literal(*_pos(items[0]), "date", str(items[0]), str(items[0]))

    def datetime(self, items: list[Token]) -> ast.Literal:
        return ast.Literal(*_pos(items[0]), "datetime", str(items[0]), str(items[0]))

    def word(self, items: list[Token]) -> ast.Literal:
        tok = items[0]
        text = str(tok)
        upper = text.upper()
        line, column = _pos(tok)
        if upper == "NULL":
            return ast.Literal(line, column, "null", None, text)
        if upper in ("TRUE", "FALSE"):
            return ast.Literal(line, column, "boolean", upper == "TRUE", text)
        name, _, n = upper.partition(":")
        return ast.Literal(line, column, "dateliteral", (name, int(n) if n else None), text)


def _token_text(token: Token) -> str:
    if token.type == "$END":
        return "<EOF>"
    return str(token)


def parse(soql: str) -> ast.Query:
    """Parse a SOQL query into its AST, or raise MALFORMED_QUERY positioned like Salesforce.

    :param soql: the query text.
    """
    try:
        tree = _lark().parse(soql)
    except UnexpectedToken as error:
        if error.token.type == "$END":
            line, column = _end_position(soql)
        else:
            line, column = error.line, error.column
        raise soql_error("MALFORMED_QUERY", soql, line, column,
                         f"unexpected token: '{_token_text(error.token)}'") from None
    except UnexpectedCharacters as error:
        text = soql[error.pos_in_stream:].split()[0] if soql[error.pos_in_stream:].split() else "<EOF>"
        raise soql_error("MALFORMED_QUERY", soql, error.line, error.column,
                         f"unexpected token: '{text}'") from None
    except (UnexpectedEOF, UnexpectedInput):
        line, column = _end_position(soql)
        raise soql_error("MALFORMED_QUERY", soql, line, column, "unexpected token: '<EOF>'") from None
    try:
        return _ToAst(soql).transform(tree)
    except VisitError as error:
        if isinstance(error.orig_exc, SalesforceApiError):
            raise error.orig_exc from None
        raise


def _end_position(soql: str) -> tuple[int, int]:
    lines = soql.rstrip().split("\n")
    return len(lines), len(lines[-1]) + 1
