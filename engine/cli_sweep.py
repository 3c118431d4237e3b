"""`ledgerflow sweep`: run part of a project over a parameter grid and/or several datasets, into one table.

Exit codes as `ledgerflow run`: 0 every member succeeded; 1 a member failed or the sweep was cancelled; 2 the
project, the spec or the command is invalid; 130 interrupted with Ctrl-C.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any

from engine.cli_common import ctrl_c_cancels, positive_int, print_json
from engine.errors import LedgerflowError
from engine.i18n import tr

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 130


HEADLINE = ("auc", "ks", "gini", "rmse", "r2", "accuracy")  # shown first in progress lines


def _member_line(m: Any, primary: str | None) -> str:
    params = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in m.params.items())
    where = " ".join(p for p in (params, f"[{m.dataset}]" if m.dataset else "") if p)
    line = f"{m.member_id} {m.status:<9} {where}"
    if m.metrics:
        order = (primary, *HEADLINE)
        shown = sorted(m.metrics.items(), key=lambda kv: (order.index(kv[0][1]) if kv[0][1] in order else 99, kv[0]))
        line += "  " + " ".join(f"{name}={value:.4g}" for (_, name), value in shown[:4])
    if m.error:
        line += "\n      └ " + m.error.splitlines()[0][:200]
    return line


def _print_table(table: Any) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable

    view = RichTable(box=None, pad_edge=False, show_edge=False)
    for name in table.columns:
        view.add_column(name, no_wrap=name != "error", overflow="fold")
    for row in table.iter_rows():
        view.add_row(*("" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v) for v in row))
    Console(highlight=False, width=None if sys.stdout.isatty() else 250).print(view)


def cmd_sweep(args: argparse.Namespace) -> int:
    from engine.project import Project
    from engine.sweep import Sweep, SweepSpec, table_path

    if args.executor == "dask" and not args.scheduler:
        raise LedgerflowError(tr("--executor dask needs --scheduler tcp://host:port"))
    if args.executor == "local" and args.scheduler:
        raise LedgerflowError(tr("--scheduler sends work to Dask; leave out --executor local"))
    if args.out:
        table_path(args.out)
    project = Project.load(args.project)
    spec = SweepSpec.load(args.spec)
    if args.max_parallel:
        spec = SweepSpec.model_validate({**spec.model_dump(), "max_parallel": args.max_parallel})  # same limits
    quiet = args.quiet

    def on_member(m: Any) -> None:
        if not quiet:
            sys.stderr.write(_member_line(m, spec.primary_metric) + "\n")
            sys.stderr.flush()

    sweep = Sweep(project, spec, scheduler_address=args.scheduler, on_member=on_member)
    if not quiet:
        sys.stderr.write(tr("Sweep {id}: {n} members, {k} at a time", id=sweep.sweep_id[:8],
                            n=len(sweep.plan.members), k=spec.max_parallel) + "\n")
    # stdout carries only the table or the JSON document
    with ctrl_c_cancels(sweep.cancel) as interrupted, contextlib.redirect_stdout(sys.stderr):
        result = sweep.run()
    out = str(result.write(args.out)) if args.out else None
    if args.json:
        print_json({"project": str(project.path), "sweep_id": result.sweep_id, "ok": result.ok,
                    "cancelled": result.cancelled, "out": out, "members": result.table.to_dicts()})
    else:
        _print_table(result.table)
        if out:
            print(tr("Table written to {path}", path=out))
    if interrupted.is_set():
        return EXIT_INTERRUPTED
    return EXIT_OK if result.ok else EXIT_FAILED


def add_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("sweep", help=tr("run part of a project over a parameter grid and/or several datasets, "
                                        "concurrently, into one comparison table"))
    s.add_argument("project", help=tr("project folder or project.lflow file"))
    s.add_argument("--spec", required=True, metavar="SWEEP.json",
                   help=tr("JSON: {\"grid\": {\"<node>.<setting>\": [values]}, \"datasets\": {...}, "
                           "\"metrics_from\": [nodes], \"primary_metric\": \"auc\", \"max_parallel\": 2}"))
    s.add_argument("--executor", choices=("local", "dask"), default=None,
                   help=tr("where heavy nodes run: local worker processes (default) or Dask (needs --scheduler)"))
    s.add_argument("--scheduler", metavar="ADDR", help=tr("send heavy nodes to a Dask scheduler, e.g. tcp://host:8786"))
    s.add_argument("--max-parallel", type=positive_int, metavar="N", help=tr("members run at once (overrides the spec)"))
    s.add_argument("--out", metavar="TABLE.csv", help=tr("also write the table, as .csv or .parquet (atomically)"))
    s.add_argument("--json", action="store_true", help=tr("print one JSON document with the table's rows"))
    s.add_argument("-q", "--quiet", action="store_true", help=tr("no progress output"))
    s.set_defaults(func=cmd_sweep)
