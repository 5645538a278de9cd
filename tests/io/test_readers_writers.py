"""Record files: readers, page-by-page writers, flattening, the failed-records file."""

from __future__ import annotations

import csv
import gzip
import io
import json
import tracemalloc
from pathlib import Path

import pytest

from airflow_provider_salesforce_suite.io import (
    CsvTextRows,
    FailedRecordsWriter,
    RecordFileError,
    RecordWriter,
    detect_format,
    flatten_record,
    iter_records,
    soql_columns,
)

ROWS = [{"Name": "Acme", "Industry": "Tech"}, {"Name": "Globex", "Industry": "Energy"}]


def _contact(number: int, account: str | None, owner: str | None = "Olga", cases: int = 0) -> dict:
    parent = None
    if account is not None:
        parent = {"attributes": {"type": "Account", "url": "/x"}, "Name": account,
                  "Owner": {"attributes": {"type": "User"}, "Name": owner} if owner else None}
    children = None
    if cases:
        children = {"totalSize": cases, "done": True,
                    "records": [{"attributes": {"type": "Case"}, "Id": f"500{n}", "Subject": f"S{n}"} for n in range(cases)]}
    return {"attributes": {"type": "Contact", "url": "/c"}, "Id": f"003{number}", "LastName": f"L{number}",
            "Account": parent, "Cases": children}


SOQL = "SELECT Id, LastName, Account.Name, Account.Owner.Name, (SELECT Id, Subject FROM Cases) FROM Contact"


# -- readers --------------------------------------------------------------------------------------------------
def test_csv_reader_strips_bom_omits_empty_and_reads_na_as_null(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes("\ufeffName,Industry,Phone\nAcme,Tech,\n\"Glo, bex\",#N/A,123\n".encode("utf-8"))
    assert list(iter_records(path)) == [
        {"Name": "Acme", "Industry": "Tech"},
        {"Name": "Glo, bex", "Industry": None, "Phone": "123"},
    ]
    assert list(iter_records(str(path), columns=["Name"])) == [{"Name": "Acme"}, {"Name": "Glo, bex"}]


def test_csv_ragged_row_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("Name,Industry\nAcme,Tech\nGlobex\n")
    records = iter_records(path)
    assert next(records) == {"Name": "Acme", "Industry": "Tech"}
    with pytest.raises(RecordFileError, match=r"line 3: 1 values for 2 columns"):
        next(records)


def test_csv_bad_header_and_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("Name,Name\na,b\n")
    with pytest.raises(RecordFileError, match="line 1"):
        list(iter_records(path))
    ok = tmp_path / "ok.csv"
    ok.write_text("Name\na\n")
    with pytest.raises(RecordFileError, match=r"\['Phone'\] are not in the header"):
        list(iter_records(ok, columns=["Phone"]))


def test_csv_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("Name\nZo\u00eb\n".encode("latin-1"))
    with pytest.raises(RecordFileError, match=r"latin1.csv: line \d+: 'utf-8' codec can't decode"):
        list(iter_records(path))


def test_empty_csv_has_no_records(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    assert list(iter_records(path)) == []


def test_csv_text_rows_pass_cells_through(tmp_path: Path) -> None:
    path = tmp_path / "in.csv.gz"
    text = "\ufeffName,Industry,Phone\nAcme,Tech,\n\n\"Glo, bex\",#N/A,\"1\n2\"\n"
    path.write_bytes(gzip.compress(text.encode("utf-8")))
    rows = CsvTextRows(path)
    assert rows.columns == ["Name", "Industry", "Phone"]  # BOM stripped
    assert rows.peek() == ["Acme", "Tech", ""] and rows.peek() == ["Acme", "Tech", ""]  # peek keeps the row
    # empty cells stay empty, #N/A stays #N/A, quoted newlines survive, blank lines are skipped
    assert list(rows) == [["Acme", "Tech", ""], ["Glo, bex", "#N/A", "1\n2"]]
    assert rows.peek() is None


def test_csv_text_rows_errors_and_empty_file(tmp_path: Path) -> None:
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("Name,Industry\nAcme,Tech\nGlobex\n")
    rows = CsvTextRows(str(ragged))
    assert next(rows) == ["Acme", "Tech"]
    with pytest.raises(RecordFileError, match=r"ragged.csv: line 3: 1 values for 2 columns"):
        next(rows)
    duplicate = tmp_path / "dup.csv"
    duplicate.write_text("Name,Name\na,b\n")
    with pytest.raises(RecordFileError, match="line 1: the header has empty or repeated column names"):
        CsvTextRows(duplicate).peek()
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert CsvTextRows(empty).peek() is None and CsvTextRows(empty).columns == []
    with pytest.raises(RecordFileError, match="reads CSV files, not jsonl"):
        CsvTextRows(tmp_path / "in.jsonl")


def test_jsonl_and_gzip(tmp_path: Path) -> None:
    lines = "\n".join(json.dumps(r) for r in ROWS) + "\n\n"
    plain = tmp_path / "in.ndjson"
    plain.write_text(lines)
    zipped = tmp_path / "in.jsonl.gz"
    zipped.write_bytes(gzip.compress(lines.encode()))
    csv_zipped = tmp_path / "in.csv.gz"
    csv_zipped.write_bytes(gzip.compress(b"Name,Industry\nAcme,Tech\nGlobex,Energy\n"))
    assert list(iter_records(plain)) == ROWS
    assert list(iter_records(f"file://{zipped}")) == ROWS
    assert list(iter_records(csv_zipped)) == ROWS
    explicit = tmp_path / "no_suffix"
    explicit.write_text(lines)
    assert list(iter_records(explicit, format="jsonl")) == ROWS


def test_jsonl_bad_line_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"Name": "a"}\n{"Name": \n')
    with pytest.raises(RecordFileError, match="line 2: not valid JSON"):
        list(iter_records(path))
    path.write_text('{"Name": "a"}\n[1, 2]\n')
    with pytest.raises(RecordFileError, match="line 2: expected a JSON object, got list"):
        list(iter_records(path))


def test_parquet_reader_reads_batches(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "in.parquet"
    table = pa.table({"Name": [f"n{i}" for i in range(25)], "Phone": [None if i % 2 else str(i) for i in range(25)]})
    pq.write_table(table, path, row_group_size=10)
    records = list(iter_records(path, batch_rows=7))
    assert len(records) == 25
    assert records[0] == {"Name": "n0", "Phone": "0"} and records[1] == {"Name": "n1"}  # null: not sent
    assert list(iter_records(path, columns=["Name"]))[3] == {"Name": "n3"}


def test_bad_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(RecordFileError, match="not a readable Parquet file"):
        list(iter_records(path))


@pytest.mark.parametrize(
    ("name", "fmt", "expected"),
    [("a.csv", None, ("csv", False)), ("a.CSV.GZ", None, ("csv", True)), ("s3://b/k.ndjson", None, ("jsonl", False)),
     ("a.parquet", None, ("parquet", False)), ("a.dat", "csv.gz", ("csv", True)), ("a.dat", "ndjson", ("jsonl", False))],
)
def test_detect_format(name: str, fmt: str | None, expected: tuple) -> None:
    assert detect_format(name, fmt) == expected


@pytest.mark.parametrize(("name", "fmt", "message"), [
    ("a.txt", None, "Cannot tell the format"), ("a.csv", "xml", "Unknown record file format"),
    ("a.parquet.gz", None, "gzip is supported for csv and jsonl"),
])
def test_detect_format_rejects(name: str, fmt: str | None, message: str) -> None:
    with pytest.raises(RecordFileError, match=message):
        detect_format(name, fmt)


# -- flattening and columns ----------------------------------------------------------------------------------
def test_flatten_record() -> None:
    flat = flatten_record(_contact(1, "Acme", cases=1))
    assert flat == {"Id": "0031", "LastName": "L1", "Account.Name": "Acme", "Account.Owner.Name": "Olga",
                    "Cases": [{"Id": "5000", "Subject": "S0"}]}
    assert flatten_record(_contact(2, None)) == {"Id": "0032", "LastName": "L2", "Account": None, "Cases": None}


def test_soql_columns() -> None:
    assert soql_columns(SOQL) == ["Id", "LastName", "Account.Name", "Account.Owner.Name", "Cases"]
    assert soql_columns("select Name n, count(Id) c, max(AnnualRevenue), toLabel(Rating) from Account "
                        "where Name = 'a, from b' group by Name") == ["n", "c", "expr0", "Rating"]
    assert soql_columns("SELECT FIELDS(STANDARD) FROM Account") is None
    assert soql_columns("SELECT TYPEOF What WHEN Account THEN Name END FROM Event") is None
    assert soql_columns("not soql") is None


# -- writers ---------------------------------------------------------------------------------------------------
def _read_csv(path: Path) -> list[list[str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as handle:
        return list(csv.reader(handle))


@pytest.mark.parametrize("suffix", ["csv", "csv.gz", "jsonl", "jsonl.gz", "parquet"])
def test_columns_stable_when_first_page_parent_is_null(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"out.{suffix}"
    with RecordWriter(f"file://{path}", soql=SOQL.replace("LastName", "lastname")) as writer:
        writer.write_page([_contact(1, None), _contact(2, "Acme", owner=None)])
        writer.write_page([_contact(3, "Globex", cases=2)])
    expected_columns = ["Id", "LastName", "Account.Name", "Account.Owner.Name", "Cases"]  # server casing
    assert writer.rows == 3
    if suffix.startswith("csv"):
        rows = _read_csv(path)
        assert rows[0] == expected_columns
        assert rows[1] == ["0031", "L1", "", "", ""]
        assert rows[2] == ["0032", "L2", "Acme", "", ""]
        assert json.loads(rows[3][4]) == [{"Id": "5000", "Subject": "S0"}, {"Id": "5001", "Subject": "S1"}]
    elif suffix.startswith("jsonl"):
        opener = gzip.open if suffix.endswith("gz") else open
        with opener(path, "rt") as handle:
            rows = [json.loads(line) for line in handle]
        assert [list(row) for row in rows] == [expected_columns] * 3
        assert rows[0]["Account.Name"] is None and rows[2]["Cases"][1]["Subject"] == "S1"
    else:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        assert table.column_names == expected_columns
        assert {str(t) for t in table.schema.types} == {"string"}
        assert table.column("Account.Name").to_pylist() == [None, "Acme", "Globex"]


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_late_columns_are_appended_and_null_parents_dropped(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"late.{suffix}"
    with RecordWriter(path, row_group_rows=1) as writer:  # no SOQL: columns from the first page
        writer.write_page([_contact(1, None)])
        writer.write_page([_contact(2, "Acme", owner="Olga")])
    records = list(iter_records(path))
    assert records == [{"Id": "0031", "LastName": "L1"},
                       {"Id": "0032", "LastName": "L2", "Account.Name": "Acme", "Account.Owner.Name": "Olga"}]
    if suffix == "csv":
        assert _read_csv(path)[0] == ["Id", "LastName", "Cases", "Account.Name", "Account.Owner.Name"]


def test_parquet_types_from_field_types_and_row_groups(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    path = tmp_path / "typed.parquet"
    page = [{"Name": f"n{i}", "NumberOfEmployees": i, "IsActive__c": i % 2 == 0, "AnnualRevenue": i * 1.5}
            for i in range(25)]
    with RecordWriter(path, field_types={"numberofemployees": "int", "IsActive__c": "boolean",
                                         "AnnualRevenue": "currency"}, row_group_rows=10) as writer:
        writer.write_page(page)
    parquet = pq.ParquetFile(path)
    assert parquet.metadata.num_row_groups == 3
    assert [str(t) for t in parquet.schema_arrow.types] == ["string", "int64", "bool", "double"]
    assert parquet.read().to_pylist() == page
    text = tmp_path / "text.parquet"  # CSV-sourced values (e.g. Bulk results) are parsed
    with RecordWriter(text, field_types={"N": "int", "B": "boolean", "D": "double"}) as writer:
        writer.write_page([{"N": "7", "B": "true", "D": "1.5"}, {"N": "", "B": "0", "D": ""}])
    assert pq.read_table(text).to_pylist() == [{"N": 7, "B": True, "D": 1.5}, {"N": None, "B": False, "D": None}]
    bad = tmp_path / "bad.parquet"
    with pytest.raises(RecordFileError, match="column 'NumberOfEmployees' does not fit int64: invalid literal"):
        with RecordWriter(bad, field_types={"NumberOfEmployees": "int"}, row_group_rows=1) as writer:
            writer.write_page([{"NumberOfEmployees": "many"}])
    assert not bad.exists()  # nothing written after an error


def test_write_rows_places_columns_by_name(tmp_path: Path) -> None:
    with RecordWriter(tmp_path / "out.csv", columns=["id", "Name"]) as writer:
        assert writer.write_rows(["Id", "Name"], [[1, "a"], ["2", None]]) == 2  # casing from the first rows
        writer.write_rows(["Name", "Phone", "Id"], [["b", "555", 3]])  # reordered, one new column
        writer.write_page([{"Id": 4, "Name": "c"}])
    assert (tmp_path / "out.csv").read_text() == "Id,Name,Phone\n1,a,\n2,,\n3,b,555\n4,c,\n"
    with RecordWriter(tmp_path / "out.jsonl") as writer:
        writer.write_rows(["Id", "Name"], [[1, "a"]])
    assert json.loads((tmp_path / "out.jsonl").read_text()) == {"Id": 1, "Name": "a"}


def test_writer_writes_header_only_for_no_rows_and_nothing_on_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    with RecordWriter(empty, soql="SELECT Id, Name FROM Account"):
        pass
    assert empty.read_text() == "Id,Name\n"
    failed = tmp_path / "sub" / "failed.jsonl"
    with pytest.raises(RuntimeError):
        with RecordWriter(failed) as writer:
            writer.write_page(ROWS)
            raise RuntimeError("query failed")
    assert not failed.exists()
    with pytest.raises(RecordFileError, match="closed"):
        writer.write_page(ROWS)


def test_writer_memory_is_constant_on_200k_rows(tmp_path: Path) -> None:
    parent = {"attributes": {"type": "Account"}, "Name": "Acme"}

    def pages(count: int):  # generated lazily: only the writer could hold rows
        for start in range(0, count, 5000):
            yield [{"Id": f"003{n:015d}", "Account": parent} for n in range(start, min(count, start + 5000))]

    def peak(count: int) -> int:
        tracemalloc.start()
        with RecordWriter(tmp_path / f"big-{count}.csv", soql="SELECT Id, Account.Name FROM Contact") as writer:
            for page in pages(count):
                writer.write_page(page)
        measured = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert writer.rows == count
        return measured

    peak(10)  # warm up: first-use imports and logging setup are not the writer's
    small, large = peak(20_000), peak(200_000)
    assert large < small + 1024 * 1024, (small, large)  # 10x the rows, not more memory
    assert large < 8 * 1024 * 1024, large


def test_reader_memory_is_constant(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    with open(path, "w") as handle:
        for n in range(50_000):
            handle.write(json.dumps({"Name": f"Account {n}", "Industry": "Tech"}) + "\n")
    tracemalloc.start()
    count = sum(1 for _ in iter_records(path))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == 50_000
    assert peak < 5 * 1024 * 1024, peak


# -- failed records ---------------------------------------------------------------------------------------------
def test_failed_records_file(tmp_path: Path) -> None:
    path = tmp_path / "failed.csv"
    with FailedRecordsWriter(path) as failures:
        failures.write_failure({"Name": "", "Phone": "1"}, [
            {"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [Name]", "fields": ["Name"]},
            {"statusCode": "INVALID_FIELD", "message": "bad", "fields": ["Phone", "Name"]},
        ])
        failures.write_failure("001000000000001AAA", [{"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted",
                                                       "fields": []}])
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert list(rows[0]) == ["sf__Error", "sf__Fields", "Name", "Phone", "Id"]
    assert rows[0]["sf__Error"] == "REQUIRED_FIELD_MISSING: Required fields are missing: [Name]; INVALID_FIELD: bad"
    assert rows[0]["sf__Fields"] == "Name,Phone"
    assert rows[1]["Id"] == "001000000000001AAA" and rows[1]["sf__Error"] == "ENTITY_IS_DELETED: entity is deleted"


@pytest.mark.parametrize("destination", ["out.csv", "out.csv.gz", "file://{tmp}/sub/out.csv"])
def test_spool_copied_whole_to_any_destination(tmp_path: Path, destination: str) -> None:
    """The spool reaches a local file through the kernel, a gzip file through Python: the same
    bytes after the header, spools larger than one copy chunk included."""
    lines = b"".join(b"%d,name %d\n" % (n, n) for n in range(60_000))  # ~1 MB: several chunks
    target = destination.format(tmp=tmp_path) if "://" in destination else str(tmp_path / destination)
    with RecordWriter(target) as writer:
        writer.write_csv(["Id", "Name"], lines[:500_000].rsplit(b"\n", 1)[0] + b"\n",
                         lines[:500_000].count(b"\n"))
        writer.write_csv(["Id", "Name"], lines[lines[:500_000].rfind(b"\n") + 1:],
                         60_000 - lines[:500_000].count(b"\n"))
    local = target.removeprefix("file://")
    with (gzip.open if destination.endswith(".gz") else open)(local, "rb") as done:
        written = done.read()
    assert written == b"Id,Name\n" + lines
