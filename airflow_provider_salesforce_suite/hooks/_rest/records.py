"""sObject Collections writes for ``SalesforceRestHook.save_records``: chunking, bounded concurrency,
in-order lazy results, and turning a failed call into per-record failures (nothing is ever lost).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_salesforce_suite.core.errors import (
    SalesforceApiError,
    SalesforceOutcomeUnknownError,
    SalesforceSuiteError,
    SalesforceTransportError,
)

if TYPE_CHECKING:
    from airflow_provider_salesforce_suite.hooks._rest.journal import SaveJournal

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
#: How a chunk's call ended (see :func:`send_chunk`).
ANSWERED, NOT_DONE, UNKNOWN = "answered", "not_done", "unknown"


class SalesforceCompositeLimitError(SalesforceSuiteError, ValueError):
    """A composite, batch, collection or tree request over Salesforce's size limit (nothing was sent)."""


class SalesforceInvalidRecordError(SalesforceSuiteError, ValueError):
    """An input record cannot be sent as it is (its chunk was not sent); the message names it."""


class SalesforceMixedTypesError(SalesforceInvalidRecordError):
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

    @property
    def unknown(self) -> bool:
        """Whether the save may or may not have happened (statusCode ``OUTCOME_UNKNOWN``)."""
        return any(error.get("statusCode") == OUTCOME_UNKNOWN for error in self.errors)


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
            raise SalesforceInvalidRecordError(f"record {index}: delete needs an Id")
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


def unknown_outcome(error: Exception, operation: str) -> bool:
    """Whether a call that failed as a whole may nevertheless have been carried out.

    Only inserts matter (update, upsert and delete converge when sent again): the connection failed
    after the request went out (:class:`SalesforceOutcomeUnknownError`), Salesforce answered 2xx but
    the reply cannot be read, or a gateway gave up (502/504) while Salesforce may have gone on.
    A 503, a limit or a connect failure means the call was not processed.

    :param error: what the call raised.
    :param operation: the save operation.
    """
    if operation != "insert":
        return False
    if isinstance(error, SalesforceOutcomeUnknownError):
        return True
    return isinstance(error, SalesforceApiError) and (error.status < 300 or error.status in (502, 504))


def failed_chunk(start: int, count: int, error: Exception, operation: str, *,
                 unknown: bool = False) -> list[RecordResult]:
    """Per-record failures for a call that failed as a whole (the chunk is reported, not lost).

    :param start: input index of the chunk's first record.
    :param count: records in the chunk.
    :param error: what the call raised.
    :param operation: the save operation.
    :param unknown: the call may have been carried out: the records get statusCode ``OUTCOME_UNKNOWN``.
    """
    if unknown:
        item = {"statusCode": OUTCOME_UNKNOWN, "fields": [], "message": (
            f"{error}. The {operation} was not replayed, to avoid duplicates: these records may or may not "
            "have been created; check before sending them again, or upsert by an external id")}
    elif isinstance(error, SalesforceApiError):
        item = {"statusCode": error.error_code or f"HTTP_{error.status}", "message": error.message,
                "fields": list(error.fields)}
    else:
        item = {"statusCode": TRANSPORT_ERROR, "message": str(error), "fields": []}
    return [RecordResult(start + i, None, False, None, [dict(item)]) for i in range(count)]


def parse_results(start: int, body: list[Any], operation: str) -> list[RecordResult]:
    """The RecordResults of one collections response (one item per record, in order).

    :param start: input index of the chunk's first record.
    :param body: the parsed response (one item per record sent).
    :param operation: the save operation.
    """
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


def send_chunk(send: Callable[[list[Any]], Any], operation: str, start: int,
               payload: list[Any]) -> tuple[list[RecordResult], str]:
    """Send one chunk; ``(results, outcome)``. Any API or transport failure becomes per-record
    failures; ``outcome`` says which: :data:`ANSWERED` (Salesforce's per-record results),
    :data:`NOT_DONE` (failed as a whole, not carried out) or :data:`UNKNOWN` (see :func:`unknown_outcome`).

    :param send: makes the call and returns the parsed body.
    :param operation: the save operation.
    :param start: input index of the chunk's first record.
    :param payload: the chunk's wire records.
    """
    try:
        body = send(payload)
        if not isinstance(body, list) or len(body) != len(payload):
            raise SalesforceApiError(200, "UNEXPECTED_RESPONSE", f"expected {len(payload)} results, got {body!r:.200}")
    except (SalesforceApiError, SalesforceTransportError) as error:
        unknown = unknown_outcome(error, operation)
        return failed_chunk(start, len(payload), error, operation, unknown=unknown), UNKNOWN if unknown else NOT_DONE
    return parse_results(start, body, operation), ANSWERED


#: Rounds of "query back, send what is missing" for an insert chunk whose outcome is unknown.
RECONCILE_ROUNDS = 3


@dataclass
class ChunkSaver:
    """Saves one chunk of ``save_records``: skips what the journal says is done, notes an insert
    chunk before sending it and every answer after, and settles an insert whose outcome is unknown.

    Settling: with an ``idempotency_field``, :attr:`find` looks the chunk's keys up and only the
    records not found are sent again (up to :data:`RECONCILE_ROUNDS` times); without one, the
    records stay ``OUTCOME_UNKNOWN`` and are never sent again by a retry.

    :param send: makes the call for a list of wire records and returns the parsed body.
    :param operation: the save operation.
    :param journal: the run's journal (see ``hooks/_rest/journal.py``), or None.
    :param idempotency_field: the insert records' field holding a key unique to each record.
    :param find: ``{key: record id}`` of the records that have one of the keys given.
    """

    send: Callable[[list[Any]], Any]
    operation: str
    journal: SaveJournal | None = None
    idempotency_field: str | None = None
    find: Callable[[list[str]], dict[str, str]] | None = None

    def __call__(self, start: int, payload: list[Any]) -> list[RecordResult]:
        journal = self.journal
        if journal is not None and (kept := journal.settled(start)) is not None:
            return kept
        insert = self.operation == "insert"
        if insert and journal is not None and journal.was_sent(start):
            earlier = SalesforceOutcomeUnknownError("an earlier try of this task sent these records and got no answer")
            results, outcome = failed_chunk(start, len(payload), earlier, self.operation, unknown=True), UNKNOWN
        else:
            if insert and journal is not None:
                journal.pending(start, payload)  # a worker dying from here on leaves the chunk unknown
            results, outcome = send_chunk(self.send, self.operation, start, payload)
        if outcome == UNKNOWN and self.idempotency_field and self.find is not None:
            results, outcome = self._reconcile(start, payload, results)
        if journal is not None and outcome == ANSWERED:
            journal.done(start, payload, results)
        elif journal is not None and outcome == NOT_DONE:
            journal.forget(start)  # nothing of it was written: a retry sends it again
        return results

    def _reconcile(self, start: int, payload: list[Any], results: list[RecordResult]) -> tuple[list[RecordResult], str]:
        """Look the unknown records up by their keys; send again only those not found."""
        results = list(results)
        name = str(self.idempotency_field)
        todo = [i for i, r in enumerate(results) if r.unknown]
        unsettled = set(todo)  # records without Salesforce's own answer yet
        todo = [i for i in todo if isinstance(payload[i], Mapping) and payload[i].get(name) not in (None, "")]
        for _ in range(RECONCILE_ROUNDS):
            keys = {str(payload[i][name]): i for i in todo}
            try:
                found = self.find(list(keys)) if keys else {}  # type: ignore[misc]
            except (SalesforceApiError, SalesforceTransportError):
                break  # still unknown: a retry of the task looks again
            for key, record_id in found.items():
                if key in keys:
                    results[keys[key]] = RecordResult(start + keys[key], record_id, True, True)
                    unsettled.discard(keys[key])
            todo = [i for key, i in keys.items() if key not in found]
            if not todo:
                break
            again, outcome = send_chunk(self.send, self.operation, 0, [payload[i] for i in todo])
            for result, i in zip(again, todo):
                results[i] = replace(result, index=start + i)
            if outcome == ANSWERED:
                unsettled.difference_update(todo)
            if outcome != UNKNOWN:
                break
        # With records unsettled the pending note stays, so a retry looks them up again (a record
        # found now must not be sent again by a retry).
        return results, UNKNOWN if unsettled else ANSWERED


def in_order(work: Iterator[tuple[int, list[Any]]], run: Callable[[int, list[Any]], list[Any]],
             concurrency: int) -> Iterator[Any]:
    """Run ``run(start, chunk)`` for each chunk on up to ``concurrency`` threads; yield results in order.

    At most ``concurrency`` calls are in flight; chunks are pulled from ``work`` only as slots free
    up, so memory stays bounded by about ``(concurrency + 1) * chunk size`` records. When ``work``
    raises (a bad input row), the calls already in flight finish and their results are yielded
    before the error is raised: the caller learns the outcome of everything that was sent.

    :param work: ``(start, chunk)`` pairs, produced lazily.
    :param run: the call for one chunk.
    :param concurrency: calls in flight at most.
    """
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="salesforce-rest") as pool:
        pending: deque[Future] = deque()
        input_error: Exception | None = None

        def fill() -> None:
            nonlocal input_error
            while input_error is None and len(pending) < concurrency:
                try:
                    item = next(work, None)
                except Exception as exc:  # noqa: BLE001 - raised once the calls in flight are settled
                    input_error = exc
                    return
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
        if input_error is not None:
            raise input_error


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
