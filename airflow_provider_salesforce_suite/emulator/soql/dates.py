"""SOQL relative date literals (TODAY, LAST_N_DAYS:n ...) as half-open UTC date ranges."""

from __future__ import annotations

import datetime as dt


# Literals taking ":n".
N_LITERALS = frozenset({
    "LAST_N_DAYS", "NEXT_N_DAYS", "LAST_N_WEEKS", "NEXT_N_WEEKS", "LAST_N_MONTHS", "NEXT_N_MONTHS",
    "LAST_N_QUARTERS", "NEXT_N_QUARTERS", "LAST_N_YEARS", "NEXT_N_YEARS", "N_DAYS_AGO",
})


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def date_range(name: str, n: int | None, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The ``[start, end)`` dates a relative date literal covers (weeks start on Sunday).

    :param name: the literal, upper-case (``LAST_N_DAYS``).
    :param n: its ``:n`` argument, if any.
    :param today: today's UTC date (tests pin it).
    :raises ValueError: for an unknown literal or a missing/extra ``:n``.
    """
    today = today or dt.datetime.now(dt.timezone.utc).date()
    if (name in N_LITERALS) != (n is not None):
        raise ValueError(name)
    day = dt.timedelta(days=1)
    week_start = today - dt.timedelta(days=(today.weekday() + 1) % 7)
    month_start = today.replace(day=1)
    quarter_start = dt.date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
    year_start = dt.date(today.year, 1, 1)
    n = n or 0
    table = {
        "TODAY": (today, today + day),
        "YESTERDAY": (today - day, today),
        "TOMORROW": (today + day, today + 2 * day),
        "LAST_WEEK": (week_start - 7 * day, week_start),
        "THIS_WEEK": (week_start, week_start + 7 * day),
        "NEXT_WEEK": (week_start + 7 * day, week_start + 14 * day),
        "LAST_MONTH": (_add_months(month_start, -1), month_start),
        "THIS_MONTH": (month_start, _add_months(month_start, 1)),
        "NEXT_MONTH": (_add_months(month_start, 1), _add_months(month_start, 2)),
        # LAST_N_DAYS includes today; NEXT_N_DAYS starts tomorrow (Salesforce's definitions).
        "LAST_90_DAYS": (today - 90 * day, today + day),
        "NEXT_90_DAYS": (today + day, today + 91 * day),
        "LAST_N_DAYS": (today - n * day, today + day),
        "NEXT_N_DAYS": (today + day, today + (n + 1) * day),
        "N_DAYS_AGO": (today - n * day, today - (n - 1) * day),
        "LAST_N_WEEKS": (week_start - 7 * n * day, week_start),
        "NEXT_N_WEEKS": (week_start + 7 * day, week_start + 7 * (n + 1) * day),
        "THIS_QUARTER": (quarter_start, _add_months(quarter_start, 3)),
        "LAST_QUARTER": (_add_months(quarter_start, -3), quarter_start),
        "NEXT_QUARTER": (_add_months(quarter_start, 3), _add_months(quarter_start, 6)),
        "LAST_N_QUARTERS": (_add_months(quarter_start, -3 * n), quarter_start),
        "NEXT_N_QUARTERS": (_add_months(quarter_start, 3), _add_months(quarter_start, 3 * (n + 1))),
        "LAST_N_MONTHS": (_add_months(month_start, -n), month_start),
        "NEXT_N_MONTHS": (_add_months(month_start, 1), _add_months(month_start, n + 1)),
        "THIS_YEAR": (year_start, year_start.replace(year=today.year + 1)),
        "LAST_YEAR": (year_start.replace(year=today.year - 1), year_start),
        "NEXT_YEAR": (year_start.replace(year=today.year + 1), year_start.replace(year=today.year + 2)),
        "LAST_N_YEARS": (year_start.replace(year=today.year - n), year_start),
        "NEXT_N_YEARS": (year_start.replace(year=today.year + 1), year_start.replace(year=today.year + n + 1)),
    }
    if name not in table:
        raise ValueError(name)
    return table[name]


__all__ = ["N_LITERALS", "date_range"]
