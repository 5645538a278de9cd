"""gRPC status + Salesforce's ``error-code`` trailer -> the Pub/Sub exception classes."""

from __future__ import annotations

import pytest

from airflow_provider_salesforce_suite.core.errors import (
    SalesforcePubSubAuthError,
    SalesforcePubSubCommitError,
    SalesforcePubSubError,
    SalesforcePubSubPermissionError,
    SalesforcePubSubReplayIdError,
    SalesforcePubSubSchemaError,
    SalesforcePubSubTopicError,
    pubsub_error,
)

PREFIX = "sfdc.platform.eventbus.grpc"


@pytest.mark.parametrize("grpc_code, error_code, cls", [
    ("UNAUTHENTICATED", f"{PREFIX}.service.auth.error", SalesforcePubSubAuthError),
    ("PERMISSION_DENIED", f"{PREFIX}.service.auth.error", SalesforcePubSubPermissionError),
    ("INVALID_ARGUMENT", f"{PREFIX}.subscription.fetch.replayid.corrupted", SalesforcePubSubReplayIdError),
    ("INVALID_ARGUMENT", f"{PREFIX}.subscription.fetch.replayid.validation.error", SalesforcePubSubReplayIdError),
    ("NOT_FOUND", None, SalesforcePubSubTopicError),
    ("INVALID_ARGUMENT", f"{PREFIX}.topic.not.found", SalesforcePubSubTopicError),
    ("INVALID_ARGUMENT", f"{PREFIX}.managed.subscription.commit.error", SalesforcePubSubCommitError),
    ("INVALID_ARGUMENT", f"{PREFIX}.publish.schema.validation.error", SalesforcePubSubSchemaError),
    ("INTERNAL", None, SalesforcePubSubError),
])
def test_class_by_status_and_error_code(grpc_code, error_code, cls) -> None:
    trailers = [("error-code", error_code.encode()), ("rpc-id", "abc-123")] if error_code else []
    error = pubsub_error(grpc_code, "went wrong rpcId: abc-123", trailers, what="Subscribe to /data/X")
    assert type(error) is cls
    assert error.grpc_code == grpc_code and error.error_code == error_code
    assert str(error).startswith(f"Salesforce Pub/Sub Subscribe to /data/X failed ({grpc_code}")
    if error_code:
        assert error_code in str(error) and error.rpc_id == "abc-123"


def test_wrong_tenant_is_named() -> None:
    error = pubsub_error("PERMISSION_DENIED", "tenant id mismatch", [], what="GetTopic /event/A__e")
    assert isinstance(error, SalesforcePubSubPermissionError) and "tenantid metadata is not this org's id" in str(error)


def test_no_token_in_the_message() -> None:
    token = "00D5E0000000001!AQ0AQJtZ9yS1n3kP6c7d8e9f0a1b2c3d4e5f6g7h8i9j0"
    error = pubsub_error("UNAUTHENTICATED", f"bad accesstoken {token}", [], what="GetTopic /event/A__e")
    assert token not in str(error) and "***" in str(error)
