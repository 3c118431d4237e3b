"""Anchor for bench/featurestore.py, run with the anchors' own environment: Feast's Python SDK online lookup
(`get_online_features`, SQLite online store) at batch size 1, after `materialize`. Prints one JSON line: materialize
seconds and the p50/p99 lookup latency in microseconds; the looked-up values go to a JSON file for the benchmark's
correctness check.

Usage: feast_online.py DATA_DIR REPO_DIR VALUES_OUT
DATA_DIR holds what feast_offline.py reads plus lookups.json ({"ids": [...], "warmup": n, "features": [refs]}).
"""
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from feast_offline import open_store


def main() -> None:
    data_dir, repo_dir, values_out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    store, meta = open_store(data_dir, repo_dir)
    lookups = json.loads((data_dir / "lookups.json").read_text())
    key, refs, warmup = meta["entity"], lookups["features"], lookups["warmup"]
    end = datetime.now(UTC) + timedelta(days=1)
    t0 = time.perf_counter()
    store.materialize(start_date=end - timedelta(days=meta["ttl_days"]), end_date=end)
    materialize_s = time.perf_counter() - t0
    ids = lookups["ids"]
    for cid in ids[:warmup]:
        store.get_online_features(features=refs, entity_rows=[{key: cid}]).to_dict()
    times, values = [], []
    for cid in ids[warmup:]:
        t0 = time.perf_counter()
        row = store.get_online_features(features=refs, entity_rows=[{key: cid}]).to_dict()
        times.append(time.perf_counter() - t0)
        values.append({k: v[0] for k, v in row.items()})
    values_out.write_text(json.dumps(values))
    q = statistics.quantiles(times, n=100, method="inclusive")
    print(json.dumps({"materialize_s": materialize_s, "p50_us": statistics.median(times) * 1e6,
                      "p99_us": q[98] * 1e6, "n": len(times)}))


if __name__ == "__main__":
    main()
