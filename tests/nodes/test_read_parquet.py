"""ReadParquet: one file, a folder, a glob, column selection and the errors for each."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine.fileio import FileFingerprints
from engine.sdk import FingerprintContext
from engine.testing import NodeFailed, run_node
from nodes.io.parquet_reader import ReadParquet

PART_1 = pl.DataFrame({"id": [1, 2], "name": ["ann", "bob"], "amount": [1.5, 2.5]})
PART_2 = pl.DataFrame({"id": [3], "name": ["李四"], "amount": [None]}, schema=PART_1.schema)


def put(table: pl.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    table.write_parquet(path)
    return path


def read(project: Path, **settings) -> pl.DataFrame:
    return run_node(ReadParquet, settings=settings, project_dir=project, workdir=project / ".work")["table"]


def read_fails(project: Path, **settings) -> NodeFailed:
    with pytest.raises(NodeFailed) as info:
        read(project, **settings)
    assert info.value.input_error, f"expected a user-facing input error, got: {info.value}"
    return info.value


def test_single_file(tmp_path):
    put(PART_1, tmp_path / "data.parquet")
    assert_frame_equal(read(tmp_path, path="data.parquet"), PART_1)


def test_single_file_by_absolute_path(tmp_path):
    path = put(PART_1, tmp_path / "sub" / "data.parquet")
    assert_frame_equal(read(tmp_path / "elsewhere", path=str(path)), PART_1)


def test_folder_reads_all_files_in_name_order_including_subfolders(tmp_path):
    put(PART_2, tmp_path / "parts" / "b.parquet")
    put(PART_1, tmp_path / "parts" / "a.parquet")
    put(PART_1, tmp_path / "parts" / "nested" / "c.parquet")
    (tmp_path / "parts" / "readme.txt").write_text("not parquet")
    table = read(tmp_path, path="parts")
    assert_frame_equal(table, pl.concat([PART_1, PART_2, PART_1]))


def test_glob(tmp_path):
    put(PART_1, tmp_path / "data" / "2024-01.parquet")
    put(PART_2, tmp_path / "data" / "2024-02.parquet")
    put(PART_1, tmp_path / "data" / "2023-12.parquet")
    table = read(tmp_path, path="data/2024-*.parquet")
    assert_frame_equal(table, pl.concat([PART_1, PART_2]))


def test_recursive_glob(tmp_path):
    put(PART_1, tmp_path / "data" / "x" / "a.parquet")
    put(PART_2, tmp_path / "data" / "y" / "z" / "b.parquet")
    assert read(tmp_path, path="data/**/*.parquet").height == 3


@pytest.mark.parametrize("columns", [["name"], ["amount", "id"]])
def test_column_selection(tmp_path, columns):
    put(PART_1, tmp_path / "data.parquet")
    table = read(tmp_path, path="data.parquet", columns=columns)
    assert table.columns == columns
    assert_frame_equal(table, PART_1.select(columns))


def test_column_selection_over_a_folder(tmp_path):
    put(PART_1, tmp_path / "parts" / "a.parquet")
    put(PART_2, tmp_path / "parts" / "b.parquet")
    table = read(tmp_path, path="parts", columns=["name"])
    assert table["name"].to_list() == ["ann", "bob", "李四"]


def test_missing_column_is_named(tmp_path):
    put(PART_1, tmp_path / "data.parquet")
    message = str(read_fails(tmp_path, path="data.parquet", columns=["id", "balance", "zip"]))
    assert "balance" in message and "zip" in message
    assert "not found" in message


def test_missing_file(tmp_path):
    message = str(read_fails(tmp_path, path="nope.parquet"))
    assert "File not found" in message and "nope.parquet" in message


def test_glob_matching_nothing(tmp_path):
    put(PART_1, tmp_path / "data" / "a.parquet")
    message = str(read_fails(tmp_path, path="data/*.pq"))
    assert "No Parquet files match" in message


def test_folder_without_parquet_files(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.csv").write_text("a\n1\n")
    assert "No Parquet files match" in str(read_fails(tmp_path, path="empty"))


def test_file_that_is_not_parquet(tmp_path):
    (tmp_path / "data.parquet").write_text("id,name\n1,ann\n")
    assert "not a readable Parquet file" in str(read_fails(tmp_path, path="data.parquet"))


def test_existing_file_with_brackets_in_its_name(tmp_path):
    put(PART_1, tmp_path / "data[1].parquet")
    assert_frame_equal(read(tmp_path, path="data[1].parquet"), PART_1)


def test_folder_with_mismatched_schemas_is_an_input_error(tmp_path):
    put(PART_1, tmp_path / "parts" / "a.parquet")
    put(pl.DataFrame({"id": [1.5], "other": ["x"]}), tmp_path / "parts" / "b.parquet")
    read_fails(tmp_path, path="parts")


def test_fingerprint_follows_the_files(tmp_path):
    put(PART_1, tmp_path / "parts" / "a.parquet")
    ctx = FingerprintContext(project_dir=tmp_path, files=FileFingerprints())
    settings = ReadParquet.Settings(path="parts")
    first = ReadParquet.fingerprint(settings, ctx)
    assert ReadParquet.fingerprint(settings, ctx) == first
    put(PART_2, tmp_path / "parts" / "b.parquet")
    second = ReadParquet.fingerprint(settings, ctx)
    assert second != first
    (tmp_path / "parts" / "b.parquet").unlink()
    assert ReadParquet.fingerprint(settings, FingerprintContext(tmp_path, FileFingerprints())) == first


# ---- filter pushdown, row limit, streaming collect ---------------------------------------------------------
LOANS = pl.DataFrame({
    "id": list(range(1, 41)),
    "region": ["华东", "North", "South", "华南"] * 10,
    "amount": [float(i * 37 % 101) for i in range(40)],
    "opened": pl.date_range(pl.date(2023, 1, 1), pl.date(2023, 2, 9), eager=True),
})


def test_filter_is_the_same_as_filtering_afterwards(tmp_path):
    put(LOANS, tmp_path / "loans.parquet")
    condition = "amount > 30 and region in ('华东', 'South') and day(opened) != 7"
    table = read(tmp_path, path="loans.parquet", filter=condition)
    expected = LOANS.filter((pl.col("amount") > 30) & pl.col("region").is_in(["华东", "South"])
                            & (pl.col("opened").dt.day() != 7))
    assert 0 < table.height < LOANS.height
    assert_frame_equal(table, expected)


def test_filter_on_a_column_that_is_not_read(tmp_path):
    put(LOANS, tmp_path / "loans.parquet")
    table = read(tmp_path, path="loans.parquet", columns=["id"], filter="region == 'North'")
    assert table.columns == ["id"]
    assert table["id"].to_list() == [i for i in range(1, 41) if i % 4 == 2]


def test_filter_drops_rows_where_the_condition_is_null(tmp_path):
    put(pl.concat([PART_1, PART_2]), tmp_path / "data.parquet")
    assert read(tmp_path, path="data.parquet", filter="amount < 100")["id"].to_list() == [1, 2]


def test_limit_keeps_the_first_rows_in_order(tmp_path):
    put(LOANS, tmp_path / "loans.parquet")
    assert_frame_equal(read(tmp_path, path="loans.parquet", limit=5), LOANS.head(5))
    assert read(tmp_path, path="loans.parquet", limit=1000).height == LOANS.height
    limited = read(tmp_path, path="loans.parquet", filter="region == '华南'", limit=3)
    assert limited["id"].to_list() == [4, 8, 12]


def test_filter_and_limit_over_a_folder_of_parts(tmp_path):
    for i in range(4):
        put(LOANS.slice(i * 10, 10), tmp_path / "parts" / f"part-{i}.parquet")
    table = read(tmp_path, path="parts", filter="amount >= 50 or id == 40", columns=["id", "amount"])
    expected = LOANS.filter((pl.col("amount") >= 50) | (pl.col("id") == 40)).select("id", "amount")
    assert_frame_equal(table, expected)
    assert_frame_equal(read(tmp_path, path="parts", filter="amount >= 50", limit=4),
                       LOANS.filter(pl.col("amount") >= 50).head(4))


def test_bad_filter_points_at_its_position(tmp_path):
    put(LOANS, tmp_path / "loans.parquet")
    message = str(read_fails(tmp_path, path="loans.parquet", filter="amount > 3 and regoin == 'North'"))
    assert "Keep rows where" in message and "regoin" in message and "column 16" in message
    assert "region" in message  # the suggestion
    assert "\n" + " " * (2 + 15) + "^" in message  # the caret under the 16th character
    message = str(read_fails(tmp_path, path="loans.parquet", filter="amount = 3"))
    assert "column 8" in message and "==" in message


def test_filter_that_is_not_a_condition(tmp_path):
    put(LOANS, tmp_path / "loans.parquet")
    assert "not true/false" in str(read_fails(tmp_path, path="loans.parquet", filter="amount * 2"))


def test_blank_filter_and_old_settings_read_everything(tmp_path):
    put(PART_1, tmp_path / "data.parquet")
    assert_frame_equal(read(tmp_path, path="data.parquet", filter="  "), PART_1)
    settings = ReadParquet.Settings.model_validate({"path": "data.parquet", "columns": []})  # a pre-filter project
    assert settings.filter is None and settings.limit is None


def test_limit_must_be_positive():
    with pytest.raises(ValueError):
        ReadParquet.Settings(path="x.parquet", limit=0)
