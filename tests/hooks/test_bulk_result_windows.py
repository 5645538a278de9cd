"""Matching a window of Bulk 2.0 successful results to a chunk of plain rows: every layout either
gives the lines ``csv`` would write, or hands the window back untouched to be read row by row."""

from __future__ import annotations

import csv
import io

import pytest

from airflow_provider_salesforce_suite.hooks._bulk.results import QuotedIndex, _match_window

ROWS = [[f"Name {n}", str(n), "" if n % 3 else "x y"] for n in range(12)]


def _index() -> QuotedIndex:
    return QuotedIndex("\n".join(",".join(f'"{v}"' for v in row) for row in ROWS).encode(),
                       [",".join(row).encode() for row in ROWS])


def _window(order: list[int], created: list[str]) -> bytes:
    return "".join(f'"001{n:015d}","{created[n]}",' + ",".join(f'"{v}"' for v in ROWS[n]) + "\n"
                   for n in order).encode()


def _expected(order: list[int], created: list[str], first: int) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([[f"001{n:015d}", created[n], first + n, *ROWS[n]] for n in order])
    return out.getvalue().encode()


@pytest.mark.parametrize("order", [list(range(12)), list(reversed(range(12))), [3, 1, 2, 0, 4, 5, 6, 7, 8, 9, 10, 11]])
@pytest.mark.parametrize("created", [["true"] * 12, ["true", "false"] * 6])
def test_windows_give_the_lines_csv_writes(order, created) -> None:
    index = _index()
    first, second = order[:5], order[5:]
    for part in (first, second):
        lines, count = _match_window(_window(part, created), index, (101).__add__, ",")
        assert (lines, count) == (_expected(part, created, 101), len(part))
    assert index.left() == set()


def test_a_window_not_simply_matched_is_left_untouched() -> None:
    index = _index()
    created = ["true"] * 12
    odd = _window([0, 1], created).replace(b'"true"', b'"tr""ue"', 1)  # an escaped quote: csv reads tr"ue
    assert _match_window(odd, index, (1).__add__, ",") is None
    unknown = _window([2], created).replace(b"Name 2", b"Name 99")
    assert _match_window(_window([0], created) + unknown, index, (1).__add__, ",") is None
    assert index.left() == set(range(12))  # nothing was taken: the rows are still there to match
    assert _match_window(_window(list(range(12)), created), index, (1).__add__, ",")[1] == 12
