"""The emulator's one error type, raised by models and handlers, rendered once per wire format."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SalesforceApiError(Exception):
    """An error as Salesforce reports it.

    Models (the store, SOQL engine, validation) raise it; the HTTP layer renders it in the wire
    format of the API that was called (REST JSON list, OAuth JSON, SOAP fault, Bulk XML ...).

    :param error_code: Salesforce's ``errorCode`` (``INVALID_FIELD``, ``NOT_FOUND`` ...).
    :param message: Salesforce's human message.
    :param status: HTTP status the REST API answers with.
    :param fields: field names the error is about.
    :param extra: extra keys some errors carry (e.g. the ids of an ambiguous upsert).
    """

    error_code: str
    message: str
    status: int = 400
    fields: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"{self.error_code}: {self.message}")

    def to_rest(self) -> dict:
        """One element of the REST API's error list ``[{"message","errorCode","fields"}]``."""
        body = {"message": self.message, "errorCode": self.error_code}
        if self.fields or self.error_code in _FIELD_ERRORS:
            body["fields"] = list(self.fields)
        body.update(self.extra)
        return body


# Error codes whose REST rendering always has a "fields" key, as Salesforce's does.
_FIELD_ERRORS = frozenset(
    {
        "REQUIRED_FIELD_MISSING",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        "STRING_TOO_LONG",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "DUPLICATE_VALUE",
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        "JSON_PARSER_ERROR",
        "FIELD_INTEGRITY_EXCEPTION",
        "INVALID_CROSS_REFERENCE_KEY",
        "DUPLICATE_EXTERNAL_ID",
    }
)
