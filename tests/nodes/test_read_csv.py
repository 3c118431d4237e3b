"""ReadCSV: encodings, delimiter sniffing, malformed rows, type overrides, file errors and the fingerprint."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine.errors import NodeInputError
from engine.fileio import FileFingerprints, sha256_file
from engine.sdk import FingerprintContext
from engine.testing import NodeFailed, run_node
from nodes.io.csv_reader import ReadCSV


def write(folder: Path, data: str | bytes, name: str = "data.csv") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def read(path: Path | str, project_dir: Path | None = None, **settings) -> pl.DataFrame:
    workdir = Path(project_dir or Path(path).parent) / ".work"
    return run_node(ReadCSV, settings={"path": str(path), **settings}, project_dir=project_dir,
                    workdir=workdir)["table"]


def read_fails(path: Path | str, **settings) -> NodeFailed:
    with pytest.raises(NodeFailed) as info:
        read(path, **settings)
    assert info.value.input_error, f"expected a user-facing input error, got: {info.value}"
    return info.value


def has_line(message: str, line: int) -> bool:
    return re.search(rf"\bline {line}\b", message) is not None


# --- encodings ---------------------------------------------------------------------------------------------------

def test_utf8(tmp_path):
    table = read(write(tmp_path, "name,city\nÅsa,Zürich\n李雷,北京\n"))
    assert table.columns == ["name", "city"]
    assert table.rows() == [("Åsa", "Zürich"), ("李雷", "北京")]


@pytest.mark.parametrize("encoding", ["auto", "utf-8", "utf-8-sig"])
def test_utf8_bom_is_not_part_of_the_header(tmp_path, encoding):
    path = write(tmp_path, b"\xef\xbb\xbf" + "id,amount\n1,2.5\n2,3\n".encode("utf-8"))
    table = read(path, encoding=encoding)
    assert table.columns == ["id", "amount"]
    assert not any("\ufeff" in c for c in table.columns)
    assert table["id"].to_list() == [1, 2]


GBK_TEXT = "客户编号,姓名,城市,金额\n001,张三,北京,100.5\n002,李四,上海,200\n"
GBK_EXPECTED = pl.DataFrame({"客户编号": [1, 2], "姓名": ["张三", "李四"], "城市": ["北京", "上海"],
                             "金额": [100.5, 200.0]})


@pytest.mark.parametrize("encoding", ["auto", "gbk", "gb18030"])
def test_gbk_with_chinese_headers_and_values(tmp_path, encoding):
    path = write(tmp_path, GBK_TEXT.encode("gbk"))
    assert_frame_equal(read(path, encoding=encoding), GBK_EXPECTED)


def test_explicit_utf8_on_gbk_file_names_file_line_and_suggests_gbk(tmp_path):
    path = write(tmp_path, "id,name\n1,abc\n2,张三\n".encode("gbk"))
    err = read_fails(path, encoding="utf-8")
    message = str(err)
    assert str(path) in message
    assert has_line(message, 3), message
    assert "gbk" in message.lower()


def test_explicit_utf8_on_gbk_header_points_at_line_1(tmp_path):
    path = write(tmp_path, GBK_TEXT.encode("gbk"))
    message = str(read_fails(path, encoding="utf-8"))
    assert str(path) in message and has_line(message, 1), message


# --- delimiters --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_is_sniffed(tmp_path, delimiter):
    rows = [["id", "name", "score"], ["1", "ann", "0.5"], ["2", "bob", "0.75"], ["3", "cy", "1.0"]]
    path = write(tmp_path, "".join(delimiter.join(r) + "\n" for r in rows))
    table = read(path)
    assert table.columns == ["id", "name", "score"]
    assert table.rows() == [(1, "ann", 0.5), (2, "bob", 0.75), (3, "cy", 1.0)]


def test_semicolon_file_with_decimal_commas_in_values(tmp_path):
    table = read(write(tmp_path, "id;amount;note\n1;2,5;x\n2;3,75;y\n"))
    assert table.columns == ["id", "amount", "note"]
    assert table["amount"].to_list() == ["2,5", "3,75"]


def test_explicit_delimiter(tmp_path):
    path = write(tmp_path, "a;b\n1;2\n3;4\n")
    assert read(path, delimiter=";").rows() == [(1, 2), (3, 4)]
    # A comma delimiter on the same file is honoured: one column named after the whole header.
    assert read(path, delimiter=",").columns == ["a;b"]


@pytest.mark.parametrize("spelling", ["\t", "\\t", "tab"])
def test_explicit_tab_delimiter_spellings(tmp_path, spelling):
    path = write(tmp_path, "a\tb\n1\t2\n")
    assert read(path, delimiter=spelling).rows() == [(1, 2)]


def test_invalid_delimiter_setting_is_rejected(tmp_path):
    path = write(tmp_path, "a,b\n1,2\n")
    with pytest.raises(NodeFailed, match="single character"):
        read(path, delimiter=";;")


# --- malformed rows ----------------------------------------------------------------------------------------------

def test_row_with_too_many_fields_fails_naming_line_and_column(tmp_path):
    path = write(tmp_path, "id,name\n1,ann\n2,bob,extra\n3,cy\n")
    message = str(read_fails(path))
    assert str(path) in message
    assert has_line(message, 3), message
    assert "column 3" in message


def test_row_with_too_few_fields_fails_naming_line_and_missing_column(tmp_path):
    path = write(tmp_path, "id,name,city\n1,ann,x\n2,bob,y\n3,cy\n")
    message = str(read_fails(path))
    assert has_line(message, 4), message
    assert "column 3" in message
    assert "'city'" in message


def test_first_bad_row_is_reported_and_the_total_counted(tmp_path):
    path = write(tmp_path, "a,b\n1,2\n3\n4,5,6\n7,8\n")
    message = str(read_fails(path))
    assert has_line(message, 3), message
    assert "2 malformed rows" in message
    assert "skip" in message


def test_skip_drops_exactly_the_bad_rows(tmp_path):
    path = write(tmp_path, "id,name\n1,ann\n2,bob,extra\n3,cy\n4\n5,dee\n6,ed\n")
    table = read(path, on_bad_rows="skip")
    assert table.columns == ["id", "name"]
    assert table.rows() == [(1, "ann"), (3, "cy"), (5, "dee"), (6, "ed")]


def test_skip_keeps_multiline_quoted_rows_and_drops_the_bad_one_after_them(tmp_path):
    path = write(tmp_path, 'id,note\n1,"two\nlines"\n2,x,y\n3,"a,b"\n')
    table = read(path, on_bad_rows="skip")
    assert table.rows() == [(1, "two\nlines"), (3, "a,b")]


def test_bad_row_after_multiline_quoted_field_reports_its_physical_line(tmp_path):
    path = write(tmp_path, 'id,note\n1,"x\n\ny"\n2,z,3\n')
    assert has_line(str(read_fails(path)), 5)


def test_blank_lines_are_ignored(tmp_path):
    path = write(tmp_path, "\nid,name\n\n1,ann\n\n\n2,bob\n   \n\n")
    table = read(path)
    assert table.columns == ["id", "name"]
    assert table.rows() == [(1, "ann"), (2, "bob")]


def test_crlf_line_endings(tmp_path):
    path = write(tmp_path, "a,b\r\n1,x\r\n2,y\r\n")
    assert read(path).rows() == [(1, "x"), (2, "y")]


def test_crlf_skip_bad_rows(tmp_path):
    path = write(tmp_path, "a,b\r\n1,2\r\n3,4,5\r\n6,7\r\n")
    assert read(path, on_bad_rows="skip").rows() == [(1, 2), (6, 7)]


# --- quoting and nulls -------------------------------------------------------------------------------------------

def test_quoted_fields_with_embedded_delimiters_quotes_and_newlines(tmp_path):
    path = write(tmp_path, 'id,note,amount\n1,"Smith, John",10\n2,"line one\nline two",20\n3,"say ""hi""",30\n')
    table = read(path)
    assert table.columns == ["id", "note", "amount"]
    assert table.rows() == [(1, "Smith, John", 10), (2, "line one\nline two", 20), (3, 'say "hi"', 30)]


def test_null_markers_become_nulls(tmp_path):
    path = write(tmp_path, "id,name,amount\n1,NA,1.5\n2,,N/A\n3,null,NULL\n4,ann,2\n")
    table = read(path)
    assert table["name"].to_list() == [None, None, None, "ann"]
    assert table["amount"].to_list() == [1.5, None, None, 2.0]
    assert table["amount"].dtype == pl.Float64


def test_custom_null_markers(tmp_path):
    path = write(tmp_path, "id,amount\n1,-\n2,NA\n3,4\n")
    table = read(path, null_values=["-"])
    assert table["amount"].to_list() == [None, "NA", "4"]


# --- column types ------------------------------------------------------------------------------------------------

def test_dates_are_inferred(tmp_path):
    table = read(write(tmp_path, "id,day\n1,2024-01-31\n2,2024-02-29\n"))
    assert table["day"].to_list() == [dt.date(2024, 1, 31), dt.date(2024, 2, 29)]


def test_str_override_keeps_leading_zeros(tmp_path):
    path = write(tmp_path, "account,amount\n000123,5\n004560,6\n")
    assert read(path)["account"].to_list() == [123, 4560]  # inferred as int without the override
    table = read(path, column_types={"account": "str"})
    assert table["account"].dtype == pl.String
    assert table["account"].to_list() == ["000123", "004560"]
    assert table["amount"].to_list() == [5, 6]


@pytest.mark.parametrize(("kind", "values", "dtype", "expected"), [
    ("int", "1\n 2 \n-3\n", pl.Int64, [1, 2, -3]),
    ("float", "1\n2.5\n 3 \n", pl.Float64, [1.0, 2.5, 3.0]),
    ("category", "a\nb\na\n", pl.Categorical, ["a", "b", "a"]),
    ("str", "1\n02\nx\n", pl.String, ["1", "02", "x"]),
])
def test_type_overrides(tmp_path, kind, values, dtype, expected):
    table = read(write(tmp_path, "v\n" + values), column_types={"v": kind})
    assert table["v"].dtype == dtype
    assert table["v"].to_list() == expected


def test_override_keeps_nulls(tmp_path):
    table = read(write(tmp_path, "id,v\n1,7\n2,NA\n3,\n"), column_types={"v": "int"})
    assert table["v"].to_list() == [7, None, None]


def test_int_override_on_bad_value_names_line_and_column(tmp_path):
    path = write(tmp_path, "id,amount\n1,10\n2,20\n3,abc\n4,40\n")
    message = str(read_fails(path, column_types={"amount": "int"}))
    assert str(path) in message
    assert has_line(message, 4), message
    assert "'amount'" in message
    assert "abc" in message


def test_int_override_line_counts_multiline_quoted_fields(tmp_path):
    path = write(tmp_path, 'id,note,amount\n1,"a\nb",10\n2,x,abc\n')
    assert has_line(str(read_fails(path, column_types={"amount": "int"})), 4)


@pytest.mark.parametrize(("content", "settings", "line"), [
    ("id,amount\n1,10\n\n2,20\n3,abc\n", {}, 5),  # a blank line before the bad value
    ("id,amount\n1,10\n2,20,99\n3,abc\n", {"on_bad_rows": "skip"}, 4),  # a skipped row before it
], ids=["after-blank-line", "after-skipped-row"])
def test_int_override_line_is_the_physical_line_after_dropped_lines(tmp_path, content, settings, line):
    path = write(tmp_path, content)
    message = str(read_fails(path, column_types={"amount": "int"}, **settings))
    assert has_line(message, line), message


def test_bool_override(tmp_path):
    table = read(write(tmp_path, "id,flag\n1,true\n2,false\n"), column_types={"flag": "bool"})
    assert table["flag"].dtype == pl.Boolean
    assert table["flag"].to_list() == [True, False]


@pytest.mark.parametrize(("kind", "value", "expected"), [
    ("date", "2024-01-02", dt.date(2024, 1, 2)),
    ("datetime", "2024-01-02 03:04:05", dt.datetime(2024, 1, 2, 3, 4, 5)),
])
def test_date_and_datetime_overrides(tmp_path, kind, value, expected):
    table = read(write(tmp_path, f"id,d\n1,{value}\n"), column_types={"d": kind})
    assert table["d"].to_list() == [expected]


def test_override_of_unknown_column_lists_the_columns(tmp_path):
    path = write(tmp_path, "id,amount\n1,2\n")
    message = str(read_fails(path, column_types={"amont": "int"}))
    assert "amont" in message
    assert "id, amount" in message


def test_no_header_names_columns_and_applies_overrides(tmp_path):
    path = write(tmp_path, "001,5\n002,6\n")
    table = read(path, has_header=False, column_types={"column_1": "str"})
    assert table.columns == ["column_1", "column_2"]
    assert table.rows() == [("001", 5), ("002", 6)]


# --- files -------------------------------------------------------------------------------------------------------

def test_empty_file_fails(tmp_path):
    path = write(tmp_path, b"")
    message = str(read_fails(path))
    assert "empty" in message and str(path) in message


def test_file_with_only_a_bom_and_blank_lines_is_empty(tmp_path):
    assert "empty" in str(read_fails(write(tmp_path, b"\xef\xbb\xbf\r\n\n")))


def test_header_only_file_gives_empty_table_with_columns(tmp_path):
    table = read(write(tmp_path, "id,name,amount\n"))
    assert table.columns == ["id", "name", "amount"]
    assert table.height == 0


def test_missing_file(tmp_path):
    message = str(read_fails(tmp_path / "nope.csv"))
    assert "File not found" in message and "nope.csv" in message


def test_folder_instead_of_file(tmp_path):
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    assert "folder" in str(read_fails(folder))


def test_relative_path_resolves_against_project_dir(tmp_path):
    write(tmp_path, "a,b\n1,2\n", name="data/in.csv")
    table = run_node(ReadCSV, settings={"path": "data/in.csv"}, project_dir=tmp_path, workdir=tmp_path / ".w")
    assert table["table"].rows() == [(1, 2)]


# --- fingerprint -------------------------------------------------------------------------------------------------

def fingerprint(project_dir: Path, path: str, files: FileFingerprints | None = None) -> str:
    ctx = FingerprintContext(project_dir=project_dir, files=files or FileFingerprints())
    return ReadCSV.fingerprint(ReadCSV.Settings(path=path), ctx)


def test_fingerprint_is_the_content_hash_and_follows_changes(tmp_path):
    path = write(tmp_path, "a,b\n1,2\n", name="in.csv")
    files = FileFingerprints()
    first = fingerprint(tmp_path, "in.csv", files)
    assert first == sha256_file(path)
    assert fingerprint(tmp_path, "in.csv", files) == first

    path.write_text("a,b\n1,2\n3,4\n")
    second = fingerprint(tmp_path, "in.csv", files)
    assert second != first
    assert second == sha256_file(path)

    path.write_text("a,b\n1,2\n")
    assert fingerprint(tmp_path, "in.csv", FileFingerprints()) == first


def test_fingerprint_is_content_based_not_size_based(tmp_path):
    path = write(tmp_path, "a,b\n1,2\n", name="in.csv")
    first = fingerprint(tmp_path, "in.csv")
    path.write_text("a,b\n1,3\n")
    assert fingerprint(tmp_path, "in.csv") != first


def test_fingerprint_resolves_relative_paths_against_project_dir(tmp_path):
    path = write(tmp_path, "a\n1\n", name="sub/in.csv")
    assert fingerprint(tmp_path, "sub/in.csv") == fingerprint(tmp_path / "other", str(path)) == sha256_file(path)


def test_fingerprint_of_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(NodeInputError, match="File not found"):
        fingerprint(tmp_path, "missing.csv")
