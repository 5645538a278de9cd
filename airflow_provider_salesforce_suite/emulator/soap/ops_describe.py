"""Describe calls, built by the REST describe builders and rendered as partner XML."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import SalesforceApiError
from ..metadata.describe import describe_global, describe_object
from .ops_data import require_type
from .render import element

if TYPE_CHECKING:
    from .routes import SoapCall

#: REST-only keys (links) the partner describe results do not have.
_REST_ONLY = frozenset({"urls"})
MAX_DESCRIBE = 100


def _soap_shape(value: Any) -> Any:
    """The REST describe JSON without REST-only keys (recursively)."""
    if isinstance(value, dict):
        return {k: _soap_shape(v) for k, v in value.items() if k not in _REST_ONLY}
    if isinstance(value, list):
        return [_soap_shape(v) for v in value]
    return value


def _fields(result: dict[str, Any]) -> str:
    return "".join(element(k, v) for k, v in _soap_shape(result).items())


def describe_global_op(call: SoapCall) -> str:
    """``describeGlobal()``: DescribeGlobalResult."""
    return f"<result>{_fields(describe_global(call.store.metadata, call.version))}</result>"


def _describe(call: SoapCall, name: str | None) -> str:
    obj = require_type(call, name)
    return f"<result>{_fields(describe_object(call.store.metadata, obj, call.version))}</result>"


def describe_sobject(call: SoapCall) -> str:
    """``describeSObject(sObjectType)``."""
    return _describe(call, call.envelope.text("sObjectType"))


def describe_sobjects(call: SoapCall) -> str:
    """``describeSObjects(sObjectType[])``: up to 100 results, in request order."""
    names = call.envelope.texts("sObjectType")
    if len(names) > MAX_DESCRIBE:
        raise SalesforceApiError("EXCEEDED_ID_LIMIT", f"describeSObjects: more than {MAX_DESCRIBE} types requested")
    return "".join(_describe(call, name) for name in names)


OPERATIONS = {"describeGlobal": describe_global_op, "describeSObject": describe_sobject,
              "describeSObjects": describe_sobjects}
