"""The AutoML node against AutoGluon called directly: same data, settings and seed, so the same leaderboard, at no
more than 1.05x the wall time.

Each side trains in a fresh process, in turn and three times (ABABAB), so neither gets a warm cache or a quieter machine;
the figures are the medians. The node is timed as a run does it (`run_node`: settings validation, polars to
pandas, the log bridge, the leaderboard as a table) with its extra output, permutation feature importance, off:
it is work AutoGluon's `fit` does not do. A third row times the node with it on, for scale.

Run: `PYTHONPATH=. .venv/bin/python -m bench.automl_wrapper`.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import report

SETTINGS = {"label": "default", "problem_type": "binary", "eval_metric": "roc_auc", "time_limit_s": 60,
            "presets": "medium_quality", "included_model_types": ["GBM", "CAT", "XT", "RF"]}
SEED = 42


def _train(kind: str, folder: str, out: mp.Queue) -> None:  # runs in a fresh process
    import polars as pl

    from engine.templates import SAMPLE_DATA

    table = pl.read_csv(SAMPLE_DATA, try_parse_dates=True)
    from autogluon.tabular import TabularPredictor  # both sides start with AutoGluon imported (about 3 s)

    if kind == "direct":
        t0 = time.perf_counter()
        predictor = TabularPredictor(label=SETTINGS["label"], problem_type="binary", eval_metric="roc_auc",
                                     path=folder, verbosity=0, learner_kwargs={"random_state": SEED})
        predictor.fit(table.to_pandas(), time_limit=SETTINGS["time_limit_s"], presets=SETTINGS["presets"],
                      included_model_types=SETTINGS["included_model_types"])
        board = predictor.leaderboard(silent=True)
        seconds = time.perf_counter() - t0
        rows = list(zip(board["model"], board["score_val"]))
    else:
        from engine.testing import run_node
        from nodes.automl.train import AutoML

        t0 = time.perf_counter()
        result = run_node(AutoML, {"train": table}, {**SETTINGS, "feature_importance": kind == "node+fi"},
                          seed=SEED, workdir=Path(folder))
        seconds = time.perf_counter() - t0
        board = result["leaderboard"]
        rows = list(zip(board["model"].to_list(), board["score_val"].to_list()))
    out.put(json.dumps({"s": seconds, "board": rows}))


def measure(kind: str) -> dict:
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    with tempfile.TemporaryDirectory(prefix="lf-bench-automl-") as folder:
        proc = ctx.Process(target=_train, args=(kind, folder, queue))
        proc.start()
        result = json.loads(queue.get(timeout=1800))
        proc.join()
    return result


def main() -> dict:
    runs: dict[str, list[dict]] = {"node": [], "direct": []}
    for _ in range(3):
        for kind in ("node", "direct"):
            runs[kind].append(measure(kind))
    with_fi = measure("node+fi")
    node_s = statistics.median(r["s"] for r in runs["node"])
    direct_s = statistics.median(r["s"] for r in runs["direct"])
    # same models in the same order; the validation scores may differ in the last bits when time limits cut a
    # model short, so the check is on names and on scores to 1e-9
    same = all(
        [m for m, _ in a["board"]] == [m for m, _ in b["board"]]
        and all(abs(x - y) <= 1e-9 for (_, x), (_, y) in zip(a["board"], b["board"], strict=True))
        for a, b in zip(runs["node"], runs["direct"], strict=True))
    report("AutoML node vs AutoGluon direct (s)", node_s, direct_s, "s", "<= 1.05x", node_s <= 1.05 * direct_s)
    report("  the same leaderboard (models, scores)", float(same), 1.0, "", "identical", same)
    report("  node with feature importance on (s)", with_fi["s"], direct_s, "s", "(for scale)", True)
    print(f"{'':<44} {len(runs['node'][0]['board'])} models; times {[round(r['s'], 1) for r in runs['node']]} "
          f"vs {[round(r['s'], 1) for r in runs['direct']]}", flush=True)
    return {"node_s": node_s, "direct_s": direct_s, "same_leaderboard": same, "node_fi_s": with_fi["s"]}


if __name__ == "__main__":
    main()
