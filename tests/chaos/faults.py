"""The chaos fault mix (issue #14): about one request in ten fails or is slow, sessions expire
about every 50 calls, some replies are lost after the write was committed, some reads are cut
mid-body. Every rule is seeded, so a run's sequence of faults replays."""

from __future__ import annotations

from typing import Any

#: Salesforce's concurrency-limit message: the flavour of REQUEST_LIMIT_EXCEEDED that clears by
#: itself and core/retry.py treats as transient (the daily-total flavour is not retried).
CONCURRENT_LIMIT_MESSAGE = ("ConcurrentPerOrgLongTxn Limit exceeded: too many concurrent requests "
                            "for this org; try again later.")


def fault_mix(seed: int) -> list[dict[str, Any]]:
    """The rules of one run, in the order the emulator tries them (the first hit wins).

    :param seed: the run's seed; rule ``i`` is seeded ``seed * 100 + i``.
    """
    rules: list[dict[str, Any]] = [
        {"expire_session": True, "rate": 0.02},                                   # ~ every 50 calls
        {"status": 503, "error_code": "SERVER_UNAVAILABLE", "rate": 0.03},
        {"status": 500, "error_code": "UNKNOWN_EXCEPTION", "rate": 0.02},
        {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": CONCURRENT_LIMIT_MESSAGE, "rate": 0.02},
        {"drop_connection": True, "rate": 0.015},
        {"latency_ms": 400, "rate": 0.015},                                        # slow replies
        {"lose_reply": True, "rate": 0.01},                                        # committed, reply lost
        {"truncate_body": True, "method": "GET", "rate": 0.01},                    # read cut mid-body
    ]
    return [{**rule, "seed": seed * 100 + i} for i, rule in enumerate(rules)]
