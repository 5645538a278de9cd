"""Parses SOSL text with the packaged lark grammar (``sosl.lark``) into a :class:`SearchQuery`."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from importlib import resources

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from ..errors import SalesforceApiError
from ..soql.errors import soql_error

#: Salesforce's default and maximum number of search results.
MAX_RESULTS = 2000
SCOPES = ("ALL", "NAME", "EMAIL", "PHONE", "SIDEBAR")


@functools.lru_cache(maxsize=1)
def _lark() -> Lark:
    grammar = resources.files(__package__).joinpath("sosl.lark").read_text("utf-8")
    return Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True)


@dataclass
class Term:
    """One search word or phrase; ``*`` and ``?`` are wildcards, ``negate`` is ``AND NOT``."""

    text: str
    negate: bool = False


@dataclass
class ObjectSpec:
    """One ``RETURNING`` entry: ``Account(Id, Name WHERE ... LIMIT 5)``.

    :param name: object name as written.
    :param offset: 0-based offset of the name in the SOSL text.
    :param body: the text between the parentheses (``None`` when there are none).
    :param body_offset: 0-based offset of ``body`` in the SOSL text.
    """

    name: str
    offset: int
    body: str | None = None
    body_offset: int = 0


@dataclass
class SearchQuery:
    """A parsed SOSL statement.

    :param sosl: the statement text (for error positions).
    :param alternatives: the search expression in disjunctive normal form (OR of ANDs).
    :param scope: ``ALL``, ``NAME``, ``EMAIL``, ``PHONE`` or ``SIDEBAR``.
    :param objects: the ``RETURNING`` entries (empty: every searchable object, ids only).
    :param limit: the overall ``LIMIT``.
    """

    sosl: str
    alternatives: list[list[Term]]
    scope: str = "ALL"
    objects: list[ObjectSpec] = field(default_factory=list)
    limit: int = MAX_RESULTS


def _malformed(sosl: str, line: int, column: int, message: str) -> SalesforceApiError:
    return soql_error("MALFORMED_SEARCH", sosl, line, column, message)


def _words(expression: str) -> list[str]:
    # Quoted phrases stay whole; parentheses only group, which DNF below flattens.
    return re.findall(r'"(?:\\.|[^"\\])*"|[^\s()]+', expression)


def parse_terms(expression: str) -> list[list[Term]]:
    """The search expression (inside the braces) as OR-ed lists of AND-ed terms.

    :param expression: e.g. ``Acme* AND NOT "Acme Labs" OR Globex``.
    :raises SalesforceApiError: ``INVALID_SEARCH`` when a term is shorter than two characters.
    """
    alternatives: list[list[Term]] = [[]]
    negate = False
    for word in _words(expression):
        upper = word.upper()
        if upper == "OR":
            alternatives.append([])
            continue
        if upper == "AND":
            continue
        if upper == "NOT":
            negate = True
            continue
        text = word[1:-1] if word.startswith('"') and word.endswith('"') and len(word) > 1 else word
        text = re.sub(r"\\(.)", r"\1", text)
        if len(text.replace("*", "").replace("?", "")) < 2:
            raise SalesforceApiError("INVALID_SEARCH", "search term must be longer than one character")
        alternatives[-1].append(Term(text, negate))
        negate = False
    alternatives = [a for a in alternatives if any(not t.negate for t in a)]
    if not alternatives:
        raise SalesforceApiError("INVALID_SEARCH", "search term must be longer than one character")
    return alternatives


def parse(sosl: str) -> SearchQuery:
    """Parse a SOSL statement, or raise ``MALFORMED_SEARCH`` positioned like Salesforce.

    :param sosl: the statement.
    """
    if not re.match(r"\s*FIND\s*[{']", sosl, re.IGNORECASE):
        if re.match(r"\s*FIND\b", sosl, re.IGNORECASE):
            raise SalesforceApiError(
                "MALFORMED_SEARCH", "No search term found. The search term must be enclosed in braces."
            )
    try:
        tree = _lark().parse(sosl)
    except UnexpectedToken as error:
        if error.token.type == "$END":
            lines = sosl.rstrip().split("\n")
            raise _malformed(sosl, len(lines), len(lines[-1]) + 1, "unexpected token: '<EOF>'") from None
        raise _malformed(sosl, error.line, error.column, f"unexpected token: '{error.token}'") from None
    except UnexpectedCharacters as error:
        rest = sosl[error.pos_in_stream:].split()
        raise _malformed(sosl, error.line, error.column,
                         f"unexpected token: '{rest[0] if rest else '<EOF>'}'") from None
    except UnexpectedInput:
        lines = sosl.rstrip().split("\n")
        raise _malformed(sosl, len(lines), len(lines[-1]) + 1, "unexpected token: '<EOF>'") from None
    return _build(sosl, tree)


def _build(sosl: str, tree: Tree) -> SearchQuery:
    term = next(t for t in tree.children if isinstance(t, Token) and t.type == "TERM")
    query = SearchQuery(sosl, parse_terms(str(term)[1:-1]))
    for node in tree.children:
        if not isinstance(node, Tree):
            continue
        if node.data == "in_clause":
            query.scope = str(node.children[0]).upper()
        elif node.data == "returning":
            for spec in node.children:
                name, *body = spec.children
                obj = ObjectSpec(str(name), name.start_pos)
                if body:
                    obj.body, obj.body_offset = str(body[0]), body[0].start_pos
                query.objects.append(obj)
        elif node.data == "limit":
            query.limit = min(int(node.children[0]), MAX_RESULTS)
    return query
