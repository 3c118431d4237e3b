"""Shared fixtures: a real Dask scheduler and workers on loopback, started as subprocesses."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session", autouse=True)
def ledgerflow_home(tmp_path_factory):
    """Per-user state (the cache signing key) in a temporary home, inherited by CLI subprocesses."""
    home = tmp_path_factory.mktemp("ledgerflow-home")
    os.environ["LEDGERFLOW_HOME"] = str(home)
    return home


def _wait_for(path: Path, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and path.stat().st_size:
            return
        time.sleep(0.2)
    raise TimeoutError(f"{path} did not appear")


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory):
    """`dask scheduler` plus a CPU worker and a worker that declares GPU=1 (a label: no GPU exists here)."""
    from distributed import Client

    folder = tmp_path_factory.mktemp("dask")
    sched_file = folder / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "engine"), str(ROOT)]),
           "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    common = ["--no-dashboard"]
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--scheduler-file", str(sched_file), *common], env=env, cwd=folder,
                              stdout=subprocess.DEVNULL, stderr=open(folder / "scheduler.log", "w"))]
    _wait_for(sched_file)
    for name, extra in (("cpu-worker", []), ("gpu-worker", ["--resources", "GPU=1"])):
        procs.append(subprocess.Popen([str(BIN / "dask"), "worker", "--scheduler-file", str(sched_file),
                                       "--nthreads", "1", "--nworkers", "1", "--name", name, "--host", "127.0.0.1",
                                       *extra, *common], env=env, cwd=folder, stdout=subprocess.DEVNULL,
                                      stderr=open(folder / f"{name}.log", "w")))
    address = json.loads(sched_file.read_text())["address"]
    with Client(address, timeout=30) as client:
        client.wait_for_workers(2, timeout=90)
    yield address
    for p in reversed(procs):
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()


@pytest.fixture(autouse=True)
def _language_restored():
    """A test that switches the language (CLI --lang, the workbench) must not leak it into later tests."""
    from engine import i18n

    before, env = i18n._default_lang, os.environ.get("LEDGERFLOW_LANG")
    yield
    i18n._default_lang = before
    if env is None:
        os.environ.pop("LEDGERFLOW_LANG", None)
    else:
        os.environ["LEDGERFLOW_LANG"] = env


@pytest.fixture(scope="session")
def pg():
    """One throwaway PostgreSQL server for the whole session (tests/postgres_server.py); each test that needs a
    database asks `fresh_pg_url` (or `module_pg_url`) for a new, empty one on it."""
    from postgres_server import postgres_server

    with postgres_server() as server:
        yield server


@pytest.fixture
def fresh_pg_url(pg) -> str:
    from postgres_server import new_database

    return new_database(pg)


@pytest.fixture(scope="module")
def module_pg_url(pg) -> str:
    from postgres_server import new_database

    return new_database(pg)
