"""SOAP faults: the one translation of zeep's exceptions into ours, and a fault body parser.

The body parser (stdlib XML through ``core/safexml.py``) lets the shared retry policy recognise a
transient fault (``UNABLE_TO_LOCK_ROW``, ``SERVER_UNAVAILABLE``, concurrency ``REQUEST_LIMIT_EXCEEDED``)
in an HTTP 500 fault body, as it does for REST's JSON errors.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_salesforce_suite.core.errors import (
    ErrorDetail,
    SalesforceApiError,
    SalesforceSuiteError,
    error_from_response,
    register_body_parser,
    soap_fault_class,
)
from airflow_provider_salesforce_suite.core.safexml import local_name, parse_xml_safely

FAULT_STATUS = 500


def _fault_values(elements: Any) -> dict[str, str]:
    return {local_name(el.tag): (el.text or "").strip() for el in elements if isinstance(el.tag, str)}


def parse_soap_fault(body: bytes, content_type: str) -> list[ErrorDetail] | None:
    """A ``soapenv:Fault``'s exception code and message; None for any other body."""
    if b"Fault" not in body or b"Envelope" not in body:
        return None
    root = parse_xml_safely(body)
    if root is None or local_name(root.tag) != "Envelope":
        return None
    values = _fault_values(root.iter())
    code = values.get("exceptionCode") or values.get("faultcode", "").rsplit(":", 1)[-1]
    if not code:
        return None
    return [ErrorDetail(code, values.get("exceptionMessage") or values.get("faultstring", ""))]


register_body_parser(parse_soap_fault)


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def fault_error(fault: Any, operation: str) -> SalesforceApiError:
    """Our exception for a zeep ``Fault``.

    :param fault: the ``zeep.exceptions.Fault``.
    :param operation: the partner operation that raised it.
    """
    detail = fault.detail
    fault_type, values = None, {}
    if detail is not None:
        first = next((child for child in detail if isinstance(child.tag, str)), None)
        if first is not None:
            fault_type = local_name(first.tag)
            values = _fault_values(first)
    fault_code = fault.code or None
    code = values.get("exceptionCode") or (fault_code.rsplit(":", 1)[-1] if fault_code else None)
    message = values.get("exceptionMessage") or fault.message or "(no message)"
    cls = soap_fault_class(code, fault_type, operation)
    return cls(FAULT_STATUS, code, message, fault_code=fault_code, fault_type=fault_type,
               row=_int(values.get("row")), column=_int(values.get("column")), method=operation)


def unsafe_xml_error(operation: str, status: int | None, address: str, what: str = "a DTD") -> SalesforceApiError:
    """The error for a response that declares a DTD or entities (refused, never parsed).

    :param operation: the partner operation.
    :param status: HTTP status of the response.
    :param address: the endpoint.
    :param what: what the response declares.
    """
    return SalesforceApiError(status or 0, "UNSAFE_XML", f"response to {operation} refused: it declares {what} "
                              "(never parsed)", method=operation, path=address)


def translate(exc: Exception, operation: str, status: int | None, address: str) -> Exception:
    """The exception to raise for anything zeep raised during ``operation`` (the one boundary).

    :param exc: what zeep (or the XML parser under it) raised.
    :param operation: the partner operation.
    :param status: HTTP status of the last response, if one arrived.
    :param address: the endpoint, for errors without a fault (only its path is kept).
    """
    from zeep import exceptions as zx

    if isinstance(exc, SalesforceSuiteError):
        return exc
    if isinstance(exc, zx.Fault):
        if exc.code is None and not hasattr(exc.detail, "tag"):  # not a SOAP fault: an HTML/text error page
            body = exc.detail if isinstance(exc.detail, bytes) else str(exc.detail or "").encode()
            return error_from_response(status or 0, None, body, method=operation, path=address)
        return fault_error(exc, operation)
    if isinstance(exc, (zx.DTDForbidden, zx.EntitiesForbidden)):
        what = "a DTD" if isinstance(exc, zx.DTDForbidden) else "an entity declaration"
        return unsafe_xml_error(operation, status, address, what)
    if isinstance(exc, zx.TransportError):
        return error_from_response(exc.status_code or status or 0, None, exc.content, method=operation, path=address)
    if isinstance(exc, (zx.XMLSyntaxError, zx.XMLParseError)):
        return SalesforceApiError(status or 0, "INVALID_XML",
                                  f"response to {operation} is not valid XML: {exc}", method=operation, path=address)
    if isinstance(exc, (zx.ValidationError, TypeError)):
        return ValueError(f"invalid arguments for the SOAP {operation} call: {exc}")
    if isinstance(exc, zx.Error):
        return SalesforceApiError(status or 0, None, f"{operation}: {type(exc).__name__}: {exc}",
                                  method=operation, path=address)
    return exc
