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
