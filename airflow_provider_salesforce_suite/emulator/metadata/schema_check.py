"""Checks parts of a schema file against the shipped JSON Schema (``schema_file.schema.json``).

Errors name the path of the bad entry (``objects.Invoice__c.fields.Amount__c.precision``) rather
than the JSON Schema keyword that failed, so a user can find it in the file.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

#: The JSON Schema of schema files, shipped in the package (point editors at it with ``"$schema"``).
JSON_SCHEMA_PATH = Path(str(resources.files(__package__).joinpath("schema_file.schema.json")))


@lru_cache(maxsize=1)
def json_schema() -> dict[str, Any]:
    """The parsed JSON Schema of schema files."""
    return json.loads(JSON_SCHEMA_PATH.read_text("utf-8"))


@lru_cache(maxsize=None)
def _validator(definition: str) -> Callable[[Any], Any]:
    # fastjsonschema compiles the schema to Python once: a snapshot's tens of thousands of field
    # specs check in a fraction of a second, where an interpreting validator takes seconds.
    import fastjsonschema

    return fastjsonschema.compile(_subschema(definition))


def _subschema(definition: str) -> dict[str, Any]:
    return {"$defs": json_schema()["$defs"], "$ref": f"#/$defs/{definition}"}


def _path(prefix: str, parts: Sequence[Any]) -> str:
    text = prefix
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) or str(part).isdigit() else f".{part}"
    return text


def problem(definition: str, value: Any, where: str) -> str | None:
    """What is wrong with ``value`` as a ``definition`` of the JSON Schema, or ``None``.

    :param definition: a name under ``$defs`` (``objectSpec``, ``fieldSpec``, ``record`` ...).
    :param value: the parsed part of the document.
    :param where: its path in the document, prefixed to the bad entry's path.
    """
    from fastjsonschema import JsonSchemaValueException

    try:
        _validator(definition)(value)
    except JsonSchemaValueException as exc:
        return _explain(definition, value, where) or f"{_path(where, exc.path[1:])}: {exc.message}"
    return None


def _explain(definition: str, value: Any, where: str) -> str | None:
    """jsonschema's account of a rejected value (it names the bad value and picks the most relevant
    branch of a ``oneOf``); Airflow requires jsonschema, and it runs only once something is wrong."""
    try:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import best_match
    except ImportError:  # pragma: no cover - Airflow installs it
        return None
    error = best_match(Draft202012Validator(_subschema(definition)).iter_errors(value))
    return None if error is None else f"{_path(where, error.absolute_path)}: {error.message}"
