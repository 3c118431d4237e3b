"""`ledgerflow features`: look at a feature store from a terminal (what views exist, one entity's online values).

Admins and validators check what a model will be fed without opening the workbench; the commands use the same
`FeatureStore` API as the nodes and as Python callers.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.errors import LedgerflowError
from engine.i18n import tr


def _store(args: argparse.Namespace):  # noqa: ANN202 - engine.featurestore.FeatureStore
    from engine.featurestore import FeatureStore

    root = Path(args.store).expanduser() if args.store else FeatureStore.default_root()
    return FeatureStore(root, online=args.online or None)


def cmd_views(args: argparse.Namespace) -> int:
    with _store(args) as fs:
        views = fs.views()
    if args.json:
        print(json.dumps([{"name": v.name, "entity": v.entity, "timestamp": v.timestamp, "features": list(v.features),
                           "dtypes": v.dtypes, "ttl_days": v.ttl_days, "version": v.version,
                           "description": v.description, "lineage": v.lineage} for v in views],
                         ensure_ascii=False, indent=2, default=str))
        return 0
    if not views:
        print(tr("No feature views registered yet."))
    for v in views:
        print(tr("{name} (v{version}): entity {entity}, time {ts}, {n} features: {features}", name=v.name,
                 version=v.version, entity=v.entity, ts=v.timestamp, n=len(v.features),
                 features=", ".join(v.features)))
    return 0


def _entity(text: str) -> tuple[str, object]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise LedgerflowError(tr("--entity takes COLUMN=VALUE, e.g. customer_id=C0000001 (got {value!r})", value=text))
    try:
        return name, int(value)
    except ValueError:
        return name, value


def cmd_online(args: argparse.Namespace) -> int:
    rows = [dict(_entity(e) for e in args.entity)]
    with _store(args) as fs:
        result = fs.online_features(args.features, rows)[0]
    if args.json:
        print(json.dumps(result, ensure_ascii=False, default=str))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    f = sub.add_parser("features", help=tr("inspect the feature store: views and online values"))
    fsub = f.add_subparsers(dest="features_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", metavar="DIR", help=tr("feature store folder (default: LEDGERFLOW_FEATURE_STORE "
                                                          "or the per-user folder)"))
    common.add_argument("--online", metavar="URL", help=tr("online store: empty for SQLite, or redis://host:port/db "
                                                           "(password from LEDGERFLOW_REDIS_PASSWORD)"))
    common.add_argument("--json", action="store_true")
    v = fsub.add_parser("views", parents=[common], help=tr("list the registered feature views"))
    v.set_defaults(func=cmd_views)
    o = fsub.add_parser("online", parents=[common], help=tr("the latest materialized values for one entity"))
    o.add_argument("features", nargs="+", metavar="VIEW[:FEATURE]")
    o.add_argument("--entity", action="append", required=True, metavar="COLUMN=VALUE")
    o.set_defaults(func=cmd_online)
