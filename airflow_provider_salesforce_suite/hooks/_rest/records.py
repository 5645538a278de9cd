"""sObject Collections writes for ``SalesforceRestHook.save_records``: chunking, bounded concurrency,
in-order lazy results, and turning a failed call into per-record failures (nothing is ever lost).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Literal

from airflow_provider_salesforce_suite.core.errors import (
    SalesforceApiError,
    SalesforceSuiteError,
    SalesforceTransportError,
)

Operation = Literal["insert", "update", "upsert", "delete"]
OPERATIONS: tuple[str, ...] = ("insert", "update", "upsert", "delete")
#: Salesforce's per-call limits.
MAX_COLLECTION_RECORDS = 200
MAX_RETRIEVE_IDS = 2000
MAX_COMPOSITE_SUBREQUESTS = 25
MAX_TREE_RECORDS = 200
#: statusCode of the per-record error when a non-replayable insert lost its connection.
OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"
TRANSPORT_ERROR = "TRANSPORT_ERROR"


class SalesforceCompositeLimitError(SalesforceSuiteError, ValueError):
    """A composite, batch, collection or tree request over Salesforce's size limit (nothing was sent)."""


class SalesforceMixedTypesError(SalesforceSuiteError, ValueError):
    """A record's ``attributes.type`` differs from the sObject of the call (the chunk was not sent)."""


@dataclass(frozen=True)
class RecordResult:
    """The outcome of one input record of :meth:`SalesforceRestHook.save_records`.

    :param index: position of the record in the input (0-based).
    :param id: the record id (``None`` when a create failed or the outcome is unknown).
    :param success: whether Salesforce saved the record.
    :param created: ``True``/``False`` for insert and upsert, ``None`` for update and delete.
    :param errors: Salesforce's errors for the record (``statusCode``, ``message``, ``fields``).
    """

    index: int
    id: str | None
    success: bool
    created: bool | None
    errors: list[dict[str, Any]] = field(default_factory=list)


def check_limit(count: int, limit: int, what: str) -> None:
    """Raise :class:`SalesforceCompositeLimitError` when ``count`` exceeds ``limit``.

    :param count: items in the request.
    :param limit: Salesforce's limit.
    :param what: what is counted, for the message.
    """
    if count > limit:
        raise SalesforceCompositeLimitError(f"{what}: {count} given, Salesforce accepts at most {limit}")


def prepare(operation: str, sobject: str, record: Any, index: int) -> Any:
    """The wire form of one input record: a typed record, or an id for delete.

    :param operation: the save operation.
    :param sobject: the call's sObject.
    :param record: the input record (a bare id string is accepted for delete).
    :param index: its input position, for error messages.
    """
    if operation == "delete":
        record_id = record if isinstance(record, str) else next(
            (v for k, v in dict(record).items() if k.lower() == "id"), None)
        if not record_id:
            raise ValueError(f"record {index}: delete needs an Id")
        return str(record_id)
    values = dict(record)
    attributes = dict(values.get("attributes") or {})
    given = attributes.get("type")
    if given is not None and str(given).lower() != sobject.lower():
        raise SalesforceMixedTypesError(
            f"record {index} has attributes.type {given!r} but the call saves {sobject!r}; "
            "save each object type in its own call"
        )
    attributes["type"] = sobject
    values["attributes"] = attributes
    return values


def chunks(operation: str, sobject: str, records: Iterable[Any], size: int) -> Iterator[tuple[int, list[Any]]]:
    """``(start index, wire records)`` per chunk of at most ``size``, consuming ``records`` lazily.

    :param operation: the save operation.
    :param sobject: the call's sObject.
    :param records: input records.
    :param size: chunk size.
    """
    source = iter(records)
    start = 0
    while True:
        batch = list(islice(source, size))
        if not batch:
            return
        yield start, [prepare(operation, sobject, r, start + i) for i, r in enumerate(batch)]
        start += len(batch)


def failed_chunk(start: int, count: int, error: Exception, operation: str) -> list[RecordResult]:
    """Per-record failures for a call that failed as a whole (the chunk is reported, not lost).

    :param start: input index of the chunk's first record.
    :param count: records in the chunk.
    :param error: what the call raised.
    :param operation: the save operation.
    """
    if isinstance(error, SalesforceApiError):
        item = {"statusCode": error.error_code or f"HTTP_{error.status}", "message": error.message,
                "fields": list(error.fields)}
    elif operation == "insert":
        item = {"statusCode": OUTCOME_UNKNOWN, "fields": [], "message": (
            f"{error}. The insert was not replayed, to avoid duplicates: these records may or may not "
            "have been created; check before sending them again, or upsert by an external id")}
    else:
        item = {"statusCode": TRANSPORT_ERROR, "message": str(error), "fields": []}
    return [RecordResult(start + i, None, False, None, [dict(item)]) for i in range(count)]


def parse_results(start: int, count: int, body: Any, operation: str) -> list[RecordResult]:
    """The RecordResults of one collections response (one item per record, in order).

    :param start: input index of the chunk's first record.
    :param count: records sent.
    :param body: the parsed response.
    :param operation: the save operation.
    """
    if not isinstance(body, list) or len(body) != count:
        problem = SalesforceApiError(200, "UNEXPECTED_RESPONSE", f"expected {count} results, got {body!r:.200}")
        return failed_chunk(start, count, problem, operation)
    results = []
    for i, item in enumerate(body):
        success = bool(item.get("success"))
        if operation == "upsert":
            created: bool | None = bool(item.get("created")) if success else None
        elif operation == "insert":
            created = success
        else:
            created = None
        results.append(RecordResult(start + i, item.get("id"), success, created, list(item.get("errors") or [])))
    return results


def save_chunk(send: Callable[[list[Any]], Any], operation: str, start: int,
               payload: list[Any]) -> list[RecordResult]:
    """Send one chunk; any API or transport failure becomes per-record failures.

    :param send: makes the call and returns the parsed body.
    :param operation: the save operation.
    :param start: input index of the chunk's first record.
    :param payload: the chunk's wire records.
    """
    try:
        body = send(payload)
    except (SalesforceApiError, SalesforceTransportError) as error:
        return failed_chunk(start, len(payload), error, operation)
    return parse_results(start, len(payload), body, operation)


def in_order(work: Iterator[tuple[int, list[Any]]], run: Callable[[int, list[Any]], list[Any]],
             concurrency: int) -> Iterator[Any]:
    """Run ``run(start, chunk)`` for each chunk on up to ``concurrency`` threads; yield results in order.

    At most ``concurrency`` calls are in flight; chunks are pulled from ``work`` only as slots free
    up, so memory stays bounded by about ``(concurrency + 1) * chunk size`` records.

    :param work: ``(start, chunk)`` pairs, produced lazily.
    :param run: the call for one chunk.
    :param concurrency: calls in flight at most.
    """
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="salesforce-rest") as pool:
        pending: deque[Future] = deque()

        def fill() -> None:
            while len(pending) < concurrency:
                item = next(work, None)
                if item is None:
                    return
                pending.append(pool.submit(run, *item))

        try:
            fill()
            while pending:
                results = pending.popleft().result()
                fill()
                yield from results
        finally:
            for future in pending:
                future.cancel()


def id_chunks(ids: Iterable[str], size: int) -> Iterator[list[str]]:
    """Lists of at most ``size`` ids, consuming ``ids`` lazily.

    :param ids: record ids.
    :param size: chunk size.
    """
    source = iter(ids)
    while batch := [str(i) for i in islice(source, size)]:
        yield batch


def count_tree(records: Sequence[Mapping[str, Any]]) -> int:
    """Records in an sObject Tree, nested children included.

    :param records: top-level tree records.
    """
    total = 0
    for record in records:
        total += 1
        for value in record.values():
            if isinstance(value, Mapping) and isinstance(value.get("records"), list):
                total += count_tree(value["records"])
    return total
