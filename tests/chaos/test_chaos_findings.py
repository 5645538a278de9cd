"""What the chaos runs found, each pinned down with one deterministic fault (``count=1``) so it
fails the same way every time: the assertion is what the fixed behaviour must meet. A defect not
fixed yet is marked ``xfail(strict=True)`` naming it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chaos.faults import CONCURRENT_LIMIT_MESSAGE
from tests.chaos.harness import ChaosCase, ChaosResult, ChaosRunner
from tests.hooks.bulk_support import bulk_settings

BULK2_SMALL = ChaosCase("bulk", "insert", 300, api="2.0", per_unit=300)


def _once(rule: dict[str, Any]):
    """Faults: ``rule`` on the first try only, hitting one request."""

    def faults(try_number: int, seed: int) -> list[dict[str, Any]]:
        return [{**rule, "count": 1}] if try_number == 1 else []

    return faults


def _run(runner: ChaosRunner, case: ChaosCase, rule: dict[str, Any], *, tries: int, seed: int) -> ChaosResult:
    """``case`` with one ``rule`` hitting one request of its first try, up to ``tries`` tries, no kill."""
    return runner.run(case, seed=seed, max_tries=tries, kill_try=None, try_timeout=120, faults=_once(rule))


def _converges(result: ChaosResult, tries: int) -> None:
    assert result.faults_injected >= 1, "the fault never hit: the test would prove nothing"
    assert result.status == "success" and result.tries <= tries, (result.try_outcomes, result.last_error)
    assert result.succeeded + result.failed + result.unprocessed + result.unknown == result.rows
    assert (result.duplicates, result.lost, result.in_org) == (0, 0, result.rows)


def test_bulk2_lost_close_reply_converges_on_retry(chaos_runner: ChaosRunner) -> None:
    # The close is committed and its reply lost; the job then reports InProgress for a while (as a
    # busy org's does) after loading its records, so the client's abort reaches it in that state.
    bulk_settings(chaos_runner.admin, min_in_progress_seconds=1.5)
    try:
        result = _run(chaos_runner, ChaosCase("bulk", "insert", 600, api="2.0", per_unit=300),
                      {"lose_reply": True, "method": "PATCH", "path_prefix": "/services/data/"}, tries=3, seed=1)
    finally:
        bulk_settings(chaos_runner.admin, min_in_progress_seconds=0.0)
    _converges(result, tries=2)


BULK1_SMALL = ChaosCase("bulk", "insert", 600, api="1.0", per_unit=300)
#: Any Bulk 2.0 ingest job's successful results (streamed by the emulator).
ANY_JOB_RESULTS = {"path_prefix": "/services/data/v64.0/jobs/ingest/", "path_suffix": "/successfulResults"}


@pytest.mark.parametrize("case, rule, tries", [
    pytest.param(BULK2_SMALL, {"truncate_body": True, "method": "GET", "path_prefix": "/services/data/"}, 1,
                 id="read-cut-mid-body-is-retried"),
    pytest.param(BULK2_SMALL, {"status": 500, "error_code": "UNKNOWN_EXCEPTION", "method": "GET",
                               "path_prefix": "/services/data/"}, 1, id="read-500-is-retried"),
    pytest.param(BULK2_SMALL, {"lose_reply": True, "method": "PUT", "path_prefix": "/services/data/"}, 2,
                 id="bulk2-lost-upload-reply-loads-each-row-once"),
    # "/job/" (not "/job"): the first POST under it adds a batch; job creation posts to ".../job"
    pytest.param(BULK1_SMALL, {"lose_reply": True, "method": "POST", "path_prefix": "/services/async/64.0/job/"}, 2,
                 id="bulk1-lost-batch-reply-loads-each-row-once"),
    pytest.param(BULK1_SMALL, {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": CONCURRENT_LIMIT_MESSAGE,
                               "method": "GET", "path_prefix": "/services/async/"}, 1,
                 id="bulk1-concurrent-limit-is-retried"),
    pytest.param(BULK2_SMALL, {"truncate_body": True, "method": "GET", **ANY_JOB_RESULTS}, 1,
                 id="bulk2-result-download-cut-mid-body-is-read-again"),
])
def test_one_fault_converges(chaos_runner: ChaosRunner, case: ChaosCase, rule: dict[str, Any], tries: int) -> None:
    _converges(_run(chaos_runner, case, rule, tries=tries, seed=1), tries=tries)  # count=1: no draw
