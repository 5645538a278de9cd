"""``Sforce-Limit-Info`` parsing and the once-per-crossing usage warning."""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

LIMIT_INFO_HEADER = "Sforce-Limit-Info"
_ORG_RE = re.compile(r"(?<![\w-])api-usage=(\d+)/(\d+)")
_APP_RE = re.compile(r"per-app-api-usage=(\d+)/(\d+)(?:\(appName=([^)]*)\))?")


@dataclass(frozen=True)
class AppUsage:
    """API usage of one connected app (``per-app-api-usage``)."""

    used: int
    limit: int
    app_name: str | None = None


@dataclass(frozen=True)
class ApiUsage:
    """Daily API request usage reported by Salesforce on every REST response.

    :param used: requests used in the rolling 24 hours.
    :param limit: the org's daily limit.
    :param per_app: per connected app usage, when the app has its own limit.
    """

    used: int
    limit: int
    per_app: tuple[AppUsage, ...] = field(default_factory=tuple)

    @property
    def share(self) -> float:
        """Used share of the org's daily limit (0.0 when the limit is unknown)."""
        return self.used / self.limit if self.limit else 0.0


def parse_limit_info(value: str | None) -> ApiUsage | None:
    """Parse e.g. ``api-usage=25/15000, per-app-api-usage=17/250(appName=sample-connected-app)``."""
    if not value:
        return None
    org = _ORG_RE.search(value)
    if not org:
        return None
    apps = tuple(AppUsage(int(u), int(lim), name) for u, lim, name in _APP_RE.findall(value))
    return ApiUsage(used=int(org.group(1)), limit=int(org.group(2)), per_app=apps)


class LimitWatcher:
    """Logs one warning each time usage crosses ``threshold`` upward (re-armed when it falls back).

    :param threshold: share of the daily limit (0 < threshold <= 1).
    :param label: what to call the org in the warning (e.g. the connection id).
    """

    def __init__(self, threshold: float, label: str = "") -> None:
        self.threshold = threshold
        self.label = label
        self._above = False
        self._lock = threading.Lock()

    def observe(self, usage: ApiUsage | None) -> bool:
        """Record ``usage``; return True when this observation logged a warning."""
        if usage is None or not usage.limit:
            return False
        with self._lock:
            above = usage.share >= self.threshold
            crossed = above and not self._above
            self._above = above
        if crossed:
            log.warning(
                "Salesforce API usage%s is %d/%d (%.0f%% of the daily limit, warning threshold %.0f%%)",
                f" for {self.label}" if self.label else "",
                usage.used,
                usage.limit,
                usage.share * 100,
                self.threshold * 100,
            )
        return crossed
