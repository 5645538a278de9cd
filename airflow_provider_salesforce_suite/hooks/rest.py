"""REST API hook: records, SOQL, describe, limits, plus simple-salesforce on the shared transport."""

from __future__ import annotations

import json
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any, Iterator, Mapping
from urllib.parse import quote

from airflow_provider_salesforce_suite.core.errors import SalesforceAuthError, error_from_response
from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook

if TYPE_CHECKING:
    from simple_salesforce import Salesforce


def _segment(value: str) -> str:
    """One URL path segment (sObject names, ids, external id values may contain '/' or spaces)."""
    return quote(str(value), safe="")


@contextmanager
def simple_salesforce_errors(method: str | None = None) -> Iterator[None]:
    """The one boundary where simple-salesforce exceptions become this provider's exceptions.

    Uses the structured attributes simple-salesforce keeps (``status``, ``url``, ``content``),
    never the exception text.

    :param method: HTTP method of the wrapped call, for the error's context.
    """
    from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceError

    try:
        yield
    except SalesforceAuthenticationFailed as exc:
        raise SalesforceAuthError(
            f"simple-salesforce authentication failed: {exc.code}", error=str(exc.code)
        ) from None
    except SalesforceError as exc:
        content = exc.content
        if isinstance(content, bytes):
            body = content
        elif isinstance(content, str):
            body = content.encode("utf-8")
        else:
            body = json.dumps(content).encode("utf-8")
        raise error_from_response(exc.status, None, body, method=method, path=exc.url) from None


class SalesforceRestHook(SalesforceBaseHook):
    """Salesforce REST API: sObject records, SOQL queries, describe, limits and any other resource.

    :param salesforce_conn_id: Airflow connection id of type ``salesforce_suite``.
    :param api_version: overrides the connection's ``api_version``.
    """

    hook_name = "Salesforce REST"

    # -- simple-salesforce ---------------------------------------------------------------------------
    def get_conn(self) -> Salesforce:
        """A ``simple_salesforce.Salesforce`` running on this hook's session.

        Its requests carry our token (replacing its own header), so it gets our re-auth, retries and
        TLS/proxy settings. Wrap direct use in :func:`simple_salesforce_errors` to get our exceptions.
        """
        return self._sf

    @cached_property
    def _sf(self) -> Salesforce:
        from simple_salesforce import Salesforce

        token = self.session.token
        return Salesforce(
            instance_url=token.instance_url,
            session_id=token.access_token,
            version=self.api_version,
            session=self.session,
        )

    # -- records -------------------------------------------------------------------------------------
    def create(self, sobject: str, record: Mapping[str, Any]) -> str:
        """Insert one record and return its id."""
        with simple_salesforce_errors("POST"):
            return getattr(self._sf, sobject).create(dict(record))["id"]

    def get(self, sobject: str, record_id: str, fields: list[str] | None = None) -> dict[str, Any]:
        """Read one record (all fields, or only ``fields``)."""
        params = {"fields": ",".join(fields)} if fields else None
        with simple_salesforce_errors("GET"):
            return dict(getattr(self._sf, sobject).get(record_id, params=params))

    def update(self, sobject: str, record_id: str, values: Mapping[str, Any]) -> None:
        """Update fields of one record."""
        with simple_salesforce_errors("PATCH"):
            getattr(self._sf, sobject).update(record_id, dict(values))

    def delete(self, sobject: str, record_id: str) -> None:
        """Delete one record."""
        with simple_salesforce_errors("DELETE"):
            getattr(self._sf, sobject).delete(record_id)

    def upsert(
        self, sobject: str, external_id_field: str, external_id: str, record: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Insert or update by external id; returns ``{"id": ..., "created": bool}``.

        :raises SalesforceMultipleChoicesError: the external id matches several records.
        """
        path = self.data_url(
            f"sobjects/{_segment(sobject)}/{_segment(external_id_field)}/{_segment(external_id)}"
        )
        # PATCH by external id is idempotent: replaying it converges to the same record.
        response = self.request("PATCH", path, json=dict(record), idempotent=True)
        if response.status_code == 204 or not response.content:  # pre-46.0 APIs: update, no body
            return {"id": None, "created": False}
        body = response.json()
        return {"id": body.get("id"), "created": bool(body.get("created", response.status_code == 201))}

    # -- queries ---------------------------------------------------------------------------------------
    def query(
        self, soql: str, *, include_deleted: bool = False, batch_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield the records of a SOQL query, one page at a time (follows ``nextRecordsUrl``).

        :param soql: the SOQL query.
        :param include_deleted: use ``queryAll`` (deleted and archived records too).
        :param batch_size: page size hint (``Sforce-Query-Options: batchSize=N``, 200-2000).
        """
        headers = {"Sforce-Query-Options": f"batchSize={int(batch_size)}"} if batch_size else None
        resource = "queryAll" if include_deleted else "query"
        page = self.request("GET", self.data_url(resource), params={"q": soql}, headers=headers).json()
        while True:
            yield from page.get("records", [])
            next_url = page.get("nextRecordsUrl")
            if page.get("done", True) or not next_url:
                return
            page = self.request("GET", next_url, headers=headers).json()

    def query_all(self, soql: str, *, batch_size: int | None = None) -> Iterator[dict[str, Any]]:
        """:meth:`query` through ``queryAll``: includes deleted and archived records."""
        return self.query(soql, include_deleted=True, batch_size=batch_size)

    # -- metadata --------------------------------------------------------------------------------------
    def describe(self, sobject: str) -> dict[str, Any]:
        """Describe one sObject (fields, relationships, URLs)."""
        with simple_salesforce_errors("GET"):
            return dict(getattr(self._sf, sobject).describe())

    def describe_global(self) -> dict[str, Any]:
        """List the org's sObjects."""
        with simple_salesforce_errors("GET"):
            return dict(self._sf.describe())

    def limits(self) -> dict[str, Any]:
        """The org's limits (``/limits``)."""
        return self.request("GET", self.data_url("limits")).json()

    def versions(self) -> list[dict[str, Any]]:
        """API versions the org serves (``/services/data/``)."""
        return self.request("GET", "/services/data/").json()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call any REST resource; returns the parsed JSON body, or None when there is none.

        :param method: HTTP method.
        :param path: relative to ``/services/data/vXX.X/``, or an absolute ``/services/...`` path.
        :param kwargs: :meth:`SalesforceBaseHook.request` keyword arguments.
        """
        target = path if path.startswith("/") or "://" in path else self.data_url(path)
        response = self.request(method, target, **kwargs)
        if not response.content:
            return None
        return response.json()
