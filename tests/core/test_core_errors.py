"""error_from_response: Salesforce JSON list, OAuth dict, HTML, empty and garbage bodies."""

from __future__ import annotations

import json

import pytest

from airflow_provider_salesforce_suite.core.errors import (
    ErrorDetail,
    SalesforceApiError,
    SalesforceMalformedQueryError,
    SalesforceMultipleChoicesError,
    SalesforceNotFoundError,
    SalesforceRequestLimitError,
    SalesforceServerError,
    SalesforceSessionExpiredError,
    SalesforceSuiteError,
    error_from_response,
    parse_error_body,
    register_body_parser,
)

JSON = {"Content-Type": "application/json"}


def test_rest_error_list() -> None:
    body = json.dumps([{"message": "Required fields are missing: [Name]", "errorCode": "REQUIRED_FIELD_MISSING",
                        "fields": ["Name"]}]).encode()
    err = error_from_response(400, JSON, body, "POST", "https://x.my.salesforce.com/services/data/v64.0/sobjects/Account?a=b")
    assert type(err) is SalesforceApiError
    assert (err.status, err.error_code, err.fields, err.method) == (400, "REQUIRED_FIELD_MISSING", ["Name"], "POST")
    assert err.path == "/services/data/v64.0/sobjects/Account"
    assert "Required fields are missing" in str(err) and "a=b" not in str(err)


def test_several_errors_kept() -> None:
    body = json.dumps([{"message": "m1", "errorCode": "A"}, {"message": "m2", "errorCode": "B"}]).encode()
    err = error_from_response(400, JSON, body)
    assert [e.error_code for e in err.errors] == ["A", "B"] and "+1 more" in err.message


@pytest.mark.parametrize(
    "status, code, message, cls",
    [
        (404, "NOT_FOUND", "The requested resource does not exist", SalesforceNotFoundError),
        (300, None, "", SalesforceMultipleChoicesError),
        (403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", SalesforceRequestLimitError),
        (400, "MALFORMED_QUERY", "unexpected token: FROMM", SalesforceMalformedQueryError),
        (401, "INVALID_SESSION_ID", "Session expired or invalid", SalesforceSessionExpiredError),
        (503, "SERVER_UNAVAILABLE", "try later", SalesforceServerError),
    ],
)
def test_classes_by_meaning(status, code, message, cls) -> None:
    item = {"message": message, "errorCode": code} if code else {"message": "multiple"}
    err = error_from_response(status, JSON, json.dumps([item]).encode(), "GET", "/p")
    assert type(err) is cls and isinstance(err, SalesforceSuiteError)


def test_multiple_choices_body_is_a_list_of_urls() -> None:
    body = json.dumps(["/services/data/v64.0/sobjects/Account/001A", "/services/data/v64.0/sobjects/Account/001B"]).encode()
    err = error_from_response(300, JSON, body, "PATCH", "/p")
    assert isinstance(err, SalesforceMultipleChoicesError) and "001A" in err.message


def test_oauth_dict() -> None:
    body = json.dumps({"error": "invalid_grant", "error_description": "authentication failure"}).encode()
    err = error_from_response(400, JSON, body, "POST", "/services/oauth2/token")
    assert err.error_code == "invalid_grant" and err.message == "authentication failure"


def test_html_body_degrades_to_sanitized_snippet() -> None:
    body = (b"<html><head><title>503 Service Unavailable</title><style>p{color:red}</style>"
            b"<script>var t='x';</script></head><body><h1>Down for maintenance</h1>" + b"x" * 1000 + b"</body></html>")
    err = error_from_response(503, {"Content-Type": "text/html"}, body, "GET", "/services/data/v64.0/limits")
    assert isinstance(err, SalesforceServerError) and err.status == 503
    text = str(err)
    assert "503 Service Unavailable" in text and "Down for maintenance" in text
    assert "<" not in err.message and "color:red" not in text and "var t" not in text
    assert len(err.message) < 300


def test_empty_and_garbage_bodies() -> None:
    err = error_from_response(502, {}, b"", "GET", "/x")
    assert "HTTP 502" in str(err) and "empty body" in str(err) and err.error_code is None
    err = error_from_response(400, {}, b"\xff\xfe plainly garbled {", "GET", "/x")
    assert "plainly garbled" in str(err)
    err = error_from_response(500, JSON, b'{"unexpected": 1}', "GET", "/x")
    assert "unparseable" in str(err)


def test_token_in_body_is_not_echoed() -> None:
    token = "00D5g000004ABCD!AQ0AQHk3nq9Jx9vwUYt_very_long_token_part"
    err = error_from_response(500, {}, f"<p>Bearer {token} broke</p>".encode(), "GET", "/x")
    assert token not in str(err) and "AQ0AQHk3nq9" not in str(err)
    err = error_from_response(400, JSON, json.dumps([{"message": f"bad session {token}", "errorCode": "X"}]).encode())
    assert token not in str(err) and token not in err.message


def test_body_parser_extension_point() -> None:
    def bulk_xml(body: bytes, content_type: str):
        if b"<exceptionCode>" not in body:
            return None
        code = body.split(b"<exceptionCode>")[1].split(b"<")[0].decode()
        return [ErrorDetail(error_code=code, message="from xml")]

    register_body_parser(bulk_xml)
    try:
        body = b"<error><exceptionCode>InvalidJob</exceptionCode></error>"
        assert parse_error_body(body)[0].error_code == "InvalidJob"
        assert error_from_response(400, {}, body).error_code == "InvalidJob"
    finally:
        from airflow_provider_salesforce_suite.core import errors

        errors._BODY_PARSERS.remove(bulk_xml)
