"""CsvWindows and CsvTextRows' window reading: the same rows, errors and line numbers as a
``csv.reader`` over the text, whatever the window size."""

from __future__ import annotations

import csv
import io
import random

import pytest

from airflow_provider_salesforce_suite.io import CsvTextRows, RecordFileError
from airflow_provider_salesforce_suite.io.csvwindows import CsvWindows
from airflow_provider_salesforce_suite.io.readers import PlainLines

CELLS = ["plain", "", "with, comma", 'a "quote"', "two\nlines", "cr\r\nlf", "é ü 漢", "#N/A", "x" * 50]


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def _all_rows(windows: CsvWindows) -> list[list[str]]:
    rows: list[list[str]] = []
    for window in windows:
        rows += windows.rows(window)
    return rows


@pytest.mark.parametrize("seed", range(6))
def test_rows_are_csv_readers_rows_whatever_the_windows(seed) -> None:
    chance = random.Random(seed)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator=chance.choice(["\n", "\r\n"]))
    for _ in range(300):
        writer.writerow([chance.choice(CELLS) for _ in range(3)])
        if chance.random() < 0.03:
            text.write("\n")
    data = ("\ufeff" if seed % 2 else "").encode() + text.getvalue().encode()
    expected = list(csv.reader(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")))
    for size in (1, 7, 64, 1 << 20):
        windows = CsvWindows(_pieces(data, max(size // 3, 1)), window_bytes=size)
        assert _all_rows(windows) == expected, size


def test_errors_name_the_line_across_windows(tmp_path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b"A,B\n" + b"".join(b"a%d,b\n" % i for i in range(40)) + b'"q\r\nx",y\ncr\rz,w\n' +
                       b"only-one\n")
    CsvTextRows.window_bytes = 16
    try:
        rows = CsvTextRows(source)
        with pytest.raises(RecordFileError, match=r"in.csv: line 44: 1 values for 2 columns"):
            list(rows)
        broken = tmp_path / "latin1.csv"
        broken.write_bytes(b"A,B\n" + b"a,b\n" * 30 + "caf\u00e9,x\n".encode("latin-1"))
        read = CsvTextRows(broken)
        with pytest.raises(RecordFileError, match=r"latin1.csv: line 32: 'utf-8' codec can't decode"):
            list(read)
    finally:
        CsvTextRows.window_bytes = None


def test_blocks_hand_plain_windows_as_bytes(tmp_path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b"\xef\xbb\xbfName,Phone\r\n" + b"".join(b"n%d,%d\r\n" % (i, i) for i in range(50)) +
                       b'"quoted, name",1\r\nlast,2')
    CsvTextRows.window_bytes = 64
    try:
        rows = CsvTextRows(source)
        assert rows.columns == ["Name", "Phone"] and rows.peek() == ["n0", "0"]
        blocks = list(rows.blocks())
        assert any(isinstance(b, PlainLines) for b in blocks) and any(isinstance(b, list) for b in blocks)
        read = [row for b in blocks for row in
                ([line.decode().split(",") for line in b.lines] if isinstance(b, PlainLines) else b)]
        for block in blocks:
            if isinstance(block, PlainLines):  # LF lines, each a row of the header's width
                assert block.data == b"".join(line + b"\n" for line in block.lines)
        assert read == [[f"n{i}", str(i)] for i in range(50)] + [["quoted, name", "1"], ["last", "2"]]
        assert list(CsvTextRows(source)) == read
    finally:
        CsvTextRows.window_bytes = None
