"""SOSL: the search language behind ``/search`` and ``/parameterizedSearch`` (lark grammar, SOQL reuse)."""

from .engine import SearchEngine
from .parser import parse

__all__ = ["SearchEngine", "parse"]
