"""`ledgerflow experiments`: list, compare and mark training runs from a terminal.

Validators review models where the workbench is not installed; the commands read the same run records and candidate
history (engine/experiments.py) as the app's Experiments view.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.cli_common import print_json
from engine.errors import LedgerflowError
from engine.experiments import (ExperimentRun, Experiments, MetricCondition, RunFilter, key_metrics,
                                open_experiments)
from engine.i18n import N_, tr



@contextlib.contextmanager
def _opened(path: str) -> Iterator[Experiments]:
    """A project's experiments, its database closed again when the command is done with them."""
    from engine.project import Project

    experiments, engine = open_experiments(Project.load(Path(path).expanduser()))
    try:
        yield experiments
    finally:
        engine.dispose()


def _filter(args: argparse.Namespace) -> RunFilter:
    return RunFilter(node=args.node, type_id=args.type, user=args.user, since=args.since, until=args.until,
                     outcome=args.outcome, metrics=[MetricCondition.parse(m) for m in args.metric or []],
                     text=args.text, candidates_only=args.candidates)


def cmd_list(args: argparse.Namespace) -> int:
    flt = _filter(args)
    runs: list[tuple[str, ExperimentRun]] = []
    for path in args.project or ["."]:
        with _opened(path) as experiments:
            runs.extend((path, r) for r in experiments.runs(flt))
    runs.sort(key=lambda pr: pr[1].started_at, reverse=True)
    if args.limit:
        runs = runs[: args.limit]
    if args.json:
        print_json({"runs": [{**r.to_json(), "project_path": str(Path(p).expanduser().resolve())} for p, r in runs]})
        return 0
    if not runs:
        print(tr("No training runs match."))
        return 0
    from rich.console import Console
    from rich.table import Table as RichTable

    table = RichTable(box=None, pad_edge=False, show_edge=False)
    columns = [N_("id"), N_("node"), N_("model"), N_("key metrics"), N_("outcome"), N_("user"), N_("when (UTC)")]
    many = len(args.project or []) > 1
    if many:
        columns.insert(0, N_("project"))
    for col in columns:
        table.add_column(tr(col), no_wrap=col != N_("key metrics"))
    for _path, r in runs:
        star = "★ " if r.candidate else ""
        metrics = "  ".join(f"{k} {v:.4f}" for k, v in key_metrics(r))
        row = [f"{star}{r.id}", r.node_title, r.model_name, metrics, r.outcome, r.user, r.started_at[:19]]
        table.add_row(*([r.project] if many else []), *row)
    Console(highlight=False, width=None if sys.stdout.isatty() else 250).print(table)
    return 0


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def cmd_compare(args: argparse.Namespace) -> int:
    if len(args.runs) < 2:
        raise LedgerflowError(tr("Give at least two run ids to compare (`ledgerflow experiments list` shows them)"))
    with _opened(args.project) as experiments:
        cmp = experiments.compare(args.runs)
    if args.json:
        print_json(cmp.to_json())
        return 0
    from rich.console import Console
    from rich.table import Table as RichTable

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 250)
    heads = [f"{'★ ' if r.candidate else ''}{r.id} {r.node_title} {r.model_name}".strip() for r in cmp.runs]
    sections = [(N_("Metrics"), [(n, v) for n, v in cmp.metrics]),
                (N_("Settings that differ"), [(p.name, p.values) for p in cmp.param_diff]),
                (N_("Input data that differs"), [(p.name, p.values) for p in cmp.data if p.differs]),
                (N_("Package versions that differ"), [(p.name, p.values) for p in cmp.packages])]
    for title, rows in sections:
        console.print(f"[bold]{tr(title)}[/bold]")
        if not rows:
            console.print("  " + tr("(none)"))
            continue
        table = RichTable(box=None, pad_edge=False, show_edge=False)
        table.add_column("")
        for head in heads:
            table.add_column(head, justify="right")
        for name, values in rows:
            table.add_row(name, *(_cell(v) for v in values))
        console.print(table)
    return 0


def cmd_candidate(args: argparse.Namespace) -> int:
    with _opened(args.project) as experiments:
        if args.unmark:
            event = experiments.unmark_candidate(args.run, note=args.note or "")
        else:
            event = experiments.mark_candidate(args.run, note=args.note or "", replace=args.replace)
        run = experiments.get(args.run)
    if args.json:
        print_json({"event": event.__dict__, "run": run.to_json()})
    elif args.unmark:
        print(tr("Run {id} of {node!r} is no longer the candidate (by {user} at {at})", id=run.id,
                 node=run.node_title, user=event.user, at=event.at))
    else:
        print(tr("Run {id} of {node!r} ({model}) is now the candidate (by {user} at {at})", id=run.id,
                 node=run.node_title, model=run.model_name, user=event.user, at=event.at))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    with _opened(args.project) as experiments:
        events = experiments.history(args.node)
    if args.json:
        print_json({"events": [e.__dict__ for e in events]})
        return 0
    if not events:
        print(tr("No candidate has been marked yet."))
    for e in events:
        verb = tr("marked") if e.action == "mark" else tr("unmarked")
        note = f"  {e.note}" if e.note else ""
        print(f"{e.at[:19]}  {e.user}@{e.host}  {verb} {e.record_id} ({e.node_id[:8]}){note}")
    return 0


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(tr("must be a whole number, 0 or more (got {value!r})", value=text))
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("experiments", help=tr("training runs: list, compare, mark the candidate"))
    esub = e.add_subparsers(dest="experiments_command", required=True)
    project = argparse.ArgumentParser(add_help=False)
    project.add_argument("-p", "--project", default=".", metavar="DIR",
                         help=tr("project folder or project.lflow file (default: the current folder)"))
    project.add_argument("--json", action="store_true")

    ls = esub.add_parser("list", help=tr("list training runs, newest first"))
    ls.add_argument("-p", "--project", action="append", metavar="DIR",
                    help=tr("project folder or project.lflow file; repeat to list several (default: the current "
                            "folder)"))
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--node", help=tr("training node title or id"))
    ls.add_argument("--type", metavar="TYPE_ID", help=tr("node type, e.g. automl.autogluon"))
    ls.add_argument("--user", help=tr("who ran it"))
    ls.add_argument("--since", metavar="DATE", help=tr("started on or after, e.g. 2024-05-01 (UTC)"))
    ls.add_argument("--until", metavar="DATE", help=tr("started on or before, e.g. 2024-05-31 (UTC)"))
    ls.add_argument("--outcome", choices=["done", "failed", "cancelled", "skipped"])
    ls.add_argument("--metric", action="append", metavar="COND",
                    help=tr("metric condition such as auc>=0.75 or Evaluate.ks>0.3; repeat for several"))
    ls.add_argument("--text", help=tr("text to find in node, model, user, settings or error"))
    ls.add_argument("--candidates", action="store_true", help=tr("only the current candidates"))
    ls.add_argument("--limit", type=_limit, default=0, help=tr("show at most this many runs (0: all)"))
    ls.set_defaults(func=cmd_list)

    cp = esub.add_parser("compare", parents=[project], help=tr("compare runs side by side: metrics, differing "
                                                               "settings, data and packages"))
    cp.add_argument("runs", nargs="+", metavar="RUN", help=tr("two or more run ids from `experiments list`"))
    cp.set_defaults(func=cmd_compare)

    cd = esub.add_parser("candidate", parents=[project], help=tr("mark a run as its node's candidate (audited)"))
    cd.add_argument("run", metavar="RUN")
    cd.add_argument("--note", help=tr("why this run (kept in the history)"))
    g = cd.add_mutually_exclusive_group()
    g.add_argument("--replace", action="store_true", help=tr("replace the node's current candidate"))
    g.add_argument("--unmark", action="store_true", help=tr("withdraw this run's candidate mark"))
    cd.set_defaults(func=cmd_candidate)

    hs = esub.add_parser("history", parents=[project], help=tr("every candidate mark and unmark, oldest first"))
    hs.add_argument("--node", help=tr("only this training node (id)"))
    hs.set_defaults(func=cmd_history)
