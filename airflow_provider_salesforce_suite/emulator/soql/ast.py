"""The SOQL abstract syntax tree: what the parser produces and the compiler consumes.

Nodes carry the 1-based row/column of their first token for Salesforce-style error messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union


@dataclass
class Node:
    """Base of all nodes: a source position."""

    line: int
    column: int


@dataclass
class FieldRef(Node):
    """A field path ``Account.Owner.Name`` (``parts`` as written)."""

    parts: list[str]

    @property
    def text(self) -> str:
        """The path as written."""
        return ".".join(self.parts)


@dataclass
class FuncCall(Node):
    """A function ``COUNT(Id)``, ``FIELDS(ALL)``, ``CALENDAR_YEAR(CreatedDate)``; ``arg`` may be None."""

    name: str
    arg: FieldRef | FuncCall | None


Operand = Union[FieldRef, FuncCall]


@dataclass
class Literal(Node):
    """A value: ``kind`` is string, number, date, datetime, null, boolean or dateliteral.

    For ``dateliteral``, ``value`` is ``(NAME, n or None)``; for ``string`` it is the raw text
    between the quotes (escapes are resolved by the compiler, which knows whether it is a LIKE).
    """

    kind: str
    value: Any
    raw: str


@dataclass
class SelectField(Node):
    """A selected field path, optionally aliased (aliases only matter in aggregate queries)."""

    ref: FieldRef
    alias: str | None = None


@dataclass
class SelectFunc(Node):
    """A selected function call, optionally aliased."""

    func: FuncCall
    alias: str | None = None


@dataclass
class SelectSubquery(Node):
    """A child relationship subquery ``(SELECT ... FROM Contacts)``."""

    query: Query


@dataclass
class SelectTypeOf(Node):
    """``TYPEOF`` (accepted, its ELSE/first branch fields are used)."""

    relationship: str
    fields: list[FieldRef]


SelectItem = Union[SelectField, SelectFunc, SelectSubquery, SelectTypeOf]


@dataclass
class Compare(Node):
    """``left OP value`` with OP one of = != <> < > <= >=."""

    left: Operand
    op: str
    value: Literal


@dataclass
class Like(Node):
    """``left LIKE 'pattern'``."""

    left: Operand
    value: Literal


@dataclass
class InList(Node):
    """``left [NOT] IN (values)``."""

    left: Operand
    values: list[Literal]
    negate: bool


@dataclass
class InSubquery(Node):
    """Semi-join / anti-join ``left [NOT] IN (SELECT ...)``."""

    left: Operand
    query: Query
    negate: bool


@dataclass
class Includes(Node):
    """Multi-select picklist ``INCLUDES`` / ``EXCLUDES``."""

    left: Operand
    values: list[Literal]
    exclude: bool


@dataclass
class BoolOp(Node):
    """``AND`` / ``OR`` of several conditions."""

    op: str
    items: list[Condition]


@dataclass
class Not(Node):
    """``NOT condition``."""

    item: Condition


Condition = Union[Compare, Like, InList, InSubquery, Includes, BoolOp, Not]


@dataclass
class OrderItem(Node):
    """One ORDER BY key; ``nulls_first`` is None for Salesforce's default."""

    expr: Operand
    descending: bool = False
    nulls_first: bool | None = None


@dataclass
class Query(Node):
    """A (sub)query."""

    select: list[SelectItem]
    sobject: str
    sobject_line: int
    sobject_column: int
    where: Condition | None = None
    group_by: list[Operand] = field(default_factory=list)
    having: Condition | None = None
    order_by: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None
    scope: str | None = None
    with_clause: str | None = None
    for_clause: str | None = None
