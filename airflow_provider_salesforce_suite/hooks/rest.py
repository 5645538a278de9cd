"""REST API hook: records, SOQL, describe, limits, plus simple-salesforce on the shared transport."""

from __future__ import annotations

import json
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Literal, Mapping, Sequence
from urllib.parse import quote

from airflow_provider_salesforce_suite.core.errors import SalesforceAuthError, error_from_response, raise_for_status
from airflow_provider_salesforce_suite.hooks._rest import records as _records
from airflow_provider_salesforce_suite.hooks._rest.records import (
    RecordResult,
    SalesforceCompositeLimitError,
    SalesforceMixedTypesError,
)
from airflow_provider_salesforce_suite.hooks._rest.query_org import RestQueryOrgMixin
from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook

if TYPE_CHECKING:
    from simple_salesforce import Salesforce

    from airflow_provider_salesforce_suite.hooks._rest.journal import SaveJournal


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


class SalesforceRestHook(RestQueryOrgMixin, SalesforceBaseHook):
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

    # == records & composite (REST engineer A) ========================================================
    def save_records(
        self,
        operation: Literal["insert", "update", "upsert", "delete"],
        sobject: str,
        records: Iterable[Mapping[str, Any] | str],
        *,
        external_id_field: str | None = None,
        all_or_none: bool = False,
        concurrency: int = 4,
        batch_size: int = _records.MAX_COLLECTION_RECORDS,
        idempotency_field: str | None = None,
        journal: SaveJournal | None = None,
    ) -> Iterator[RecordResult]:
        """Save records through sObject Collections, ``batch_size`` per call, ``concurrency`` calls at once.

        ``records`` is consumed lazily; one :class:`RecordResult` per input record is yielded lazily and
        in input order. A call that fails as a whole (after the transport's retries) yields failed
        results for its records instead of raising, so succeeded + failed always equals the input.
        Update, upsert and delete calls are replayed after a dropped connection (they converge);
        an insert is not (a replay could duplicate records): its records then fail with statusCode
        ``OUTCOME_UNKNOWN`` (:attr:`RecordResult.unknown`), unless ``idempotency_field`` lets the hook
        query back which of them exist and send only the others. A 503 is replayed for every
        operation (Salesforce did not process it). ``all_or_none`` applies per call (chunk):
        Salesforce cannot roll back earlier calls. When reading ``records`` raises, the calls in
        flight finish and their results are yielded before the error is raised.

        :param operation: ``insert``, ``update`` (records carry ``Id``), ``upsert`` or ``delete``
            (records are ``{"Id": ...}`` or bare id strings).
        :param sobject: the sObject; a record whose ``attributes.type`` differs is refused before its
            chunk is sent (:class:`SalesforceMixedTypesError`).
        :param records: the records.
        :param external_id_field: the External ID field for ``upsert``.
        :param all_or_none: roll back a whole call when one of its records fails.
        :param concurrency: calls in flight at most (1 to 32).
        :param batch_size: records per call (1 to 200).
        :param idempotency_field: insert: a text or External ID field whose value (set by the caller)
            is unique to each record; used only to settle a call whose outcome is unknown.
        :param journal: a :class:`~airflow_provider_salesforce_suite.hooks._rest.journal.SaveJournal`,
            opened: chunks it holds as answered are not sent again (their results come from it), every
            answer is noted in it, and insert chunks are noted before they are sent.
        """
        if operation not in _records.OPERATIONS:
            raise ValueError(f"operation must be one of {', '.join(_records.OPERATIONS)}, not {operation!r}")
        if operation == "upsert" and not external_id_field:
            raise ValueError("upsert needs external_id_field")
        if not 1 <= batch_size <= _records.MAX_COLLECTION_RECORDS:
            raise _records.SalesforceCompositeLimitError(
                f"batch_size must be between 1 and {_records.MAX_COLLECTION_RECORDS}, not {batch_size}")
        if not 1 <= concurrency <= 32:
            raise ValueError(f"concurrency must be between 1 and 32, not {concurrency}")
        self._pool_for(concurrency)

        def send(payload: list[Any]) -> Any:
            return self._collections_call(operation, sobject, external_id_field, all_or_none, payload)

        def find(keys: list[str]) -> dict[str, str]:
            return self._ids_by_key(sobject, str(idempotency_field), keys)

        run = _records.ChunkSaver(send, operation, journal, idempotency_field if operation == "insert" else None,
                                  find)
        work = _records.chunks(operation, sobject, records, batch_size)
        return _records.in_order(journal.verified(work) if journal is not None else work, run, concurrency)

    def _ids_by_key(self, sobject: str, field: str, keys: list[str]) -> dict[str, str]:
        """``{key: Id}`` of the ``sobject`` records whose ``field`` holds one of ``keys``."""
        quoted = ",".join("'" + key.replace("\\", "\\\\").replace("'", "\\'") + "'" for key in keys)
        soql = f"SELECT Id, {field} FROM {sobject} WHERE {field} IN ({quoted})"
        found = {}
        for row in self.query(soql):
            key = next((value for name, value in row.items() if name.lower() == field.lower()), None)
            if key not in (None, ""):
                found[str(key)] = row["Id"]
        return found

    def _collections_call(self, operation: str, sobject: str, external_id_field: str | None,
                          all_or_none: bool, payload: list[Any]) -> Any:
        url = self.data_url("composite/sobjects")
        if operation == "delete":
            params = {"ids": ",".join(payload), "allOrNone": str(all_or_none).lower()}
            return self.request("DELETE", url, params=params).json()
        body = {"allOrNone": all_or_none, "records": payload}
        if operation == "insert":
            return self.request("POST", url, json=body, idempotent=False).json()
        if operation == "upsert":
            url += f"/{_segment(sobject)}/{_segment(external_id_field or '')}"
        # Replaying an update or upsert writes the same values again: safe after a dropped connection.
        return self.request("PATCH", url, json=body, idempotent=True).json()

    def _pool_for(self, concurrency: int) -> None:
        """Keep-alive connections for ``concurrency`` threads (requests keeps 10 per host by default)."""
        if concurrency > 10:
            from requests.adapters import HTTPAdapter

            adapter = HTTPAdapter(pool_connections=10, pool_maxsize=concurrency)
            self.session.mount("https://", adapter)
            self.session.mount("http://", adapter)

    def get_records(self, sobject: str, ids: Iterable[str], fields: Sequence[str]) -> Iterator[dict[str, Any] | None]:
        """Yield records by id (``None`` for ids Salesforce cannot find), in id order, lazily.

        Uses sObject Collections retrieve (``POST composite/sobjects/{sobject}``), 2,000 ids per call.

        :param sobject: the sObject.
        :param ids: record ids.
        :param fields: fields to return.
        """
        if not fields:
            raise ValueError("get_records needs at least one field")
        url = self.data_url(f"composite/sobjects/{_segment(sobject)}")

        def fetch() -> Iterator[dict[str, Any] | None]:
            for chunk in _records.id_chunks(ids, _records.MAX_RETRIEVE_IDS):
                body = {"ids": chunk, "fields": list(fields)}
                yield from self.request("POST", url, json=body, idempotent=True).json()

        return fetch()

    def _composite_url(self, url: str) -> str:
        return url if url.startswith("/") else self.data_url(url)

    def composite(self, subrequests: Sequence[Mapping[str, Any]], *, all_or_none: bool = False,
                  collate_subrequests: bool = False) -> dict[str, Any]:
        """``POST composite``: up to 25 subrequests, later ones referring to earlier results as ``@{ref.id}``.

        :param subrequests: ``{"method", "url", "referenceId", "body"?, "httpHeaders"?}``; a relative
            ``url`` is taken relative to ``/services/data/vXX.X/``.
        :param all_or_none: roll everything back if one subrequest fails.
        :param collate_subrequests: let Salesforce group independent subrequests.
        :return: ``{"compositeResponse": [{"body", "httpHeaders", "httpStatusCode", "referenceId"}]}``.
        """
        _records.check_limit(len(subrequests), _records.MAX_COMPOSITE_SUBREQUESTS, "composite subrequests")
        if not subrequests:
            return {"compositeResponse": []}
        items = []
        for sub in subrequests:
            if not sub.get("method") or not sub.get("url") or not sub.get("referenceId"):
                raise ValueError(f"every composite subrequest needs method, url and referenceId: {dict(sub)!r:.200}")
            items.append({**sub, "url": self._composite_url(str(sub["url"]))})
        body = {"allOrNone": all_or_none, "collateSubrequests": collate_subrequests, "compositeRequest": items}
        return self.request("POST", self.data_url("composite"), json=body, idempotent=False).json()

    def composite_batch(self, subrequests: Sequence[Mapping[str, Any]], *, halt_on_error: bool = False) -> dict[str, Any]:
        """``POST composite/batch``: up to 25 independent subrequests.

        :param subrequests: ``{"method", "url", "richInput"?}``; ``url`` like ``sobjects/Account/001...``
            (the API version is added) or ``vXX.X/...``.
        :param halt_on_error: skip the remaining subrequests after a failure (they answer 412).
        :return: ``{"hasErrors": bool, "results": [{"statusCode", "result"}]}``.
        """
        _records.check_limit(len(subrequests), _records.MAX_COMPOSITE_SUBREQUESTS, "composite batch subrequests")
        if not subrequests:
            return {"hasErrors": False, "results": []}
        items = []
        for sub in subrequests:
            url = str(sub.get("url") or "")
            if not sub.get("method") or not url:
                raise ValueError(f"every batch subrequest needs method and url: {dict(sub)!r:.200}")
            if not url.startswith(("v", "/")):
                url = f"v{self.api_version}/{url}"
            items.append({**sub, "url": url})
        body = {"haltOnError": halt_on_error, "batchRequests": items}
        return self.request("POST", self.data_url("composite/batch"), json=body, idempotent=False).json()

    def composite_graph(self, graphs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """``POST composite/graph``: graphs of composite subrequests, each graph all-or-none.

        :param graphs: ``{"graphId", "compositeRequest": [...]}`` (relative urls as in :meth:`composite`).
        :return: ``{"graphs": [{"graphId", "graphResponse": {"compositeResponse": [...]}, "isSuccessful"}]}``.
        """
        if not graphs:
            return {"graphs": []}
        prepared = []
        for graph in graphs:
            requests_ = graph.get("compositeRequest")
            if not graph.get("graphId") or not requests_:
                raise ValueError(f"every graph needs graphId and compositeRequest: {dict(graph)!r:.200}")
            prepared.append({**graph, "compositeRequest": [
                {**sub, "url": self._composite_url(str(sub.get("url") or ""))} for sub in requests_]})
        return self.request("POST", self.data_url("composite/graph"), json={"graphs": prepared},
                            idempotent=False).json()

    def sobject_tree(self, sobject: str, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """``POST composite/tree/{sobject}``: create up to 200 records with nested children, all or none.

        :param sobject: the top-level records' sObject.
        :param records: records with ``attributes: {"type", "referenceId"}``; children under their
            relationship name as ``{"records": [...]}``.
        :return: ``{"hasErrors": False, "results": [{"referenceId", "id"}]}``, or on a record error
            ``{"hasErrors": True, "results": [{"referenceId", "errors": [...]}]}`` (nothing created).
        """
        _records.check_limit(_records.count_tree(records), _records.MAX_TREE_RECORDS, "sObject Tree records")
        if not records:
            return {"hasErrors": False, "results": []}
        response = self.session.request("POST", self.data_url(f"composite/tree/{_segment(sobject)}"),
                                        json={"records": list(records)}, idempotent=False)
        if response.status_code == 400:
            body = response.json() if response.content else None
            if isinstance(body, dict) and body.get("hasErrors"):
                return body
        return raise_for_status(response).json()

    def get_by_external_id(self, sobject: str, external_id_field: str, external_id: str,
                           fields: Sequence[str] | None = None) -> dict[str, Any]:
        """``GET sobjects/{sobject}/{field}/{value}``: the record with that external id.

        :raises SalesforceNotFoundError: no record has it.
        :raises SalesforceMultipleChoicesError: several records have it.
        """
        params = {"fields": ",".join(fields)} if fields else None
        path = f"sobjects/{_segment(sobject)}/{_segment(external_id_field)}/{_segment(external_id)}"
        return self.request("GET", self.data_url(path), params=params).json()

    def delete_by_external_id(self, sobject: str, external_id_field: str, external_id: str) -> None:
        """``DELETE sobjects/{sobject}/{field}/{value}``.

        :raises SalesforceNotFoundError: no record has that external id.
        """
        path = f"sobjects/{_segment(sobject)}/{_segment(external_id_field)}/{_segment(external_id)}"
        self.request("DELETE", self.data_url(path))

    def get_related(self, sobject: str, record_id: str, relationship: str,
                    fields: Sequence[str] | None = None) -> dict[str, Any]:
        """``GET sobjects/{sobject}/{id}/{relationship}``: the parent record, or a child query result.

        :param sobject: the record's sObject.
        :param record_id: the record id.
        :param relationship: a parent (``Account``) or child (``Contacts``) relationship name.
        :param fields: fields to return.
        :return: the parent record, or ``{"totalSize", "done", "records"}`` for a child relationship.
        """
        params = {"fields": ",".join(fields)} if fields else None
        path = f"sobjects/{_segment(sobject)}/{_segment(record_id)}/{_segment(relationship)}"
        return self.request("GET", self.data_url(path), params=params).json()

    # == end of records & composite ===================================================================

    # == query, search & org (REST engineer B) =======================================================
    # query_pages, explain, search, parameterized_search, sobject_info, resources, record_counts,
    # get_updated/get_deleted, recently_viewed, list views, apex_rest, passwords, quick actions,
    # approvals, process rules and download_blob come from RestQueryOrgMixin (hooks/_rest/query_org.py).
    def query(
        self, soql: str, *, include_deleted: bool = False, batch_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield the records of a SOQL query, one page at a time (follows ``nextRecordsUrl``).

        :param soql: the SOQL query.
        :param include_deleted: use ``queryAll`` (deleted and archived records too).
        :param batch_size: page size hint (``Sforce-Query-Options: batchSize=N``, 200-2000).
        """
        for page in self.query_pages(soql, include_deleted=include_deleted, batch_size=batch_size):
            yield from page

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
