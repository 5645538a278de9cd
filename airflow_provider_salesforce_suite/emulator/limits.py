"""Daily API usage: the ``Sforce-Limit-Info`` header and the ``/limits`` resource."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter


def _today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


class ApiUsage:
    """Thread-safe daily API request counters, for the org and per connected app.

    Salesforce's limit is a rolling 24 h window; a UTC calendar day is close enough here and
    makes the counters predictable in tests.

    :param daily_limit: the org's ``DailyApiRequests`` maximum.
    """

    def __init__(self, daily_limit: int) -> None:
        self.daily_limit = daily_limit
        self._lock = threading.Lock()
        self._day = _today()
        self._org = 0
        self._apps: Counter[str] = Counter()

    def _roll(self) -> None:
        today = _today()
        if today != self._day:
            self._day, self._org, self._apps = today, 0, Counter()

    def count(self, app_name: str | None) -> tuple[int, int]:
        """Count one API request.

        :param app_name: the connected app the session belongs to.
        :returns: the org's and the app's usage after this request.
        """
        with self._lock:
            self._roll()
            self._org += 1
            if app_name:
                self._apps[app_name] += 1
            return self._org, self._apps[app_name] if app_name else 0

    def used(self, app_name: str | None = None) -> int:
        """Requests counted today (by the org, or by one app).

        :param app_name: the app (``None``: the whole org).
        """
        with self._lock:
            self._roll()
            return self._apps[app_name] if app_name else self._org

    def reset(self) -> None:
        """Zero the counters."""
        with self._lock:
            self._org, self._apps = 0, Counter()

    @staticmethod
    def header(org_used: int, org_max: int, app: tuple[str, int, int] | None) -> str:
        """The ``Sforce-Limit-Info`` value, e.g. ``api-usage=25/15000; per-app-api-usage=17/250(appName=etl)``.

        :param org_used: the org's usage.
        :param org_max: the org's limit.
        :param app: ``(name, used, max)`` of the connected app, if any.
        """
        value = f"api-usage={org_used}/{org_max}"
        if app is not None:
            name, used, maximum = app
            value += f"; per-app-api-usage={used}/{maximum}(appName={name})"
        return value


def _pair(maximum: int, remaining: int | None = None) -> dict:
    return {"Max": maximum, "Remaining": maximum if remaining is None else remaining}


def limits_body(org_max: int, org_used: int, apps: list[tuple[str, int, int]]) -> dict:
    """The ``/services/data/vXX.X/limits`` body, with Salesforce's keys and Developer Edition values.

    :param org_max: ``DailyApiRequests.Max``.
    :param org_used: requests counted today.
    :param apps: ``(name, used, max)`` per connected app, listed under ``DailyApiRequests``.
    """
    daily = _pair(org_max, max(org_max - org_used, 0))
    for name, used, maximum in apps:
        daily[name] = _pair(maximum, max(maximum - used, 0))
    return {
        "ActiveScratchOrgs": _pair(3),
        "AnalyticsExternalDataSizeMB": _pair(40960),
        "ConcurrentAsyncGetReportInstances": _pair(200),
        "ConcurrentEinsteinDataInsightsStoryCreation": _pair(5),
        "ConcurrentEinsteinDiscoveryStoryCreation": _pair(2),
        "ConcurrentSyncReportRuns": _pair(20),
        "DailyAnalyticsDataflowJobExecutions": _pair(60),
        "DailyAnalyticsUploadedFilesSizeMB": _pair(51200),
        "DailyApiRequests": daily,
        "DailyAsyncApexExecutions": _pair(250000),
        "DailyAsyncApexTests": _pair(500),
        "DailyBulkApiBatches": _pair(15000),
        "DailyBulkV2QueryFileStorageMB": _pair(976562),
        "DailyBulkV2QueryJobs": _pair(10000),
        "DailyDeliveredPlatformEvents": _pair(10000),
        "DailyDurableGenericStreamingApiEvents": _pair(10000),
        "DailyDurableStreamingApiEvents": _pair(10000),
        "DailyEinsteinDataInsightsStoryCreation": _pair(1000),
        "DailyEinsteinDiscoveryPredictAPICalls": _pair(50000),
        "DailyEinsteinDiscoveryPredictionsByCDC": _pair(500000),
        "DailyEinsteinDiscoveryStoryCreation": _pair(100),
        "DailyGenericStreamingApiEvents": _pair(10000),
        "DailyScratchOrgs": _pair(6),
        "DailyStandardVolumePlatformEvents": _pair(10000),
        "DailyStreamingApiEvents": _pair(10000),
        "DailyWorkflowEmails": _pair(405),
        "DataStorageMB": _pair(5),
        "DurableStreamingApiConcurrentClients": _pair(20),
        "FileStorageMB": _pair(20),
        "HourlyAsyncReportRuns": _pair(1200),
        "HourlyDashboardRefreshes": _pair(200),
        "HourlyDashboardResults": _pair(5000),
        "HourlyDashboardStatuses": _pair(999999999),
        "HourlyLongTermIdMapping": _pair(100000),
        "HourlyManagedContentPublicRequests": _pair(50000),
        "HourlyODataCallout": _pair(10000),
        "HourlyPublishedPlatformEvents": _pair(50000),
        "HourlyPublishedStandardVolumePlatformEvents": _pair(100000),
        "HourlyShortTermIdMapping": _pair(100000),
        "HourlySyncReportRuns": _pair(500),
        "HourlyTimeBasedWorkflow": _pair(50),
        "MassEmail": _pair(10),
        "MonthlyPlatformEventsUsageEntitlement": _pair(0),
        "Package2VersionCreates": _pair(6),
        "Package2VersionCreatesWithoutValidation": _pair(500),
        "PermissionSets": {**_pair(1500), "CreateCustom": _pair(1000)},
        "PrivateConnectOutboundCalloutHourlyLimitMB": _pair(0),
        "SingleEmail": _pair(15),
        "StreamingApiConcurrentClients": _pair(20),
    }
