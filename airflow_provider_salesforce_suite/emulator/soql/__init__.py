"""SOQL: a lark grammar parsed into an AST and compiled to parameterized SQLite SQL."""

from __future__ import annotations

from .engine import QueryEngine
from .parser import parse

__all__ = ["QueryEngine", "parse"]
