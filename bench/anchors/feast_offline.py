"""Anchor for bench/featurestore.py, run with the anchors' own environment (`make bench-anchors`): Feast's offline
point-in-time join (`get_historical_features`, local provider, FileSource Parquet offline store) on the Parquet files
the benchmark wrote. Prints one JSON line: the join's seconds and its row count. The joined values of the sampled
entity rows go to SAMPLE_OUT and the row ids Feast returned to feast_row_ids.parquet beside it, so the benchmark can
compare them with ours.

Usage: feast_offline.py DATA_DIR REPO_DIR SAMPLE_OUT
DATA_DIR holds meta.json ({"views": {name: [feature, ...]}, "entity", "timestamp", "ttl_days"}), one Parquet file
per view, entity_df.parquet (row_id, entity, timestamp) and sample_ids.json ({"order": a permutation of the
row ids, "size": how many returned rows to write back}).
"""
import json
import sys
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
from feast import Entity, FeatureStore, FeatureView, Field, FileSource
from feast.types import Float64
from feast.value_type import ValueType

YAML = """project: ledgerflow_bench
registry: {repo}/registry.db
provider: local
online_store:
  type: sqlite
  path: {repo}/online.db
offline_store:
  type: file
entity_key_serialization_version: 3
"""


def load_meta(data_dir: Path) -> dict:
    return json.loads((data_dir / "meta.json").read_text())


def open_store(data_dir: Path, repo_dir: Path) -> tuple[FeatureStore, dict]:
    """Writes feature_store.yaml and applies one Entity plus one FeatureView per Parquet file (idempotent)."""
    meta = load_meta(data_dir)
    repo_dir.mkdir(parents=True, exist_ok=True)
    (repo_dir / "feature_store.yaml").write_text(YAML.format(repo=repo_dir.resolve()))
    store = FeatureStore(repo_path=str(repo_dir))
    entity = Entity(name="customer", join_keys=[meta["entity"]], value_type=ValueType.INT64)
    views = []
    for name, features in meta["views"].items():
        source = FileSource(name=f"{name}_source", path=str((data_dir / f"{name}.parquet").resolve()),
                            timestamp_field=meta["timestamp"])
        views.append(FeatureView(name=name, entities=[entity], ttl=timedelta(days=meta["ttl_days"]),
                                 schema=[Field(name=f, dtype=Float64) for f in features], source=source,
                                 online=True))
    store.apply([entity, *views])
    return store, meta


def feature_refs(meta: dict) -> list[str]:
    return [f"{name}:{f}" for name, features in meta["views"].items() for f in features]


def main() -> None:
    data_dir, repo_dir, sample_out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    store, meta = open_store(data_dir, repo_dir)
    entity_df = pd.read_parquet(data_dir / "entity_df.parquet")
    refs = feature_refs(meta)
    t0 = time.perf_counter()
    joined = store.get_historical_features(entity_df=entity_df, features=refs).to_df()
    seconds = time.perf_counter() - t0
    # The sample: the first `sample_size` row ids of a seeded permutation that Feast returned (it drops some rows).
    sample = json.loads((data_dir / "sample_ids.json").read_text())
    returned = set(joined["row_id"].tolist())
    wanted = [r for r in sample["order"] if r in returned][: sample["size"]]
    picked = joined[joined["row_id"].isin(set(wanted))].copy()
    picked[meta["timestamp"]] = pd.to_datetime(picked[meta["timestamp"]], utc=True)
    picked.to_parquet(sample_out, index=False)
    joined[["row_id"]].to_parquet(sample_out.with_name("feast_row_ids.parquet"), index=False)
    print(json.dumps({"s": seconds, "rows": len(joined)}))


if __name__ == "__main__":
    main()
