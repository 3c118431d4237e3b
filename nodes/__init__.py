"""Ledgerflow's built-in node library, registered through the `ledgerflow.nodes` entry point like any plugin."""
from nodes.automl.predict import Predict
from nodes.automl.train import AutoML
from nodes.evaluate.evaluate import Evaluate
from nodes.explore.profile import Profile
from nodes.features.split import Split
from nodes.features.table_ops import DeriveColumn, FilterRows, GroupBy, Join, SelectColumns
from nodes.io.csv_reader import ReadCSV
from nodes.io.excel_reader import ReadExcel
from nodes.io.parquet_reader import ReadParquet
from nodes.io.writers import WriteCSV, WriteParquet

NODES = [ReadCSV, ReadExcel, ReadParquet, WriteCSV, WriteParquet, Profile, FilterRows, SelectColumns, DeriveColumn,
         Join, GroupBy, Split, AutoML, Evaluate, Predict]
