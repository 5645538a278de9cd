"""Hook for Salesforce's SOAP (partner) API, through zeep over the shared session.

Records go in and come out as plain dicts (``{"type": "Account", "Id": ..., "Name": ...}``); see
``hooks/_soap/records.py`` for the value typing. The packaged WSDL (``wsdl/partner.wsdl``) is parsed
once per process; the zeep client posts through :attr:`session` (TLS, proxies, timeouts, retries) and
parses responses with DTDs, entities and external references refused. The token travels in the
``SessionHeader``: an ``INVALID_SESSION_ID`` fault re-authenticates once and replays once.
Query pages (``query``/``queryAll``/``queryMore``) are read from the response XML directly
(``hooks/_soap/pages.py``), the same records without zeep's object per record; ``create``/``update``/
``upsert`` build their ``sObjects`` as XML and read their results directly (``hooks/_soap/saves.py``).
zeep and lxml are imported on the first call, not with this module.
"""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence

from airflow_provider_salesforce_suite.core.errors import (
    SalesforceOutcomeUnknownError,
    SalesforceSoapSessionExpiredError,
    outcome_unknown,
)
from airflow_provider_salesforce_suite.core.secrets import mask
from airflow_provider_salesforce_suite.hooks._soap import faults  # registers the SOAP fault body parser
from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook

if TYPE_CHECKING:
    from airflow_provider_salesforce_suite.core.auth import Token
    from airflow_provider_salesforce_suite.hooks._soap.pages import QueryPage
    from airflow_provider_salesforce_suite.hooks._soap.records import RecordReader

#: Records per call of record-taking operations (Salesforce's limit for create/update/... is 200).
MAX_RECORDS_PER_CALL = 200
#: Operations with a lower per-call limit.
_PER_CALL = {"sendEmail": 10, "sendEmailMessage": 10, "findDuplicates": 50, "findDuplicatesByIds": 50,
             "describeSObjects": 100, "convertLead": 100}
#: Operations the transport may replay after an ambiguous failure (every SOAP call is a POST): reads,
#: and writes that converge (update sets the same values, upsert matches the same external id).
#: create, convertLead, merge, sendEmail ... are never replayed. delete converges too, but a replay
#: answers ENTITY_IS_DELETED for what the lost call deleted, so :meth:`delete` re-sends it itself.
_REPLAYABLE = frozenset({"query", "queryAll", "queryMore", "retrieve", "search", "findDuplicates",
                         "findDuplicatesByIds", "update", "upsert"})
#: Read operations by name, also those of a fuller WSDL (``describeLayout``, ``getDeleted`` ...).
_READ_PREFIXES = ("describe", "get")
#: What a non-replayable operation may have done when its reply was lost.
_MAYBE = {"create": "the records may have been created", "convertLead": "the leads may have been converted",
          "merge": "the records may have been merged", "sendEmail": "the emails may have been sent",
          "sendEmailMessage": "the emails may have been sent", "undelete": "the records may have been restored",
          "emptyRecycleBin": "the records may have been purged", "process": "the approvals may have been processed",
          "delete": "the records may have been deleted"}
HEADER_NAMES = ("CallOptions", "QueryOptions", "AllOrNoneHeader", "AllowFieldTruncationHeader",
                "AssignmentRuleHeader", "DuplicateRuleHeader", "EmailHeader", "MruHeader")
_SESSION_CODES = frozenset({"INVALID_SESSION_ID"})

Headers = Mapping[str, Mapping[str, Any]]


class SalesforceSoapHook(SalesforceBaseHook):
    """Salesforce partner SOAP API. Constructing it does no I/O.

    Per-call ``headers`` are ``{"AllOrNoneHeader": {"allOrNone": True}, ...}`` (any of
    :data:`HEADER_NAMES`); they are added to ``default_headers``. ``SessionHeader`` is the hook's.

    :param salesforce_conn_id: Airflow connection id of type ``salesforce_suite``.
    :param api_version: overrides the connection's ``api_version``.
    :param default_headers: SOAP headers sent with every call (e.g. ``{"CallOptions": {"client": "etl"}}``).
    :param wsdl_path: another partner WSDL (default: the packaged one).
    :param type_fields: type incoming field values from ``describeSObject`` (one call per sObject
        type per hook); False leaves them as text (except values with an explicit ``xsi:type``).
    """

    hook_name = "Salesforce SOAP"

    def __init__(self, salesforce_conn_id: str = SalesforceBaseHook.default_conn_name, *,
                 api_version: str | None = None, default_headers: Headers | None = None,
                 wsdl_path: str | None = None, type_fields: bool = True) -> None:
        super().__init__(salesforce_conn_id, api_version=api_version)
        self.default_headers = _check_headers(default_headers)
        self.wsdl_path = wsdl_path
        self.type_fields = type_fields
        self._types: dict[str, dict[str, str]] = {}
        #: Number of SOAP calls this hook made (replays included).
        self.calls = 0

    # -- plumbing ----------------------------------------------------------------------------------
    @property
    def soap_url(self) -> str:
        """``{instance_url}/services/Soap/u/{api_version}`` (authenticates on first use)."""
        return f"{self.instance_url}/services/Soap/u/{self.api_version}"

    @cached_property
    def _zeep(self) -> tuple[Any, Any]:
        from airflow_provider_salesforce_suite.hooks._soap.client import build_client

        return build_client(self.session, self.soap_url, self.wsdl_path)

    def get_conn(self) -> Any:
        """The zeep ``Client`` (sharing the process-wide parsed WSDL, posting through :attr:`session`)."""
        return self._zeep[0]

    @cached_property
    def _reader(self) -> RecordReader:
        from airflow_provider_salesforce_suite.hooks._soap.records import RecordReader

        return RecordReader(self._field_types if self.type_fields else None)

    def _soap_headers(self, token: Token, headers: Headers | None) -> dict[str, Any]:
        merged: dict[str, Any] = {name: dict(values) for name, values in self.default_headers.items()}
        for name, values in _check_headers(headers).items():
            merged[name] = {**merged.get(name, {}), **values}
        merged["SessionHeader"] = {"sessionId": token.access_token}
        return merged

    def invoke(self, operation: str, *, headers: Headers | None = None, **arguments: Any) -> Any:
        """Call a partner operation and return zeep's raw result (see :meth:`call` for plain values).

        The one place zeep exceptions become ours; an ``INVALID_SESSION_ID`` fault re-authenticates
        once and replays once.

        :param operation: the WSDL operation name (``query``, ``convertLead`` ...).
        :param headers: SOAP headers for this call.
        :param arguments: the operation's request elements.
        """
        return self._invoke(operation, headers, arguments)

    def _invoke(self, operation: str, headers: Headers | None, arguments: Mapping[str, Any],
                read: Callable[[Any], Any] | None = None) -> Any:
        """:meth:`invoke`; with ``read``, zeep sends the envelope and ``read(response)`` reads the reply
        (inside the same fault translation and re-authentication)."""
        client, service = self._zeep
        try:
            method = getattr(service, operation)
        except AttributeError:
            raise ValueError(f"{operation!r} is not a partner SOAP operation") from None
        allowed = _allowed_headers(client, operation)
        misplaced = set(_check_headers(headers)) - allowed
        if misplaced:
            raise ValueError(f"SOAP header(s) {', '.join(sorted(misplaced))} do not apply to {operation}")
        transport = client.transport
        transport.idempotent = operation in _REPLAYABLE or operation.startswith(_READ_PREFIXES)
        replayed = False
        while True:
            token = self.authenticator.get_token()
            # Default headers that the operation does not declare are left out.
            soap_headers = {k: v for k, v in self._soap_headers(token, headers).items() if k in allowed}
            self.calls += 1
            try:
                if read is None:
                    return method(**arguments, _soapheaders=soap_headers)
                with client.settings(raw_response=True):
                    response = method(**arguments, _soapheaders=soap_headers)
                return read(response)
            except Exception as exc:  # noqa: BLE001 - translated below, the one boundary
                error = faults.translate(exc, operation, transport.last_status, self.soap_url)
            if isinstance(error, SalesforceOutcomeUnknownError):
                raise outcome_unknown(error, f"SOAP {operation}", _MAYBE.get(operation)) from None
            if getattr(error, "error_code", None) in _SESSION_CODES and not replayed:
                if not self.authenticator.can_reauthenticate:
                    raise SalesforceSoapSessionExpiredError(
                        500, "INVALID_SESSION_ID",
                        "the session id is expired or invalid, and auth_type 'session' cannot re-authenticate",
                        method=operation) from None
                self.authenticator.reauthenticate(token)
                replayed = True
                continue
            raise error from None

    def call(self, operation: str, *, headers: Headers | None = None, **arguments: Any) -> Any:
        """Call any partner operation; the result as plain dicts/lists (records as record dicts).

        :param operation: the WSDL operation name.
        :param headers: SOAP headers for this call.
        :param arguments: the operation's request elements (records as dicts are converted).
        """
        return self._reader.plain(self.invoke(operation, headers=headers, **arguments))

    def _field_types(self, sobject: str) -> Mapping[str, str]:
        if sobject not in self._types:
            self._types[sobject] = {}  # AggregateResult and friends have no describe
            from airflow_provider_salesforce_suite.core.errors import SalesforceApiError

            try:
                described = self.invoke("describeSObject", sObjectType=sobject)
            except SalesforceApiError:
                return self._types[sobject]
            self._types[sobject] = {f.name: f.soapType for f in (described.fields or []) if f is not None}
        return self._types[sobject]

    def _zeep_reply(self, operation: str, response: Any) -> Any:
        """zeep's reading of a raw ``response`` to ``operation`` (what the direct readers do not vouch for)."""
        from airflow_provider_salesforce_suite.hooks._soap.client import BINDING

        client = self.get_conn()
        binding = client.wsdl.bindings[BINDING]
        return binding.process_reply(client, binding.get(operation), response)

    @cached_property
    def _saves(self) -> tuple[Any, bool]:
        """The plugin appending prebuilt ``<sObjects>`` to this hook's envelopes, and whether the WSDL's
        result types are the ones ``_soap/saves.py`` reads directly."""
        from airflow_provider_salesforce_suite.hooks._soap.saves import AppendSObjects, wsdl_matches

        client = self.get_conn()
        plugin = AppendSObjects()
        client.plugins.append(plugin)
        return plugin, wsdl_matches(client)

    def _save(self, operation: str, records: Iterable[Mapping[str, Any]], sobject: str | None,
              headers: Headers | None, **arguments: Any) -> list[dict[str, Any]]:
        """``create``/``update``/``upsert`` in calls of 200: the ``<sObjects>`` built as XML (the bytes
        zeep would render) and the results read from the response XML (``_soap/saves.py``)."""
        from airflow_provider_salesforce_suite.hooks._rest.records import OUTCOME_UNKNOWN
        from airflow_provider_salesforce_suite.hooks._soap.pages import UnsafeXml
        from airflow_provider_salesforce_suite.hooks._soap.records import sobjects_element
        from airflow_provider_salesforce_suite.hooks._soap.saves import read_save_results

        plugin, direct = self._saves

        def read(response: Any) -> list[dict[str, Any]]:
            try:
                results = read_save_results(response.status_code, response.content, operation) if direct else None
            except UnsafeXml:
                raise faults.unsafe_xml_error(operation, response.status_code, self.soap_url) from None
            if results is not None:
                return results
            return self._reader.plain(self._zeep_reply(operation, response))

        def send(chunk: list[Any]) -> list[dict[str, Any]]:
            elements = [sobjects_element(record, sobject) for record in chunk]
            try:
                with plugin.appending(elements):
                    return self._invoke(operation, headers, arguments, read)
            except SalesforceOutcomeUnknownError as exc:  # only create is not replayed: its records, not the run
                error = {"fields": [], "message": str(exc), "statusCode": OUTCOME_UNKNOWN}
                return [{"errors": [dict(error)], "id": None, "success": False} for _ in chunk]

        return self._batched(operation, records, "sObjects", send=send)

    def _sobjects(self, records: Iterable[Mapping[str, Any]], sobject: str | None) -> list[Any]:
        from airflow_provider_salesforce_suite.hooks._soap.client import SOBJECT_NS
        from airflow_provider_salesforce_suite.hooks._soap.records import to_sobject

        factory = self.get_conn().get_type(f"{{{SOBJECT_NS}}}sObject")
        return [to_sobject(factory, record, sobject) for record in records]

    def _batched(self, operation: str, items: Iterable[Any], argument: str, *,
                 prepare: Callable[[list[Any]], list[Any]] = list, headers: Headers | None = None,
                 send: Callable[[list[Any]], list[Any]] | None = None, **arguments: Any) -> list[Any]:
        """Send ``items`` in calls of at most the operation's limit; the per-item results, in order.

        ``send(chunk)`` replaces the default call (``prepare(chunk)`` as ``argument``)."""
        if send is None:
            def send(chunk: list[Any]) -> list[Any]:
                return self.call(operation, headers=headers, **{argument: prepare(chunk)}, **arguments)

        size = _PER_CALL.get(operation, MAX_RECORDS_PER_CALL)
        results: list[Any] = []
        chunk: list[Any] = []
        for item in _items(items, argument):
            chunk.append(item)
            if len(chunk) == size:
                results.extend(send(chunk))
                chunk = []
        if chunk:
            results.extend(send(chunk))
        return results

    # -- session -----------------------------------------------------------------------------------
    def login(self, username: str, password: str) -> dict[str, Any]:
        """The partner ``login()`` call (prefer the connection's auth types; this is for tools).

        :param username: the user name.
        :param password: password plus security token.
        """
        mask(password)
        result = self.call("login", username=username, password=password)
        mask(result.get("sessionId"))
        return result

    def logout(self, *, headers: Headers | None = None) -> None:
        """End the current session (the token is dropped from the cache)."""
        self.call("logout", headers=headers)
        self.authenticator.invalidate()

    # -- query -------------------------------------------------------------------------------------
    def query_pages(self, soql: str, *, include_deleted: bool = False, batch_size: int | None = None,
                    headers: Headers | None = None) -> Iterator[list[dict[str, Any]]]:
        """Yield the pages of a SOQL query lazily (``query``/``queryAll`` then ``queryMore``).

        :param soql: the SOQL query.
        :param include_deleted: use ``queryAll`` (deleted and archived records too).
        :param batch_size: ``QueryOptions.batchSize`` (200-2000; Salesforce may return fewer).
        :param headers: further SOAP headers.
        """
        if batch_size is not None and not (isinstance(batch_size, int) and 200 <= batch_size <= 2000):
            raise ValueError(f"batch_size must be an integer from 200 to 2000, not {batch_size!r}")
        if not isinstance(soql, str) or not soql.strip():
            raise ValueError("soql must be a non-empty query string")
        call_headers = dict(headers or {})
        if batch_size is not None:
            call_headers["QueryOptions"] = {"batchSize": batch_size}
        page = self._query_page("queryAll" if include_deleted else "query", call_headers, queryString=soql)
        while True:
            yield page.records
            if page.done or not page.query_locator:
                return
            page = self._query_page("queryMore", call_headers, queryLocator=page.query_locator)

    def _query_page(self, operation: str, headers: Headers | None, **arguments: Any) -> QueryPage:
        """One ``query``/``queryAll``/``queryMore`` page, read from the response XML directly
        (``_soap/pages.py``); zeep reads what that reader does not vouch for (faults included)."""
        from airflow_provider_salesforce_suite.hooks._soap.pages import QueryPage, UnsafeXml, read_query_page

        def read(response: Any) -> QueryPage:
            try:
                page = read_query_page(response.status_code, response.content, operation, self._reader)
            except UnsafeXml:
                raise faults.unsafe_xml_error(operation, response.status_code, self.soap_url) from None
            if page is not None:
                return page
            result = self._zeep_reply(operation, response)
            return QueryPage([self._reader.record(r) for r in (result.records or []) if r is not None],
                             result.done, result.queryLocator, result.size)

        return self._invoke(operation, headers, arguments, read)

    def query(self, soql: str, *, include_deleted: bool = False, batch_size: int | None = None,
              headers: Headers | None = None) -> Iterator[dict[str, Any]]:
        """Yield the records of a SOQL query, one page in memory at a time.

        :param soql: the SOQL query.
        :param include_deleted: use ``queryAll``.
        :param batch_size: ``QueryOptions.batchSize`` (200-2000).
        :param headers: further SOAP headers.
        """
        for page in self.query_pages(soql, include_deleted=include_deleted, batch_size=batch_size,
                                     headers=headers):
            yield from page

    def query_all(self, soql: str, *, batch_size: int | None = None,
                  headers: Headers | None = None) -> Iterator[dict[str, Any]]:
        """:meth:`query` through ``queryAll``: includes deleted and archived records."""
        return self.query(soql, include_deleted=True, batch_size=batch_size, headers=headers)

    def query_more(self, query_locator: str, *, headers: Headers | None = None) -> dict[str, Any]:
        """One ``queryMore`` page: ``{"done", "queryLocator", "records", "size"}``.

        :param query_locator: the locator of the previous page.
        """
        return self._query_page("queryMore", headers, queryLocator=query_locator).as_dict()

    def search(self, sosl: str, *, headers: Headers | None = None) -> list[dict[str, Any]]:
        """The records found by a SOSL search.

        :param sosl: the SOSL search (``FIND {...} RETURNING ...``).
        """
        result = self.call("search", headers=headers, searchString=sosl)
        return [item["record"] for item in (result or {}).get("searchRecords") or []]

    def retrieve(self, sobject: str, ids: Iterable[str], fields: Sequence[str], *,
                 headers: Headers | None = None) -> list[dict[str, Any] | None]:
        """Records by id, in the order of ``ids`` (None for an id that matches nothing).

        :param sobject: the sObject type.
        :param ids: record ids.
        :param fields: the fields to read.
        """
        if isinstance(fields, str) or not fields:
            raise ValueError("fields must be a non-empty list of field names")
        return self._batched("retrieve", ids, "ids", headers=headers, fieldList=",".join(fields),
                             sObjectType=sobject)

    # -- records -----------------------------------------------------------------------------------
    def create(self, records: Iterable[Mapping[str, Any]], *, sobject: str | None = None,
               headers: Headers | None = None) -> list[dict[str, Any]]:
        """Create records, 200 per call; one ``{"id", "success", "errors"}`` per record, in order.

        ``AllOrNoneHeader`` applies to each call of 200, not to the whole input. A call whose reply was
        lost is not sent again (it may have created its records): its records fail with statusCode
        ``OUTCOME_UNKNOWN`` and the next calls go on. update, upsert and delete are replayed (they converge).

        :param records: record dicts (``type`` key, or ``sobject``).
        :param sobject: the sObject type of records without a ``type``.
        :param headers: SOAP headers (``AllOrNoneHeader``, ``DuplicateRuleHeader``, ``EmailHeader`` ...).
        """
        return self._save("create", records, sobject, headers)

    def update(self, records: Iterable[Mapping[str, Any]], *, sobject: str | None = None,
               headers: Headers | None = None) -> list[dict[str, Any]]:
        """Update records by ``Id`` (``None`` values are blanked via ``fieldsToNull``), 200 per call.

        :param records: record dicts with ``Id``.
        :param sobject: the sObject type of records without a ``type``.
        :param headers: SOAP headers.
        """
        return self._save("update", records, sobject, headers)

    def upsert(self, external_id_field: str, records: Iterable[Mapping[str, Any]], *,
               sobject: str | None = None, headers: Headers | None = None) -> list[dict[str, Any]]:
        """Upsert records on an external id field, 200 per call; ``{"id", "created", "success", "errors"}``.

        :param external_id_field: the external id field (or ``Id``).
        :param records: record dicts.
        :param sobject: the sObject type of records without a ``type``.
        :param headers: SOAP headers.
        """
        if not external_id_field:
            raise ValueError("external_id_field is required")
        return self._save("upsert", records, sobject, headers, externalIDFieldName=external_id_field)

    def delete(self, ids: Iterable[str], *, headers: Headers | None = None) -> list[dict[str, Any]]:
        """Delete records (to the recycle bin), 200 per call.

        A call whose reply was lost is sent once more (delete converges); in that second answer,
        ``ENTITY_IS_DELETED`` means the lost call deleted the record, so it counts as deleted.

        :param ids: record ids.
        """
        def send(chunk: list[str]) -> list[dict[str, Any]]:
            try:
                return self.call("delete", headers=headers, ids=chunk)
            except SalesforceOutcomeUnknownError:
                return [_deleted_by_the_lost_call(r) for r in self.call("delete", headers=headers, ids=chunk)]

        return self._batched("delete", ids, "ids", send=send)

    def undelete(self, ids: Iterable[str], *, headers: Headers | None = None) -> list[dict[str, Any]]:
        """Restore records from the recycle bin, 200 per call.

        :param ids: record ids.
        """
        return self._batched("undelete", ids, "ids", headers=headers)

    def empty_recycle_bin(self, ids: Iterable[str], *, headers: Headers | None = None) -> list[dict[str, Any]]:
        """Purge deleted records from the recycle bin, 200 per call.

        :param ids: ids of deleted records.
        """
        return self._batched("emptyRecycleBin", ids, "ids", headers=headers)

    def merge(self, requests: Iterable[Mapping[str, Any]], *, headers: Headers | None = None) -> list[dict[str, Any]]:
        """Merge up to two records into a master record each; ``{"id", "mergedRecordIds", ...}`` per request.

        :param requests: ``{"masterRecord": {"type": "Account", "Id": ..., <fields to set>},
            "recordToMergeIds": [id, ...]}`` (``additionalInformationMap`` optional).
        """
        def prepare(chunk: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
            out = []
            for request in chunk:
                if not isinstance(request, Mapping) or "masterRecord" not in request \
                        or not request.get("recordToMergeIds"):
                    raise ValueError("a merge request needs 'masterRecord' and 'recordToMergeIds'")
                ids = request["recordToMergeIds"]
                out.append({**request, "masterRecord": self._sobjects([request["masterRecord"]], None)[0],
                            "recordToMergeIds": [ids] if isinstance(ids, str) else list(ids)})
            return out

        return self._batched("merge", requests, "request", prepare=prepare, headers=headers)

    def convert_lead(self, lead_converts: Iterable[Mapping[str, Any]], *,
                     headers: Headers | None = None) -> list[dict[str, Any]]:
        """Convert leads, 100 per call; ``{"leadId", "accountId", "contactId", "opportunityId", "success", "errors"}``.

        :param lead_converts: ``{"leadId": ..., "convertedStatus": ..., "doNotCreateOpportunity": ...,
            "accountId": ..., "ownerId": ...}`` (the WSDL's ``LeadConvert`` elements).
        """
        def prepare(chunk: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
            for item in chunk:
                if not isinstance(item, Mapping) or not item.get("leadId") or not item.get("convertedStatus"):
                    raise ValueError("a lead conversion needs 'leadId' and 'convertedStatus'")
            return [dict(item) for item in chunk]

        return self._batched("convertLead", lead_converts, "leadConverts", prepare=prepare, headers=headers)

    def process(self, actions: Iterable[Mapping[str, Any]], *, headers: Headers | None = None) -> list[dict[str, Any]]:
        """Submit, approve or reject approval requests, 200 per call.

        :param actions: ``{"objectId": ..., "comments": ...}`` to submit (``ProcessSubmitRequest``) or
            ``{"workitemId": ..., "action": "Approve"|"Reject"|"Removed"}`` (``ProcessWorkitemRequest``).
        """
        def prepare(chunk: list[Mapping[str, Any]]) -> list[Any]:
            client = self.get_conn()
            out = []
            for action in chunk:
                kind = "ProcessWorkitemRequest" if isinstance(action, Mapping) and "workitemId" in action else \
                    "ProcessSubmitRequest"
                if not isinstance(action, Mapping) or (kind == "ProcessSubmitRequest" and not action.get("objectId")):
                    raise ValueError("a process action needs 'objectId' (submit) or 'workitemId' and 'action'")
                out.append(client.get_type(f"{{urn:partner.soap.sforce.com}}{kind}")(**action))
            return out

        return self._batched("process", actions, "actions", prepare=prepare, headers=headers)

    def find_duplicates(self, records: Iterable[Mapping[str, Any]], *, sobject: str | None = None,
                        headers: Headers | None = None) -> list[dict[str, Any]]:
        """Duplicate rule matches of records not saved yet, 50 per call.

        :param records: record dicts.
        :param sobject: the sObject type of records without a ``type``.
        """
        return self._batched("findDuplicates", records, "sObjects",
                             prepare=lambda c: self._sobjects(c, sobject), headers=headers)

    def find_duplicates_by_ids(self, ids: Iterable[str], *, headers: Headers | None = None) -> list[dict[str, Any]]:
        """Duplicate rule matches of saved records, 50 per call.

        :param ids: record ids.
        """
        return self._batched("findDuplicatesByIds", ids, "ids", headers=headers)

    # -- email -------------------------------------------------------------------------------------
    def send_email(self, messages: Iterable[Mapping[str, Any]], *, mass: bool = False,
                   headers: Headers | None = None) -> list[dict[str, Any]]:
        """Send emails, 10 per call; one ``{"success", "errors"}`` per message.

        :param messages: ``SingleEmailMessage`` fields (``toAddresses``, ``subject``, ``plainTextBody``,
            ``htmlBody``, ``targetObjectId``, ``templateId``, ``whatId`` ...).
        :param mass: the messages are ``MassEmailMessage`` (``targetObjectIds``, ``templateId``).
        """
        kind = "MassEmailMessage" if mass else "SingleEmailMessage"

        def prepare(chunk: list[Mapping[str, Any]]) -> list[Any]:
            factory = self.get_conn().get_type(f"{{urn:partner.soap.sforce.com}}{kind}")
            out = []
            for message in chunk:
                if not isinstance(message, Mapping):
                    raise TypeError(f"an email message must be a mapping, not {type(message).__name__}")
                out.append(factory(**{k: ([v] if isinstance(v, str) and k.endswith(("Addresses", "Ids")) else v)
                                      for k, v in message.items()}))
            return out

        return self._batched("sendEmail", messages, "messages", prepare=prepare, headers=headers)

    def send_email_message(self, ids: Iterable[str], *, headers: Headers | None = None) -> list[dict[str, Any]]:
        """Send draft ``EmailMessage`` records, 10 per call.

        :param ids: ``EmailMessage`` ids.
        """
        return self._batched("sendEmailMessage", ids, "ids", headers=headers)

    # -- describe & org ----------------------------------------------------------------------------
    def describe_global(self, *, headers: Headers | None = None) -> dict[str, Any]:
        """``describeGlobal``: ``{"encoding", "maxBatchSize", "sobjects": [...]}``."""
        return self.call("describeGlobal", headers=headers)

    def describe_sobject(self, sobject: str, *, headers: Headers | None = None) -> dict[str, Any]:
        """``describeSObject``: name, label, flags, ``fields``, ``childRelationships`` ...

        :param sobject: the sObject type.
        """
        return self.call("describeSObject", headers=headers, sObjectType=sobject)

    def describe_sobjects(self, sobjects: Iterable[str], *, headers: Headers | None = None) -> list[dict[str, Any]]:
        """``describeSObjects`` for many types, 100 per call.

        :param sobjects: sObject types.
        """
        return self._batched("describeSObjects", sobjects, "sObjectType", headers=headers)

    def get_deleted(self, sobject: str, start: datetime, end: datetime, *,
                    headers: Headers | None = None) -> dict[str, Any]:
        """Records deleted in ``[start, end]``: ``{"deletedRecords": [{"id", "deletedDate"}], ...}``.

        :param sobject: the sObject type.
        :param start: window start (aware datetime, or naive UTC).
        :param end: window end.
        """
        return self.call("getDeleted", headers=headers, sObjectType=sobject, startDate=start, endDate=end)

    def get_updated(self, sobject: str, start: datetime, end: datetime, *,
                    headers: Headers | None = None) -> dict[str, Any]:
        """Ids of records updated in ``[start, end]``: ``{"ids": [...], "latestDateCovered"}``.

        :param sobject: the sObject type.
        :param start: window start.
        :param end: window end.
        """
        return self.call("getUpdated", headers=headers, sObjectType=sobject, startDate=start, endDate=end)

    def get_server_timestamp(self, *, headers: Headers | None = None) -> datetime:
        """The server's current time."""
        return _unwrap(self.call("getServerTimestamp", headers=headers), "timestamp")

    def get_user_info(self, *, headers: Headers | None = None) -> dict[str, Any]:
        """The connected user and org (``userId``, ``userName``, ``organizationId`` ...)."""
        return self.call("getUserInfo", headers=headers)

    def set_password(self, user_id: str, password: str, *, headers: Headers | None = None) -> None:
        """Set a user's password.

        :param user_id: the user id.
        :param password: the new password (masked in logs).
        """
        mask(password)
        self.call("setPassword", headers=headers, userId=user_id, password=password)

    def reset_password(self, user_id: str, *, headers: Headers | None = None) -> str:
        """Reset a user's password to a generated one, which is returned (and masked in logs).

        :param user_id: the user id.
        """
        password = _unwrap(self.call("resetPassword", headers=headers, userId=user_id), "password")
        mask(password)
        return password


def _check_headers(headers: Headers | None) -> dict[str, dict[str, Any]]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise TypeError("headers must be a mapping of SOAP header name to its fields")
    out = {}
    for name, values in headers.items():
        if name not in HEADER_NAMES:
            raise ValueError(f"unknown SOAP header {name!r}; expected one of {', '.join(HEADER_NAMES)}")
        if not isinstance(values, Mapping):
            raise TypeError(f"SOAP header {name} must be a mapping of its fields")
        out[name] = dict(values)
    return out


def _allowed_headers(client: Any, operation: str) -> set[str]:
    """The header names the WSDL declares for ``operation`` (e.g. no ``QueryOptions`` on ``create``)."""
    from airflow_provider_salesforce_suite.hooks._soap.client import BINDING

    header = client.wsdl.bindings[BINDING].get(operation).input.header
    return {name for name, _element in header.type.elements} if header is not None else set()


def _deleted_by_the_lost_call(result: dict[str, Any]) -> dict[str, Any]:
    """A re-sent delete's result: ``ENTITY_IS_DELETED`` alone means the first (lost) call deleted it."""
    codes = {error.get("statusCode") for error in result.get("errors") or []}
    if not result.get("success") and codes == {"ENTITY_IS_DELETED"}:
        return {**result, "success": True, "errors": []}
    return result


def _unwrap(result: Any, name: str) -> Any:
    """The one field of a one-field result (zeep hands some of those over already unwrapped)."""
    return result[name] if isinstance(result, Mapping) else result


def _items(items: Iterable[Any], argument: str) -> Iterator[Any]:
    if isinstance(items, (str, bytes, Mapping)):
        raise TypeError(f"{argument} must be a list (or iterable) of items, not a single {type(items).__name__}")
    return iter(items)
