"""Trivial nodes for benchmarks: their compute costs microseconds, so timings show pure engine overhead."""
from __future__ import annotations

import polars as pl

from engine.ports import Table
from engine.sdk import Node, NodeSettings, node


class StepSettings(NodeSettings):
    n: int = 1


def step(table: pl.DataFrame, n: int) -> pl.DataFrame:
    """The work every benchmark node does; the plain-loop anchor calls exactly this."""
    return table.with_columns(pl.col("x") + n)


@node("bench.source", title="Bench source", category="Bench")
class Source(Node):
    """A one-row table."""

    outputs = {"table": Table}
    Settings = StepSettings

    def compute(self, inputs, settings, ctx):
        return {"table": pl.DataFrame({"x": [settings.n]})}


@node("bench.step", title="Bench step", category="Bench")
class Step(Node):
    """Adds n to x."""

    inputs = {"table": Table}
    outputs = {"table": Table}
    Settings = StepSettings

    def compute(self, inputs, settings, ctx):
        return {"table": step(inputs["table"], settings.n)}


@node("bench.heavy_step", title="Bench heavy step", category="Bench", heavy=True)
class HeavyStep(Step):
    """Step, declared heavy so it is dispatched to a worker process or Dask."""


@node("bench.sleepy", title="Bench sleepy", category="Bench", heavy=True)
class Sleepy(Step):
    """Reports progress, then blocks without ever checking for cancellation (like a long library call)."""

    def compute(self, inputs, settings, ctx):
        import time

        ctx.progress(0.0, "blocking")
        time.sleep(600)
        return {"table": inputs["table"]}


BENCH_NODES = [Source, Step, HeavyStep, Sleepy]
