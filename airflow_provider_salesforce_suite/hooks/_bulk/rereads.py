"""Streamed result bodies read again when their connection is cut mid-body.

The transport retries a request whose reply fails inside ``requests``, but a streamed body
(``stream=True``) is read later, by the code consuming it: a connection cut then escapes as
``requests``' ``ChunkedEncodingError``. A Bulk result (an ingest job's results, a query results
page, a 1.0 batch's result) is a fixed document, and GET is idempotent, so :func:`reread_body`
fetches it again from the start, skips the bytes already handed on and carries on: the consumer
sees every byte exactly once, never a row twice or half a row. After the connection's retry
bound it raises :class:`~airflow_provider_salesforce_suite.core.errors.SalesforceTransportError`
naming the job and the path.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable, Iterator

from airflow_provider_salesforce_suite.core.errors import SalesforceTransportError

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)


def reread_body(fetch: Callable[[], requests.Response], chunk_bytes: int, *, retries: int, what: str,
                first: requests.Response | None = None) -> Iterator[bytes]:
    """The body of ``fetch()``'s response in chunks, fetched again after a cut up to ``retries`` times.

    :param fetch: sends the GET (through the transport: auth, retries of the request itself).
    :param chunk_bytes: read size.
    :param retries: most re-fetches after cuts (the connection's ``max_retries``).
    :param what: the job and path, for the log and the error (``Bulk job 750...: GET /services/...``).
    :param first: a response already received for the first read (its headers were needed).
    :raises SalesforceTransportError: the body was cut more than ``retries`` times, or a re-read
        body is shorter than what was already handed on.
    """
    import requests

    # the connection cut or stalled after the headers (requests wraps urllib3's errors in these)
    cut_failures = (requests.exceptions.ChunkedEncodingError, requests.ConnectionError, requests.Timeout)
    handed = 0  # bytes already yielded: a re-read skips them
    cuts = 0
    response = first
    while True:
        if response is None:
            response = fetch()
        read = 0
        try:
            with response:
                for chunk in response.iter_content(chunk_bytes):
                    end = read + len(chunk)
                    if end > handed:
                        yield chunk[handed - read:] if read < handed else chunk
                        handed = end
                    read = end
        except cut_failures as exc:
            cuts += 1
            if cuts > retries:
                raise SalesforceTransportError(
                    f"{what}: the connection was cut mid-body {cuts} times ({type(exc).__name__}); "
                    f"{handed} bytes were read. Giving up after {retries} re-reads") from exc
            log.warning("%s: the connection was cut after %d bytes (%s); reading it again from the start "
                        "(re-read %d of %d)", what, read, type(exc).__name__, cuts, retries)
            response = None
            continue
        if read < handed:
            raise SalesforceTransportError(f"{what}: read again after a cut, the body has {read} bytes, fewer "
                                           f"than the {handed} already read: the document changed")
        return
