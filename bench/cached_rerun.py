"""Cached re-run of the credit-risk sample against its first run, each as a whole `ledgerflow run` process.

Target: the re-run executes no node and takes at most 10% of the first run's wall time.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import report

LEDGERFLOW = str(Path(sys.executable).parent / "ledgerflow")


def timed_run(project: Path) -> tuple[float, dict]:
    t0 = time.perf_counter()
    out = subprocess.run([LEDGERFLOW, "run", str(project), "--json"], capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, json.loads(out.stdout)


def main(time_limit: int = 30) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="lf-bench-"))
    try:
        project = folder / "credit"
        subprocess.run([LEDGERFLOW, "new", str(project), "--template", "credit-risk", "--time-limit",
                        str(time_limit)], check=True, capture_output=True)
        first, doc1 = timed_run(project)
        second, doc2 = timed_run(project)
        executed = [n["title"] for n in doc2["nodes"] if not n["cached"]]
        ok = not executed and second <= 0.10 * first
        report("cached re-run of credit-risk sample (s)", second, first, "s", "<= 10% of first, 0 nodes", ok)
        print(f"{'':<44} nodes executed on re-run: {len(executed)}; AUC {doc1['metrics']['Evaluate']['auc']:.4f}")
        return {"first_s": first, "rerun_s": second, "executed_on_rerun": executed}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
