"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

_PKG = "airflow_provider_salesforce_suite"
_INTEGRATION = "Salesforce"

# Modules per kind. Each API issue adds its modules here when it lands, never before:
# a listed module must exist and import cheaply.
_HOOK_MODULES = [f"{_PKG}.hooks.{name}" for name in ("base", "rest", "pardot", "desk", "bulk", "streaming", "analytics", "soap", "pubsub")]
_OPERATOR_MODULES: list[str] = [f"{_PKG}.operators.rest", f"{_PKG}.operators.bulk", f"{_PKG}.operators.streaming", f"{_PKG}.operators.analytics", f"{_PKG}.operators.soap", f"{_PKG}.operators.desk", f"{_PKG}.operators.pardot", f"{_PKG}.operators.pubsub"]
_SENSOR_MODULES: list[str] = [f"{_PKG}.sensors.bulk", f"{_PKG}.sensors.streaming", f"{_PKG}.sensors.analytics", f"{_PKG}.sensors.pardot", f"{_PKG}.sensors.pubsub"]
_EXTRA_LINKS = [f"{_PKG}.links.{name}" for name in ("SalesforceBulkJobLink", "SalesforceRecordLink",
                                                     "SalesforceAnalyticsDatasetLink")]
_TRIGGER_MODULES: list[str] = [f"{_PKG}.triggers.bulk", f"{_PKG}.triggers.streaming", f"{_PKG}.triggers.analytics", f"{_PKG}.triggers.pardot", f"{_PKG}.triggers.pubsub"]


def _text(label: str, description: str | None = None, default: Any = None) -> dict[str, Any]:
    field: dict[str, Any] = {"label": label, "schema": {"type": ["string", "null"]}}
    if default is not None:
        field["schema"]["default"] = default
    if description:
        field["description"] = description
    return field


def _secret(label: str, description: str | None = None, *, multiline: bool = False) -> dict[str, Any]:
    # "password" is what makes Airflow mask the field in the UI and treat it as sensitive.
    field = _text(label, description)
    field["schema"]["format"] = "password"
    if multiline:
        field["description"] = (description or "") + " (PEM text; or use the file path field)"
    return field


def _typed(label: str, type_: str, description: str, default: Any = None) -> dict[str, Any]:
    field: dict[str, Any] = {"label": label, "schema": {"type": [type_, "null"]}, "description": description}
    if default is not None:
        field["schema"]["default"] = default
    return field


# Transport settings every connection type reads (core.config._transport_settings).
_TRANSPORT_FIELDS: dict[str, dict[str, Any]] = {
    "proxies": _text("Proxies", 'JSON object, e.g. {"https": "http://proxy:3128"}'),
    "verify": _typed("Verify TLS", "boolean", "Verify the server's TLS certificate", True),
    "ca_bundle": _text("CA bundle path", "PEM file of CAs to trust (a private CA or the emulator's cert)"),
    "timeout": _typed("Read timeout (s)", "number", "Seconds to wait for a response", 120),
    "connect_timeout": _typed("Connect timeout (s)", "number", "Seconds to wait for a connection", 10),
    "max_retries": _typed("Max retries", "integer", "Retries of a transient failure after the first attempt", 4),
    "retry_max_seconds": _typed("Retry budget (s)", "number",
                                "Most seconds one call may spend retrying, backoff included", 60),
    "rate_limit_max_wait": _typed("Rate-limit max wait (s)", "number",
                                  "Longest wait a 429 may ask for (Retry-After); a longer one fails at once", 90),
}

# Salesforce API settings of the Salesforce-token connection types.
_SALESFORCE_API_FIELDS: dict[str, dict[str, Any]] = {
    "api_version": _text("API version", "Salesforce API version, e.g. 64.0", "64.0"),
    "limit_warning_threshold": _typed("Limit warning threshold", "number",
                                      "Warn when this share of the org's daily API limit is used (0-1)", 0.8),
}

_OAUTH_FIELDS: dict[str, dict[str, Any]] = {
    "auth_type": {
        "label": "Auth type",
        "schema": {
            "type": ["string", "null"],
            "default": "password",
            "enum": ["password", "jwt", "client_credentials", "refresh_token", "session", "soap_login"],
        },
        "description": "OAuth flow: password (username-password), jwt (JWT bearer), client_credentials, "
        "refresh_token, session (session id + instance URL), soap_login (legacy, removed in API 65.0)",
    },
    "consumer_key": _text("Consumer key", "Connected App consumer key (client id)"),
    "consumer_secret": _secret("Consumer secret"),
    "private_key": _secret("Private key", "RSA private key for JWT bearer", multiline=True),
    "private_key_file": _text("Private key file", "Path to the RSA private key PEM for JWT bearer"),
    "security_token": _secret("Security token", "Appended to the password for the password flow"),
    "refresh_token": _secret("Refresh token"),
    "session_id": _secret("Session id", "An existing session id (auth type 'session')"),
    "instance_url": _text("Instance URL", "Instance URL for auth type 'session'"),
    "organization_id": _text("Organization id", "For soap_login: log in scoped to this org (00D...)"),
}

_SALESFORCE_BEHAVIOUR = {
    "hidden-fields": ["port", "schema"],
    "relabeling": {"host": "Instance / login URL", "login": "Username", "password": "Password"},
    "placeholders": {
        "host": "login, test, https://mydomain.my.salesforce.com or https://127.0.0.1:8555",
        "login": "user@example.com",
    },
}


#: ``[salesforce_suite]`` options (``airflow config list``; ``AIRFLOW__SALESFORCE_SUITE__<OPTION>``).
#: Every ``conf.get("salesforce_suite", ...)`` in the package reads one of these (tests check it).
_CONFIG: dict[str, Any] = {
    "salesforce_suite": {
        "description": "Settings of the Salesforce Suite provider.",
        "options": {
            "failed_records_base_uri": {
                "description": "Where operators write result files when the task names no place of its own: "
                "failed, unprocessed and outcome-unknown records, Bulk results and REST save journals, under "
                "<base>/<dag_id>/<run_id>/<task_id>/. Any URI ObjectStoragePath understands (file://, s3://, "
                "gs:// ...). Unset: file://<temp dir>/salesforce_suite/failed_records, which is lost with the "
                "worker: set it to shared storage in production.",
                "version_added": "0.1.0",
                "type": "string",
                "example": "s3://my-bucket/salesforce/failed_records",
                "default": None,
            },
        },
    },
}


def get_provider_info() -> dict[str, Any]:
    """Return the provider description Airflow's ProvidersManager reads."""
    return {
        "package-name": "airflow-provider-salesforce-suite",
        "name": "Salesforce Suite",
        "description": "The whole Salesforce suite for Airflow: REST, SOAP, Bulk 1.0/2.0, Streaming, "
        "CRM Analytics, Pardot (Account Engagement) and Desk, with a local Salesforce emulator.",
        "integrations": [
            {
                "integration-name": _INTEGRATION,
                "external-doc-url": "https://developer.salesforce.com/docs/apis",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": _INTEGRATION, "python-modules": _HOOK_MODULES}],
        **({"operators": [{"integration-name": _INTEGRATION, "python-modules": _OPERATOR_MODULES}]} if _OPERATOR_MODULES else {}),
        **({"sensors": [{"integration-name": _INTEGRATION, "python-modules": _SENSOR_MODULES}]} if _SENSOR_MODULES else {}),
        **({"triggers": [{"integration-name": _INTEGRATION, "python-modules": _TRIGGER_MODULES}]} if _TRIGGER_MODULES else {}),
        "config": _CONFIG,
        "extra-links": _EXTRA_LINKS,
        "connection-types": [
            {
                "hook-class-name": f"{_PKG}.hooks.base.SalesforceBaseHook",
                "hook-name": "Salesforce Suite",
                "connection-type": "salesforce_suite",
                "conn-fields": {
                    **_OAUTH_FIELDS,
                    "pubsub_endpoint": _text("Pub/Sub API endpoint", "gRPC host:port",
                                             "api.pubsub.salesforce.com:7443"),
                    **_SALESFORCE_API_FIELDS,
                    **_TRANSPORT_FIELDS,
                },
                "ui-field-behaviour": _SALESFORCE_BEHAVIOUR,
            },
            {
                "hook-class-name": f"{_PKG}.hooks.pardot.PardotHook",
                "hook-name": "Salesforce Pardot (Account Engagement)",
                "connection-type": "salesforce_pardot",
                "conn-fields": {
                    **_OAUTH_FIELDS,
                    "business_unit_id": _text("Business Unit ID", "Pardot Business Unit ID (0Uv...)"),
                    "pardot_host": _text(
                        "Pardot host",
                        "https://pi.pardot.com (production), https://pi.demo.pardot.com (demo) or the emulator URL",
                        "https://pi.pardot.com",
                    ),
                    "pardot_api_version": _text("Pardot API version", "5 (default) or 4", "5"),
                    **_SALESFORCE_API_FIELDS,
                    **_TRANSPORT_FIELDS,
                },
                "ui-field-behaviour": _SALESFORCE_BEHAVIOUR,
            },
            {
                "hook-class-name": f"{_PKG}.hooks.desk.DeskHook",
                "hook-name": "Salesforce Desk",
                "connection-type": "salesforce_desk",
                "conn-fields": {
                    "auth_type": {
                        "label": "Auth type",
                        "schema": {"type": ["string", "null"], "default": "basic", "enum": ["basic", "oauth1"]},
                        "description": "basic (email + password) or oauth1 (OAuth 1.0a)",
                    },
                    "consumer_key": _text("OAuth consumer key"),
                    "consumer_secret": _secret("OAuth consumer secret"),
                    "access_token": _secret("OAuth token"),
                    "access_token_secret": _secret("OAuth token secret"),
                    **_TRANSPORT_FIELDS,
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["port", "schema"],
                    "relabeling": {"host": "Site URL", "login": "Email", "password": "Password"},
                    "placeholders": {"host": "https://yoursite.desk.com", "login": "agent@example.com"},
                },
            },
        ],
    }
