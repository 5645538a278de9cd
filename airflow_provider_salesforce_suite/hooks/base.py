"""The base hook every Salesforce API hook builds on: config, sessions and error-raising requests."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, Mapping

from airflow.sdk import BaseHook

from airflow_provider_salesforce_suite.core.auth import SalesforceAuthenticator
from airflow_provider_salesforce_suite.core.config import CONN_TYPE, SalesforceConnectionConfig
from airflow_provider_salesforce_suite.core.errors import raise_for_status
from airflow_provider_salesforce_suite.core.transport import AsyncSalesforceSession, SalesforceSession

if TYPE_CHECKING:
    import requests

    from airflow_provider_salesforce_suite.core.limits import ApiUsage


class SalesforceBaseHook(BaseHook):
    """Connection handling shared by every Salesforce hook. Constructing it does no I/O.

    :param salesforce_conn_id: Airflow connection id of type ``salesforce_suite``.
    :param api_version: overrides the connection's ``api_version`` extra (e.g. ``"64.0"``).
    """

    conn_name_attr = "salesforce_conn_id"
    default_conn_name = "salesforce_suite_default"
    conn_type = CONN_TYPE
    hook_name = "Salesforce"

    def __init__(self, salesforce_conn_id: str = default_conn_name, *, api_version: str | None = None) -> None:
        super().__init__()
        self.salesforce_conn_id = salesforce_conn_id
        self._api_version_override = api_version
        self._async_session: AsyncSalesforceSession | None = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["port", "schema"],
            "relabeling": {"host": "Login URL (login, test, My Domain URL)", "login": "Username"},
        }

    @cached_property
    def config(self) -> SalesforceConnectionConfig:
        """The validated connection config (reads the connection on first use)."""
        conn = self.get_connection(self.salesforce_conn_id)
        return SalesforceConnectionConfig.from_connection(conn, api_version=self._api_version_override)

    @cached_property
    def authenticator(self) -> SalesforceAuthenticator:
        return SalesforceAuthenticator(self.config)

    @cached_property
    def session(self) -> SalesforceSession:
        """The authenticated requests session (also usable by simple-salesforce and others)."""
        return SalesforceSession(self.config, self.authenticator)

    def async_session(self) -> AsyncSalesforceSession:
        """The aiohttp twin for triggers; shares this hook's token cache. Close it when done."""
        if self._async_session is None:
            self._async_session = AsyncSalesforceSession(self.config, self.authenticator)
        return self._async_session

    @property
    def api_version(self) -> str:
        return self.config.api_version

    @property
    def instance_url(self) -> str:
        """The org's instance URL (authenticates on first use)."""
        return self.session.token.instance_url

    @property
    def api_usage(self) -> ApiUsage | None:
        """Daily API usage from the last response's ``Sforce-Limit-Info``."""
        return self.session.api_usage

    def data_url(self, path: str = "") -> str:
        """``/services/data/v{api_version}/{path}``."""
        return f"/services/data/v{self.api_version}/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        idempotent: bool | None = None,
    ) -> requests.Response:
        """Send a request through :attr:`session` and raise a ``SalesforceApiError`` on non-2xx.

        :param method: HTTP method.
        :param path_or_url: ``/services/...`` path (resolved against the instance URL) or absolute URL.
        :param params: query parameters.
        :param json: JSON body.
        :param data: raw body (must be replayable: bytes, str or dict).
        :param headers: extra headers.
        :param stream: do not read the body of a successful response up front.
        :param idempotent: whether the call may be replayed after a dropped connection
            (default: by method).
        """
        response = self.session.request(
            method, path_or_url, params=params, json=json, data=data, headers=headers,
            stream=stream, idempotent=idempotent,
        )
        return raise_for_status(response)

    def test_connection(self) -> tuple[bool, str]:
        """Authenticate and read the org's limits: the Airflow UI's "Test" button."""
        try:
            self.request("GET", self.data_url("limits"))
        except Exception as exc:  # the UI wants a message, not a traceback; our errors carry no secrets
            return False, f"{type(exc).__name__}: {exc}"
        return True, f"Connected to {self.instance_url} (API v{self.api_version})"
