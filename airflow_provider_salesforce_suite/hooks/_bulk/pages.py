"""Bulk 2.0 query results downloaded several pages at a time, handed back in page order.

Salesforce's "Get Parallel Results for a Query Job" (``GET jobs/query/{id}/resultPages``, API
58.0+) lists the result pages as ``/results?locator=...`` URLs, a few per response, following
``nextRecordsUrl``. :func:`download_in_order` fetches up to ``parallel`` of them at once on worker
threads, each spilled to a temporary file as it arrives, and yields them in page order, so the
destination is written exactly as the sequential path writes it, in constant memory: at most
``parallel`` pages exist at any time (downloading, or downloaded and waiting for their turn), and
a page's file is deleted as soon as it was read. The first failure stops the other downloads and
is raised with a note naming the page.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Mapping
from urllib.parse import parse_qs, urlsplit

#: ``resultPages`` exists from this API version; below it, pages are read one after another.
PARALLEL_RESULTS_SINCE = 58.0
#: Prefix of the temporary directory holding the pages in flight.
SPILL_PREFIX = "sf-bulk-pages-"
_READ_BYTES = 1 << 18

#: ``fetch(url, spill, stop)``: write the page at ``url`` into ``spill``; give up when ``stop`` is set.
PageFetcher = Callable[[str, BinaryIO, threading.Event], None]


class PageDownloadStopped(Exception):
    """A page download given up because another page failed (or the reader went away)."""


def check_parallel_pages(value: Any, api: str = "2.0") -> int:
    """``value`` if it is a whole number of pages >= 1 (more than 1 only with Bulk API 2.0), else
    a ``ValueError``.

    :param value: the ``max_parallel_pages`` argument.
    :param api: ``"2.0"`` or ``"1.0"``.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_parallel_pages must be an integer >= 1; got {value!r}")
    if value > 1 and api != "2.0":
        raise ValueError("max_parallel_pages is a Bulk API 2.0 option (resultPages): use api='2.0'")
    return value


def supports_parallel_results(api_version: str) -> bool:
    """Whether ``api_version`` has ``resultPages`` (58.0 and later)."""
    return float(api_version) >= PARALLEL_RESULTS_SINCE


def result_page_urls(get_json: Callable[[str, Mapping[str, Any] | None], Any], url: str,
                     params: Mapping[str, Any] | None = None) -> Iterator[str]:
    """Every ``resultUrl`` of a query job, in order, following ``nextRecordsUrl`` lazily.

    :param get_json: ``get_json(url, params)`` -> the parsed ``resultPages`` response.
    :param url: the first ``resultPages`` URL.
    :param params: query parameters of the first request (later URLs carry their own).
    """
    next_url: str | None = url
    while next_url:
        body = get_json(next_url, params)
        for page in body.get("resultPages") or []:
            yield page["resultUrl"]
        # Salesforce's table calls it nextRecordUrl, its example nextRecordsUrl: accept either.
        next_url = None if body.get("done", True) else (body.get("nextRecordsUrl") or body.get("nextRecordUrl"))
        params = None


def page_locator(url: str) -> str:
    """The ``locator`` of a result page URL (the URL itself when it has none)."""
    return (parse_qs(urlsplit(url).query).get("locator") or [url])[0]


def _read(path: str) -> Iterator[bytes]:
    with open(path, "rb") as spill:
        while chunk := spill.read(_READ_BYTES):
            yield chunk


def download_in_order(urls: Iterable[str], fetch: PageFetcher, parallel: int, *,
                      label: str = "result") -> Iterator[Iterator[bytes]]:
    """The pages at ``urls`` as byte streams, in order, at most ``parallel`` downloaded at once.

    Each yielded stream must be read (or dropped) before the next one is asked for; its spill file
    is deleted then. ``urls`` is consumed lazily, as slots free up.

    :param urls: the page URLs, in page order.
    :param fetch: downloads one page into a file (runs on a worker thread).
    :param parallel: most pages in flight.
    :param label: what the pages belong to, for the note on an error (``Bulk query job 750...``).
    :raises Exception: the first page failure, with a note naming the page and its locator.
    """
    stop = threading.Event()
    failures: list[BaseException] = []
    lock = threading.Lock()

    def work(number: int, url: str, path: str) -> str:
        try:
            with open(path, "wb") as spill:
                fetch(url, spill, stop)
        except BaseException as exc:
            with lock:
                if not failures and not isinstance(exc, PageDownloadStopped):
                    exc.add_note(f"{label}: result page {number + 1} (locator {page_locator(url)}) failed")
                    failures.append(exc)
            stop.set()
            raise
        return path

    numbered = enumerate(urls)
    pending: deque[Future[str]] = deque()
    with tempfile.TemporaryDirectory(prefix=SPILL_PREFIX) as spill_dir, \
            ThreadPoolExecutor(parallel, thread_name_prefix="sf-bulk-page") as pool:

        def submit_next() -> bool:
            item = next(numbered, None)
            if item is not None:
                number, url = item
                pending.append(pool.submit(work, number, url, os.path.join(spill_dir, f"page-{number:07d}.csv")))
            return item is not None

        try:
            while len(pending) < parallel and submit_next():
                pass
            while pending:
                head = pending[0]
                while not head.done() and not failures:
                    wait([f for f in pending if not f.done()], return_when=FIRST_COMPLETED)
                if failures:
                    raise failures[0]
                pending.popleft()
                path = head.result()
                page = _read(path)
                try:
                    yield page
                finally:  # the spill goes (read or not) before another page may start
                    page.close()
                    os.unlink(path)
                submit_next()
        finally:
            stop.set()
            for future in pending:
                future.cancel()
