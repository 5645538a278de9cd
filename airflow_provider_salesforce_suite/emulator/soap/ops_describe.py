"""Describe calls, built by the REST describe builders and rendered as partner XML."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import SalesforceApiError
from ..metadata.describe import describe_global, describe_object
from .ops_data import require_type
from .wsdl_shape import shaped

if TYPE_CHECKING:
    from .routes import SoapCall

MAX_DESCRIBE = 100


def describe_global_op(call: SoapCall) -> str:
    """``describeGlobal()``: DescribeGlobalResult."""
    return shaped("result", "DescribeGlobalResult", describe_global(call.store.metadata, call.version))


def _describe(call: SoapCall, name: str | None) -> str:
    obj = require_type(call, name)
    return shaped("result", "DescribeSObjectResult", describe_object(call.store.metadata, obj, call.version))


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
