"""Pardot v5 objects (create, read, update, delete, paged reads) and the v4 operations v5 lacks.

Table-driven: :data:`~airflow_provider_salesforce_suite.core.pardot_objects.OBJECTS` says which
operations each object allows, so one set of methods serves all of them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

from airflow_provider_salesforce_suite.core.errors import (
    SalesforceNotFoundError,
    SalesforceOutcomeUnknownError,
    outcome_unknown,
)
from airflow_provider_salesforce_suite.core.pardot_objects import OBJECTS, PardotObjectSpec

if TYPE_CHECKING:
    import requests

#: Pardot v5 returns at most 1000 records a page; v4 query at most 200; v4 batches take 50.
V5_MAX_PAGE = 1000
V4_MAX_PAGE = 200
V4_BATCH_SIZE = 50


def object_spec(obj: str, operation: str | None = None) -> PardotObjectSpec:
    """The spec of a v5 object (``prospects``, ``list-memberships`` ...), checking ``operation``.

    :param obj: the object path.
    :param operation: ``create``, ``read``, ``update`` or ``delete``; raises ValueError when the API
        does not allow it on this object.
    """
    spec = OBJECTS.get(obj)
    if spec is None:
        raise ValueError(f"Unknown Pardot object {obj!r}; known: {', '.join(sorted(OBJECTS))}")
    if operation is not None and operation not in spec.operations:
        raise ValueError(f"Pardot does not allow {operation} on {obj} (allowed: {', '.join(sorted(spec.operations))})")
    return spec


def _fields(spec: PardotObjectSpec, fields: Sequence[str] | str | None) -> str:
    if fields is None:
        return ",".join(spec.all_fields)
    return fields if isinstance(fields, str) else ",".join(fields)


class PardotObjectsMixin:
    """v5 object CRUD and paging, plus v4 batch and query operations. Needs ``request``, ``v5_path``, ``v4_path``."""

    request: Any
    v5_path: Any
    v4_path: Any

    def iter_records(self, obj: str, fields: Sequence[str] | str | None = None, *,
                     filters: Mapping[str, Any] | None = None, page_size: int = V5_MAX_PAGE,
                     max_records: int | None = None) -> Iterator[dict[str, Any]]:
        """Yield the records of a v5 object lazily, one page (``nextPageToken``) at a time.

        :param obj: the object path (``prospects``, ``visitor-activities`` ...).
        :param fields: fields to return (default: every field the object has).
        :param filters: query filters (``{"email": "a@b.c"}``, ``{"updatedAtAfter": "2026-01-01T00:00:00-00:00"}``).
        :param page_size: records a page (1..1000).
        :param max_records: stop after this many.
        """
        spec = object_spec(obj, "read")
        if not 1 <= page_size <= V5_MAX_PAGE:
            raise ValueError(f"page_size must be between 1 and {V5_MAX_PAGE}, got {page_size}")
        params: dict[str, Any] | None = {"fields": _fields(spec, fields), "limit": page_size, **(filters or {})}
        path, seen = self.v5_path(spec.path), 0
        while True:
            body = self.request("GET", path, params=params).json()
            for record in body.get("values") or []:
                yield record
                seen += 1
                if max_records is not None and seen >= max_records:
                    return
            token = body.get("nextPageToken")
            if not token:
                return
            params = {"nextPageToken": token}

    def get_record(self, obj: str, record_id: int | str, fields: Sequence[str] | str | None = None) -> dict[str, Any]:
        """Read one record.

        :param obj: the object path.
        :param record_id: the Pardot id.
        :param fields: fields to return (default: all).
        """
        spec = object_spec(obj, "read")
        return self.request("GET", self.v5_path(f"{spec.path}/{record_id}"),
                            params={"fields": _fields(spec, fields)}).json()

    def create_record(self, obj: str, values: Mapping[str, Any],
                      fields: Sequence[str] | str | None = ("id",)) -> dict[str, Any]:
        """Create one record; returns the requested ``fields`` of it.

        Never replayed: when the reply is lost, :class:`SalesforceOutcomeUnknownError` says the record may
        have been created (for prospects, :meth:`upsert_prospect_by_email` can be sent again safely).

        :param obj: the object path.
        :param values: field values.
        :param fields: fields to return.
        """
        spec = object_spec(obj, "create")
        try:
            return self.request("POST", self.v5_path(spec.path), params={"fields": _fields(spec, fields)},
                                json=dict(values), idempotent=False).json()
        except SalesforceOutcomeUnknownError as exc:
            raise outcome_unknown(exc, f"Pardot {spec.path} create", "the record may have been created") from None

    def update_record(self, obj: str, record_id: int | str, values: Mapping[str, Any],
                      fields: Sequence[str] | str | None = ("id",)) -> dict[str, Any]:
        """Update one record (PATCH); returns the requested ``fields``.

        :param obj: the object path.
        :param record_id: the Pardot id.
        :param values: the fields to change.
        :param fields: fields to return.
        """
        spec = object_spec(obj, "update")
        # Replayable: setting the same values again converges.
        return self.request("PATCH", self.v5_path(f"{spec.path}/{record_id}"),
                            params={"fields": _fields(spec, fields)}, json=dict(values), idempotent=True).json()

    def delete_record(self, obj: str, record_id: int | str) -> None:
        """Delete one record.

        A delete whose reply was lost is sent once more (delete converges); a 404 to that second
        request means the lost one deleted the record.

        :param obj: the object path.
        :param record_id: the Pardot id.
        """
        spec = object_spec(obj, "delete")
        path = self.v5_path(f"{spec.path}/{record_id}")
        try:
            self.request("DELETE", path, idempotent=False)  # not the transport's blind replay: see above
        except SalesforceOutcomeUnknownError:
            try:
                self.request("DELETE", path, idempotent=False)
            except SalesforceNotFoundError:
                return

    def upsert_prospect_by_email(self, email: str, values: Mapping[str, Any],
                                 fields: Sequence[str] = ("id", "email")) -> dict[str, Any]:
        """Update the latest prospect with ``email``, or create one (``upsertLatestByEmail``).

        :param email: the match email.
        :param values: prospect fields.
        :param fields: fields to return.
        """
        body = {"matchEmail": email, "prospect": {k: v for k, v in values.items() if k != "email"},
                "fields": list(fields)}
        return self.request("POST", self.v5_path("prospects/do/upsertLatestByEmail"), json=body,
                            idempotent=True).json()

    def send_email(self, values: Mapping[str, Any], fields: Sequence[str] = ("id",)) -> dict[str, Any]:
        """Send a one-to-one or list email (``POST /api/v5/objects/emails``).

        :param values: ``prospectId`` or ``listIds``, ``campaignId``, ``emailTemplateId`` or content.
        :param fields: fields to return.
        """
        return self.create_record("emails", values, fields)

    # -- v4 ----------------------------------------------------------------------------------

    def v4_batch_prospects(self, prospects: Iterable[Mapping[str, Any]], operation: str = "create",
                           batch_size: int = V4_BATCH_SIZE) -> Iterator[tuple[Mapping[str, Any], str | None]]:
        """Create or update prospects with v4 ``batchCreate``/``batchUpdate``, ``batch_size`` at a time.

        Lazy: yields ``(prospect, error or None)`` per input prospect, batch by batch.

        :param prospects: prospect field dicts (update: with ``id`` or ``email``).
        :param operation: ``create`` or ``update``.
        :param batch_size: prospects a call (Pardot takes at most 50).
        """
        if operation not in ("create", "update"):
            raise ValueError(f"operation must be 'create' or 'update', not {operation!r}")
        if not 1 <= batch_size <= V4_BATCH_SIZE:
            raise ValueError(f"batch_size must be between 1 and {V4_BATCH_SIZE}")
        path = self.v4_path("prospect", "batchCreate" if operation == "create" else "batchUpdate")
        batch: list[Mapping[str, Any]] = []

        def flush() -> Iterator[tuple[Mapping[str, Any], str | None]]:
            try:
                reply = self.request("POST", path, data={"prospects": json.dumps({"prospects": batch})},
                                     idempotent=operation == "update").json()
            except SalesforceOutcomeUnknownError as exc:
                raise outcome_unknown(exc, f"Pardot v4 batchCreate of {len(batch)} prospect(s)",
                                      "the prospects may have been created") from None
            errors = reply.get("errors") or {}
            for index, prospect in enumerate(batch):
                yield prospect, errors.get(str(index))

        for prospect in prospects:
            batch.append(dict(prospect))
            if len(batch) == batch_size:
                yield from flush()
                batch = []
        if batch:
            yield from flush()

    def v4_query(self, obj: str, params: Mapping[str, Any] | None = None, *,
                 max_records: int | None = None) -> Iterator[dict[str, Any]]:
        """Yield the records of a v4 ``query`` lazily, 200 a call (``offset`` paging).

        :param obj: the v4 object (``prospect``, ``visitorActivity`` ...).
        :param params: query criteria (``updated_after``, ``id_greater_than`` ...).
        :param max_records: stop after this many.
        """
        offset, seen = 0, 0
        while True:
            reply = self.request("GET", self.v4_path(obj, "query"),
                                 params={**(params or {}), "limit": V4_MAX_PAGE, "offset": offset}).json()
            rows = (reply.get("result") or {}).get(obj) or []
            rows = [rows] if isinstance(rows, dict) else rows  # v4 gives a lone record unwrapped
            for row in rows:
                yield row
                seen += 1
                if max_records is not None and seen >= max_records:
                    return
            if len(rows) < V4_MAX_PAGE:
                return
            offset += len(rows)

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Any Pardot call (relative path or absolute URL), with the Business Unit header and error handling.

        :param method: HTTP method.
        :param path: ``/api/v5/...`` or ``/api/{object}/version/4/do/{op}``.
        :param kwargs: ``params``, ``json``, ``data``, ``headers`` as :meth:`PardotHook.request` takes.
        """
        return self.request(method, path, **kwargs)
