"""Request and authentication counters, for tests to assert on (``GET /__emulator__/stats``)."""

from __future__ import annotations

import threading
from collections import Counter


class Stats:
    """Thread-safe counters of what clients did.

    ``requests`` counts ``"METHOD /path"`` (the full path, no query string);
    ``requests_by_prefix`` counts ``"METHOD /services/data"``-style API prefixes;
    ``token_grants`` counts successful OAuth grants by grant type; ``reauths`` counts grants for a
    (user, connected app) pair that had already been granted a session before.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            self._requests: Counter[str] = Counter()
            self._by_prefix: Counter[str] = Counter()
            self._by_status: Counter[str] = Counter()
            self._grants: Counter[str] = Counter()
            self._grant_failures: Counter[str] = Counter()
            self._granted_pairs: set[tuple[str, str | None]] = set()
            self._reauths = 0
            self._faults = 0
            self._dropped = 0
            self._invalid_session = 0
            self._total = 0

    def record_request(self, method: str, path: str, prefix: str, status: int | None) -> None:
        """Count one request.

        :param method: HTTP method.
        :param path: request path.
        :param prefix: the API prefix the path falls under.
        :param status: the response status (``None`` when the connection was dropped).
        """
        with self._lock:
            self._total += 1
            self._requests[f"{method} {path}"] += 1
            self._by_prefix[f"{method} {prefix}"] += 1
            if status is None:
                self._dropped += 1
            else:
                self._by_status[str(status)] += 1
                if status == 401:
                    self._invalid_session += 1

    def record_fault(self) -> None:
        """Count one injected fault."""
        with self._lock:
            self._faults += 1

    def record_grant(self, grant_type: str, username: str, consumer_key: str | None) -> None:
        """Count one successful token grant.

        :param grant_type: the OAuth grant type.
        :param username: who got the session.
        :param consumer_key: the connected app.
        """
        pair = (username.lower(), consumer_key)
        with self._lock:
            self._grants[grant_type] += 1
            if pair in self._granted_pairs:
                self._reauths += 1
            self._granted_pairs.add(pair)

    def record_grant_failure(self, grant_type: str) -> None:
        """Count one refused token request.

        :param grant_type: the OAuth grant type asked for.
        """
        with self._lock:
            self._grant_failures[grant_type or "<none>"] += 1

    def snapshot(self) -> dict:
        """Every counter as JSON."""
        with self._lock:
            return {
                "requests_total": self._total,
                "requests": dict(self._requests),
                "requests_by_prefix": dict(self._by_prefix),
                "responses_by_status": dict(self._by_status),
                "token_grants": dict(self._grants),
                "token_grants_total": sum(self._grants.values()),
                "token_grant_failures": dict(self._grant_failures),
                "reauths": self._reauths,
                "invalid_session_responses": self._invalid_session,
                "faults_injected": self._faults,
                "connections_dropped": self._dropped,
            }
