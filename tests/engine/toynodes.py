"""Tiny node types for engine tests: sources, transforms, failures, crashes, sleeps, GPU probes."""
from __future__ import annotations

import os
import threading
import time
from typing import Literal

import polars as pl
from pydantic import Field

from engine.errors import NodeInputError
from engine.ports import Model, ModelRef, Report, ReportPort, Table
from engine.sdk import Node, NodeSettings, node

# Test-only rendezvous for proving concurrency (real nodes must not use globals).
BARRIERS: dict[str, threading.Barrier] = {}


class ConstSettings(NodeSettings):
    value: int = Field(1, ge=0, le=1000)
    rows: int = 3


@node("toy.const", title="Const", category="Toy")
class Const(Node):
    """A source table of constant values."""

    outputs = {"table": Table}
    Settings = ConstSettings

    def compute(self, inputs, settings, ctx):
        return {"table": pl.DataFrame({"x": [settings.value] * settings.rows})}


class AddSettings(NodeSettings):
    n: int = 1


@node("toy.add", title="Add", category="Toy")
class Add(Node):
    """Add n to column x."""

    inputs = {"table": Table}
    outputs = {"table": Table}
    Settings = AddSettings

    def compute(self, inputs, settings, ctx):
        ctx.progress(0.5, "adding")
        ctx.log.info("adding %d", settings.n)
        return {"table": inputs["table"].with_columns(pl.col("x") + settings.n)}


@node("toy.concat", title="Concat", category="Toy")
class Concat(Node):
    """Stack two tables."""

    inputs = {"a": Table, "b": Table}
    outputs = {"table": Table}

    def compute(self, inputs, settings, ctx):
        return {"table": pl.concat([inputs["a"], inputs["b"]])}


class FailSettings(NodeSettings):
    kind: Literal["exception", "input"] = "exception"


@node("toy.fail", title="Fail", category="Toy")
class Fail(Node):
    """Always fails."""

    inputs = {"table": Table}
    outputs = {"table": Table}
    Settings = FailSettings

    def compute(self, inputs, settings, ctx):
        if settings.kind == "input":
            raise NodeInputError("column 'y' is missing")
        raise ValueError("boom")


class BarrierSettings(NodeSettings):
    name: str
    parties: int = 2


@node("toy.barrier", title="Barrier", category="Toy")
class Barrier(Node):
    """Waits until `parties` barrier nodes run at the same time (fails after 10 s otherwise)."""

    inputs = {"table": Table}
    outputs = {"table": Table}
    Settings = BarrierSettings

    def compute(self, inputs, settings, ctx):
        b = BARRIERS.setdefault(settings.name, threading.Barrier(settings.parties))
        b.wait(timeout=10)
        return {"table": inputs["table"]}


class SleepSettings(NodeSettings):
    seconds: float = 0.0
    cooperative: bool = False


@node("toy.sleep", title="Sleep", category="Toy", heavy=True)
class Sleep(Node):
    """A heavy node that sleeps; non-cooperative sleeps ignore ctx.cancelled()."""

    inputs = {"table": Table}
    outputs = {"table": Table}
    Settings = SleepSettings

    def compute(self, inputs, settings, ctx):
        end = time.monotonic() + settings.seconds
        while time.monotonic() < end:
            if settings.cooperative:
                ctx.check_cancelled()
            time.sleep(0.05)
        return {"table": inputs["table"].with_columns(pl.lit(os.getpid()).alias("pid"))}


class CrashSettings(NodeSettings):
    mode: Literal["exit", "segv"] = "exit"


@node("toy.crash", title="Crash", category="Toy", heavy=True)
class Crash(Node):
    """Kills its own process."""

    inputs = {"table": Table}
    outputs = {"table": Table}
    Settings = CrashSettings

    def compute(self, inputs, settings, ctx):
        if settings.mode == "exit":
            os._exit(3)
        import ctypes

        ctypes.string_at(0)  # segfault
        return {}


@node("toy.where", title="Where", category="Toy", gpu=True)
class Where(Node):
    """Reports which worker ran it (a GPU-hinted node)."""

    inputs = {"table": Table}
    outputs = {"table": Table}

    def compute(self, inputs, settings, ctx):
        ctx.progress(0.5, "probing")
        return {"table": pl.DataFrame({"pid": [os.getpid()], "gpu": [ctx.resources.get("GPU", 0)]})}


@node("toy.model", title="Toy model", category="Toy", heavy=True)
class ToyModel(Node):
    """Writes a model folder (stands in for a native model format)."""

    inputs = {"table": Table}
    outputs = {"model": Model}

    def compute(self, inputs, settings, ctx):
        folder = ctx.workdir / "toy"
        folder.mkdir()
        (folder / "weights.txt").write_text(str(int(inputs["table"]["x"].sum())))
        return {"model": ModelRef("toy", folder, {"rows": inputs["table"].height})}


@node("toy.use_model", title="Use model", category="Toy", heavy=True)
class UseModel(Node):
    """Reads a toy model back."""

    inputs = {"model": Model}
    outputs = {"table": Table}

    def compute(self, inputs, settings, ctx):
        weight = int((inputs["model"].path / "weights.txt").read_text())
        return {"table": pl.DataFrame({"weight": [weight], "rows": [inputs["model"].info["rows"]]})}


@node("toy.report", title="Toy report", category="Toy")
class ToyReport(Node):
    """An evaluation-like report."""

    inputs = {"table": Table}
    outputs = {"report": ReportPort}

    def compute(self, inputs, settings, ctx):
        return {"report": Report(title="t", kind="evaluation", metrics={"auc": 0.5, "ks": 0.0, "gini": 0.0})}


class RenamedSettings(NodeSettings):
    threshold: float = Field(0.5, ge=0, le=1)


@node("toy.renamed", version=2, title="Renamed", category="Toy", legacy_ids=("toy.old_name",))
class Renamed(Node):
    """Version 2 renamed setting 'cutoff' (v1) to 'threshold'."""

    outputs = {"table": Table}
    Settings = RenamedSettings

    @classmethod
    def migrate(cls, settings, from_version):
        if from_version < 2 and "cutoff" in settings:
            settings = dict(settings)
            settings["threshold"] = settings.pop("cutoff")
        return settings

    def compute(self, inputs, settings, ctx):
        return {"table": pl.DataFrame({"t": [settings.threshold]})}


TOY_NODES = [Const, Add, Concat, Fail, Barrier, Sleep, Crash, Where, ToyModel, UseModel, ToyReport, Renamed]
