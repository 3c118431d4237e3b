"""Heavy-node dispatch: a trivial heavy node through a warm local worker process and a loopback Dask worker,
against calling its compute function directly. Target: at most 50 ms added per heavy node.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import polars as pl

from bench.benchnodes import HeavyStep
from bench.common import report
from engine.executors.base import NodeTask
from engine.executors.process import LocalProcessExecutor
from engine.sdk import Context

N = 40
ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def task() -> NodeTask:
    return NodeTask(node_cls=HeavyStep, settings={"n": 1}, inputs={"table": pl.DataFrame({"x": [1]})},
                    node_id="bench", title="bench", seed=1, project_dir=None, workdir=tempfile.mkdtemp())


def direct_s() -> float:
    t = task()
    ctx = Context(node_id="b", title="b", seed=1, workdir=Path(t.workdir or "."))
    settings = HeavyStep.Settings(n=1)
    times = []
    for _ in range(N):
        t0 = time.perf_counter()
        HeavyStep().compute(t.inputs, settings, ctx)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def through(executor) -> float:  # noqa: ANN001
    for _ in range(3):  # warm-up: imports on the worker side
        executor.submit(task(), lambda *a: None).future.result(timeout=120)
    times = []
    for _ in range(N):
        t0 = time.perf_counter()
        outcome = executor.submit(task(), lambda *a: None).future.result(timeout=120)
        times.append(time.perf_counter() - t0)
        assert outcome.error is None, outcome.error
    return statistics.median(times)


def cancel_latency_ms(executor: LocalProcessExecutor) -> float:
    """From cancel() to the task's future resolving, for a heavy node stuck in non-cooperative work."""
    from bench.benchnodes import Sleepy

    t = task()
    t.node_cls = Sleepy
    running = threading.Event()
    handle = executor.submit(t, lambda kind, payload: running.set())
    running.wait(timeout=60)
    t0 = time.perf_counter()
    handle.cancel()
    outcome = handle.future.result(timeout=30)
    assert outcome.cancelled, outcome
    return (time.perf_counter() - t0) * 1000


def start_dask(folder: Path) -> tuple[str, list[subprocess.Popen]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}  # as README advises
    sched = folder / "scheduler.json"
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--scheduler-file", str(sched), "--no-dashboard"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    while not (sched.exists() and sched.stat().st_size):
        time.sleep(0.1)
    procs.append(subprocess.Popen([str(BIN / "dask"), "worker", "--scheduler-file", str(sched), "--nthreads", "1",
                                   "--host", "127.0.0.1", "--no-dashboard"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL))
    address = json.loads(sched.read_text())["address"]
    from distributed import Client

    with Client(address, timeout=30) as c:
        c.wait_for_workers(1, timeout=60)
    return address, procs


def main() -> dict:
    base = direct_s()
    pool = LocalProcessExecutor(max_workers=1)
    pool.warm(1)
    try:
        local = through(pool)
        cancel_ms = cancel_latency_ms(pool)
    finally:
        pool.close()
    added_local = (local - base) * 1000
    report("heavy dispatch: local worker process (ms)", local * 1000, base * 1000, "ms", "<= 50 ms added",
           added_local <= 50)
    report("cancel a stuck heavy node (ms; anchor = budget)", cancel_ms, 2000.0, "ms", "<= 2000 ms",
           cancel_ms <= 2000)
    folder = Path(tempfile.mkdtemp(prefix="lf-dask-"))
    address, procs = start_dask(folder)
    try:
        from engine.executors.dask import DaskExecutor

        dex = DaskExecutor(address)
        try:
            remote = through(dex)
        finally:
            dex.close()
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=20)
    added_dask = (remote - base) * 1000
    report("heavy dispatch: loopback Dask worker (ms)", remote * 1000, base * 1000, "ms", "<= 50 ms added",
           added_dask <= 50)
    return {"direct_ms": base * 1000, "local_ms": local * 1000, "dask_ms": remote * 1000, "cancel_ms": cancel_ms}


if __name__ == "__main__":
    main()
