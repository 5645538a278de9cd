"""Declarative event filters shared by the streaming (CometD) and Pub/Sub triggers.

A filter is ``{"dotted.path": value, ...}`` over an event's ``payload``; every pair must be equal
(AND). Pure Python: triggers import it at module level, so it must stay cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

_JSON_SCALARS = (str, int, float, bool, type(None))


def _json_safe(value: Any) -> bool:
    if isinstance(value, _JSON_SCALARS):
        return True
    if isinstance(value, list):
        return all(_json_safe(item) for item in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _json_safe(v) for k, v in value.items())
    return False


def validate_event_filter(spec: Any) -> dict[str, Any] | None:
    """Check a declarative event filter: ``{"dotted.path": value, ...}`` over the event's ``payload``
    (Salesforce's ``data`` object for CometD, the decoded Avro record for Pub/Sub), every pair must be
    equal (AND). Paths step into objects by key and into lists by index: ``{"sobject.StageName":
    "Closed Won"}``, ``{"event.type": "updated"}``, ``{"payload.ChangeEventHeader.changeType": "UPDATE"}``
    (CometD), ``{"ChangeEventHeader.changeType": "UPDATE"}`` (Pub/Sub).

    :return: the filter as a plain dict, or None for no filter.
    :raises ValueError: not a mapping, an empty or non-string path, or a non-JSON value.
    """
    if spec is None or spec == {}:
        return None
    if not isinstance(spec, Mapping):
        raise ValueError(f"filter must be a mapping of dotted paths to values, got {type(spec).__name__}")
    for path, value in spec.items():
        if not isinstance(path, str) or not path or any(not part for part in path.split(".")):
            raise ValueError(f"filter paths are dotted field paths like 'sobject.StageName', got {path!r}")
        if not _json_safe(value):
            raise ValueError(f"filter value for {path!r} must be JSON (string, number, bool, null, list, "
                             f"object), got {type(value).__name__}")
    return dict(spec)


def _lookup(document: Any, path: str) -> tuple[bool, Any]:
    for part in path.split("."):
        if isinstance(document, Mapping) and part in document:
            document = document[part]
        elif isinstance(document, list) and part.isdigit() and int(part) < len(document):
            document = document[int(part)]
        else:
            return False, None
    return True, document


def compile_event_filter(spec: Mapping[str, Any] | None) -> Callable[[Any], bool]:
    """A predicate over an event (anything with a ``payload`` attribute, or its dict) for
    :func:`validate_event_filter`'s format.

    :param spec: the filter, or None (every event matches).
    """
    checks = validate_event_filter(spec)
    if not checks:
        return lambda event: True

    def matches(event: Any) -> bool:
        payload = event.get("payload") if isinstance(event, Mapping) else event.payload
        for path, wanted in checks.items():
            found, value = _lookup(payload, path)
            if not found or value != wanted or isinstance(value, bool) != isinstance(wanted, bool):
                return False
        return True

    return matches
