"""WriteCSV / WriteParquet: round trips, encodings, atomic replacement, folder errors and receipts."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine.fileio import FileFingerprints, sha256_file
from engine.sdk import FingerprintContext
from engine.testing import NodeFailed, run_node
from nodes.io.csv_reader import ReadCSV
from nodes.io.writers import WriteCSV, WriteParquet

TABLE = pl.DataFrame({
    "id": [1, 2, 3],
    "name": ["ann", "Zoë, \"Z\"", None],
    "amount": [1.5, None, -2.25],
    "day": [dt.date(2024, 1, 31), dt.date(2024, 2, 29), None],
})
CHINESE = pl.DataFrame({"客户": ["张三", "李四"], "城市": ["北京", "上海"], "金额": [100, 200]})


@pytest.fixture
def out(tmp_path) -> Path:
    """The output folder; the node's workdir lives elsewhere so folder listings only show what writers made."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def write(node, table: pl.DataFrame, folder: Path, **settings) -> None:
    run_node(node, inputs={"table": table}, settings=settings, project_dir=folder,
             workdir=folder.parent / "work")


def read_csv_node(path: Path, **settings) -> pl.DataFrame:
    return run_node(ReadCSV, settings={"path": str(path), **settings}, workdir=path.parent.parent / "work")["table"]


# --- round trips -------------------------------------------------------------------------------------------------

def test_csv_round_trip(out):
    write(WriteCSV, TABLE, out, path="t.csv")
    assert_frame_equal(pl.read_csv(out / "t.csv", try_parse_dates=True), TABLE)
    assert_frame_equal(read_csv_node(out / "t.csv"), TABLE)


def test_csv_delimiter_and_no_header(out):
    write(WriteCSV, CHINESE, out, path="t.csv", delimiter=";", include_header=False)
    assert (out / "t.csv").read_text("utf-8") == "张三;北京;100\n李四;上海;200\n"


def test_csv_utf8_sig_writes_a_bom(out):
    write(WriteCSV, CHINESE, out, path="t.csv", encoding="utf-8-sig")
    data = (out / "t.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert data[3:].decode("utf-8").startswith("客户,城市,金额\n")
    assert_frame_equal(read_csv_node(out / "t.csv"), CHINESE)


def test_csv_gbk(out):
    write(WriteCSV, CHINESE, out, path="t.csv", encoding="gbk")
    data = (out / "t.csv").read_bytes()
    assert data == CHINESE.write_csv().encode("gbk")
    assert_frame_equal(read_csv_node(out / "t.csv", encoding="gbk"), CHINESE)
    assert_frame_equal(read_csv_node(out / "t.csv"), CHINESE)


def test_csv_gbk_unencodable_text_fails_and_leaves_no_file(out):
    table = pl.DataFrame({"note": ["fine", "party 🎉"]})
    with pytest.raises(NodeFailed) as info:
        write(WriteCSV, table, out, path="t.csv", encoding="gbk")
    assert info.value.input_error
    message = str(info.value)
    assert "gbk" in message and "utf-8" in message
    assert os.listdir(out) == []


def test_csv_gbk_unencodable_text_keeps_the_old_file(out):
    (out / "t.csv").write_text("old\n")
    with pytest.raises(NodeFailed):
        write(WriteCSV, pl.DataFrame({"note": ["🎉"]}), out, path="t.csv", encoding="gbk")
    assert (out / "t.csv").read_text() == "old\n"
    assert os.listdir(out) == ["t.csv"]


@pytest.mark.parametrize("compression", ["zstd", "snappy", "lz4", "uncompressed"])
def test_parquet_round_trip(out, compression):
    write(WriteParquet, TABLE, out, path="t.parquet", compression=compression)
    assert_frame_equal(pl.read_parquet(out / "t.parquet"), TABLE)
    assert os.listdir(out) == ["t.parquet"]


def test_parquet_keeps_chinese_column_names(out):
    write(WriteParquet, CHINESE, out, path="t.parquet")
    assert_frame_equal(pl.read_parquet(out / "t.parquet"), CHINESE)


# --- replacing, folders ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("node", "name", "load"), [
    (WriteCSV, "t.csv", pl.read_csv),
    (WriteParquet, "t.parquet", pl.read_parquet),
])
def test_existing_file_is_replaced(out, node, name, load):
    (out / name).write_bytes(b"old content that is longer than the new one " * 100)
    small = pl.DataFrame({"x": [1]})
    write(node, small, out, path=name)
    assert_frame_equal(load(out / name), small)
    assert os.listdir(out) == [name]


def test_failed_parquet_write_keeps_old_file_and_leaves_no_temp(out, monkeypatch):
    old = pl.DataFrame({"x": [1, 2, 3]})
    old.write_parquet(out / "t.parquet")
    before = (out / "t.parquet").read_bytes()

    def broken_write(self, file, *args, **kwargs):
        Path(file).write_bytes(b"PAR1 half a file")  # a partial write, then the failure
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", broken_write)
    with pytest.raises(NodeFailed, match="disk full"):
        write(WriteParquet, pl.DataFrame({"x": [9]}), out, path="t.parquet")
    monkeypatch.undo()

    assert (out / "t.parquet").read_bytes() == before
    assert_frame_equal(pl.read_parquet(out / "t.parquet"), old)
    assert os.listdir(out) == ["t.parquet"]


def test_failed_parquet_write_of_new_file_leaves_nothing(out, monkeypatch):
    def broken_write(self, file, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", broken_write)
    with pytest.raises(NodeFailed):
        write(WriteParquet, pl.DataFrame({"x": [9]}), out, path="sub/t.parquet")
    monkeypatch.undo()
    assert not (out / "sub" / "t.parquet").exists()
    assert os.listdir(out / "sub") == []


@pytest.mark.parametrize("node", [WriteCSV, WriteParquet])
def test_target_that_is_a_folder_fails(out, node):
    (out / "target").mkdir()
    (out / "target" / "keep.txt").write_text("keep")
    with pytest.raises(NodeFailed) as info:
        write(node, TABLE, out, path="target")
    assert info.value.input_error
    assert "folder" in str(info.value)
    assert os.listdir(out / "target") == ["keep.txt"]
    assert sorted(os.listdir(out)) == ["target"]


@pytest.mark.parametrize(("node", "name"), [(WriteCSV, "a/b/c/t.csv"), (WriteParquet, "a/b/c/t.parquet")])
def test_parent_folders_are_created(out, node, name):
    write(node, TABLE, out, path=name)
    assert (out / name).is_file()
    assert os.listdir((out / name).parent) == [Path(name).name]


def test_absolute_path_ignores_project_dir(tmp_path, out):
    target = tmp_path / "elsewhere" / "t.csv"
    write(WriteCSV, TABLE, out, path=str(target))
    assert target.is_file()
    assert os.listdir(out) == []


# --- receipts ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("node", "name"), [(WriteCSV, "t.csv"), (WriteParquet, "t.parquet")])
def test_receipt_is_the_file_hash_and_follows_the_file(out, node, name):
    settings = node.Settings(path=name)
    files = FileFingerprints()

    def receipt():
        return node.receipt(settings, FingerprintContext(project_dir=out, files=files))

    assert receipt() is None
    write(node, TABLE, out, path=name)
    first = receipt()
    assert first == sha256_file(out / name)
    assert receipt() == first

    write(node, TABLE.head(1), out, path=name)
    second = receipt()
    assert second != first
    assert second == sha256_file(out / name)

    (out / name).unlink()
    assert receipt() is None


def test_receipt_is_none_for_a_folder(out):
    (out / "t.csv").mkdir()
    ctx = FingerprintContext(project_dir=out, files=FileFingerprints())
    assert WriteCSV.receipt(WriteCSV.Settings(path="t.csv"), ctx) is None
