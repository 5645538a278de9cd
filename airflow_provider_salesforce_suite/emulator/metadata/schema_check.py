"""Checks parts of a schema file against the shipped JSON Schema (``schema_file.schema.json``).

Errors name the path of the bad entry (``objects.Invoice__c.fields.Amount__c.precision``) rather
than the JSON Schema keyword that failed, so a user can find it in the file.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

#: The JSON Schema of schema files, shipped in the package (point editors at it with ``"$schema"``).
JSON_SCHEMA_PATH = Path(str(resources.files(__package__).joinpath("schema_file.schema.json")))


@lru_cache(maxsize=1)
def json_schema() -> dict[str, Any]:
    """The parsed JSON Schema of schema files."""
    return json.loads(JSON_SCHEMA_PATH.read_text("utf-8"))


@lru_cache(maxsize=None)
def _validator(definition: str) -> Any:
    from jsonschema import Draft202012Validator  # a dependency of Airflow itself; loaded on first use

    schema = json_schema()
    return Draft202012Validator({"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"})


def _path(prefix: str, parts: Any) -> str:
    text = prefix
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def problem(definition: str, value: Any, where: str) -> str | None:
    """What is wrong with ``value`` as a ``definition`` of the JSON Schema, or ``None``.

    :param definition: a name under ``$defs`` (``objectSpec``, ``fieldSpec``, ``record`` ...).
    :param value: the parsed part of the document.
    :param where: its path in the document, prefixed to the bad entry's path.
    """
    from jsonschema.exceptions import best_match

    error = best_match(_validator(definition).iter_errors(value))
    if error is None:
        return None
    return f"{_path(where, error.absolute_path)}: {error.message}"
