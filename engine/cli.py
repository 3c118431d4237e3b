"""The `ledgerflow` command: run, validate and inspect projects without the GUI.

Exit codes: 0 success; 1 a node failed or the run was cancelled; 2 the project or the command is invalid;
130 interrupted with Ctrl-C.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

from engine.cli_common import ctrl_c_cancels, print_json
from engine.errors import LedgerflowError
from engine.i18n import SUPPORTED_LANGUAGES, N_, set_language, tr

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 130


# ---- run -----------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from engine.cli_progress import ProgressView
    from engine.project import Project
    from engine.scheduler import Session, ValidationFailed

    project = Project.load(args.project)
    session = Session(project, scheduler_address=args.scheduler)
    view = ProgressView(project.graph, quiet=args.quiet)
    try:
        # stdout carries only the JSON document
        with ctrl_c_cancels(session.cancel) as interrupted, view, contextlib.redirect_stdout(sys.stderr):
            report = session.run(until=args.until, only=args.only)
        session_metrics = _evaluation_metrics(session, report)
    except ValidationFailed as exc:
        sys.stderr.write(str(exc) + "\n")
        return EXIT_INVALID
    finally:
        session.close()
    if args.json:
        print_json({
            "project": str(project.path), "run_id": report.run_id, "ok": report.ok, "cancelled": report.cancelled,
            "nodes": [{"id": r.node_id, "title": r.title, "type": r.type_id, "status": r.status, "cached": r.cached,
                       "duration_s": None if r.duration_s is None else round(r.duration_s, 4), "error": r.error}
                      for r in report.nodes.values()],
            "metrics": session_metrics,
        })
    else:
        view.summary(report, session_metrics, project)
    if interrupted.is_set():
        return EXIT_INTERRUPTED
    return EXIT_OK if report.ok else EXIT_FAILED


def _evaluation_metrics(session: Any, report: Any) -> dict[str, Any]:
    """Metrics of every evaluation and export report the run produced or found cached, keyed by node title
    (an export's include its parity figure `max_abs_diff` and the `package` path)."""
    from engine.ports import ReportPort

    metrics: dict[str, Any] = {}
    for nid, res in report.nodes.items():
        cls = session.graph.node_class(nid)
        if cls is None or res.status != "done":
            continue
        for port, spec in cls.output_ports.items():
            if spec.type is not ReportPort:
                continue
            try:
                rep = session.output(nid, port)
            except LedgerflowError as exc:  # changed on disk since the run: say so, keep the rest
                sys.stderr.write(tr("warning: {err}", err=exc) + "\n")
                continue
            if rep.kind in ("evaluation", "export"):
                metrics[res.title] = rep.metrics
    return metrics


# ---- validate / nodes / runs / new ---------------------------------------------------------------
def cmd_validate(args: argparse.Namespace) -> int:
    from engine.project import Project

    project = Project.load(args.project)
    issues = project.graph.validate()
    if args.json:
        print_json({"project": str(project.path), "valid": not issues,
                     "issues": [{"node_id": i.node_id, "node": i.node_title, "field": i.field, "code": i.code,
                                 "message": i.message} for i in issues]})
    elif issues:
        print(tr("{n} problem(s) in {path}:", n=len(issues), path=project.path))
        for i in issues:
            print(f"  - {i}")
    else:
        print(tr("{path}: valid ({n} nodes)", path=project.path, n=len(project.graph.nodes)))
    return EXIT_FAILED if issues else EXIT_OK


def cmd_nodes(args: argparse.Namespace) -> int:
    from engine.registry import default_registry

    from engine.graph import default_settings

    reg = default_registry()
    docs = []
    for cls in reg.all():
        prov = reg.provenance(cls.type_id)
        docs.append({
            "type_id": cls.type_id, "version": cls.version, "title": tr(cls.title), "category": tr(cls.category),
            "description": tr(cls.description), "heavy": cls.heavy, "gpu": cls.gpu,
            "legacy_ids": list(cls.legacy_ids), "plugin": {"distribution": prov.distribution, "version": prov.version},
            "inputs": {n: p.type.type_name for n, p in cls.input_ports.items()},
            "outputs": {n: p.type.type_name for n, p in cls.output_ports.items()},
            "settings": cls.Settings.model_json_schema(), "defaults": default_settings(cls),
        })
    if args.json:
        print_json({"nodes": docs, "plugin_errors": reg.errors})
        return EXIT_OK
    for d in docs:
        flags = " ".join(f for f, on in (("heavy", d["heavy"]), ("gpu", d["gpu"])) if on)
        print(f"{d['type_id']}  v{d['version']}  {d['title']}  [{d['category']}] {flags}".rstrip())
        print(f"    {d['description']}")
        ins = ", ".join(f"{n}: {t}" for n, t in d["inputs"].items()) or "-"
        outs = ", ".join(f"{n}: {t}" for n, t in d["outputs"].items()) or "-"
        print(f"    {tr('inputs')}: {ins}    {tr('outputs')}: {outs}")
        props = d["settings"].get("properties", {})
        required = set(d["settings"].get("required", []))
        for name, schema in props.items():
            default = "" if name in required else f" = {json.dumps(d['defaults'].get(name), ensure_ascii=False)}"
            kind = schema.get("type") or "/".join(str(x.get("type", x.get("$ref", "?"))) for x in schema.get("anyOf", []))
            if "enum" in schema:
                kind = "|".join(map(str, schema["enum"]))
            print(f"      {name}{'*' if name in required else ''}: {kind}{default}")
    for err in reg.errors:
        print(tr("warning: {err}", err=err), file=sys.stderr)
    return EXIT_OK


def cmd_runs(args: argparse.Namespace) -> int:
    from engine.db import open_db
    from engine.project import Project
    from engine.runlog import RunLog

    project = Project.load(args.project)
    engine = open_db(project.state_dir)
    try:
        records = RunLog(engine).records(limit=args.limit)
    finally:
        engine.dispose()
    if args.json:
        print_json({"project": str(project.path), "records": records})
        return EXIT_OK
    if not records:
        print(tr("No runs recorded yet for {path}", path=project.path))
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table as RichTable

    table = RichTable(box=None, pad_edge=False, show_edge=False)  # rich measures CJK text widths correctly
    for col, justify in ((N_("when (UTC)"), "left"), (N_("node"), "left"), (N_("type"), "left"),
                         (N_("outcome"), "left"), (N_("seconds"), "right"), (N_("user@host"), "left"),
                         (N_("run"), "left")):
        table.add_column(tr(col), justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for r in records:
        table.add_row(r["started_at"][:23], r["node_title"], r["type_id"], r["outcome"], f"{r['duration_s']:.2f}",
                      f"{r['user']}@{r['host']}", r["run_id"][:8])
        if r["error"]:
            table.add_row("", f"└ {r['error'].splitlines()[0][:100]}", "", "", "", "", "")
    Console(highlight=False, width=None if sys.stdout.isatty() else 250).print(table)
    return EXIT_OK


def cmd_new(args: argparse.Namespace) -> int:
    from engine.templates import create_project

    project = create_project(Path(args.directory), args.template, Path(args.data) if args.data else None,
                             args.label, name=args.name, time_limit_s=args.time_limit)
    print(tr("Created {path} from template {tpl!r} ({n} nodes). Run it with: ledgerflow run {dir}",
             path=project.path, tpl=args.template, n=len(project.graph.nodes), dir=project.directory))
    return EXIT_OK


def cmd_sample_data(args: argparse.Namespace) -> int:
    from resources.sampledata.credit import main as sample_main

    return sample_main(args.rest)


def cmd_profile(args: argparse.Namespace) -> int:
    """Profile a data file without building a workflow: the Profile node's analysis on the reader's output."""
    from engine.executors.base import run_inline
    from engine.fileio import atomic_write_text
    from nodes.explore.profile import ProfileSettings, build_report, profile_table
    from nodes.io.csv_reader import ReadCSV
    from nodes.io.excel_reader import ReadExcel
    from nodes.io.parquet_reader import ReadParquet

    path = Path(args.file).expanduser().resolve()
    suffix = path.suffix.lower()
    reader = (ReadParquet if suffix == ".parquet" or path.is_dir() else
              ReadExcel if suffix in (".xlsx", ".xlsm", ".xls", ".ods") else ReadCSV)
    loaded = run_inline(reader, {}, {"path": str(path)})
    if loaded.error is not None:
        raise LedgerflowError(loaded.error)
    assert loaded.outputs is not None
    settings = ProfileSettings(target=args.target)
    result = profile_table(loaded.outputs["table"], settings)
    if args.html:
        atomic_write_text(Path(args.html), build_report(result).to_html())
    if args.json:
        print_json(result.to_json())
        return EXIT_OK
    print(tr("{path}: {rows:,} rows × {cols} columns{sampled}", path=path, rows=result.rows, cols=result.columns,
             sampled=tr(" (statistics on a sample of {n:,} rows)", n=result.profiled_rows) if result.sampled else ""))
    for alert in result.alerts:
        marker = f" [{alert.sensitivity}]" if alert.sensitivity else ""
        print(f"  {alert.kind:<17}{marker} {alert.message}")
    if not result.alerts:
        print("  " + tr("no data-quality alerts"))
    if result.target_stats:
        print(tr("Strongest predictors of {target} (information value):", target=args.target))
        for t in result.target_stats[:10]:
            print(f"  {t.column:<30} IV {t.iv:7.3f}   AUC {t.auc if t.auc is not None else float('nan'):.3f}")
    if args.html:
        print(tr("Report written to {path}", path=args.html))
    return EXIT_OK


def cmd_gui(args: argparse.Namespace) -> int:
    from app.main import run_gui  # Qt is imported only here, never by the engine itself

    return run_gui(args.project, lang=args.lang, run=args.run, screenshot=args.screenshot)


def cmd_label(args: argparse.Namespace) -> int:
    from app.labeling import run_labeling  # Qt is imported only here, never by the engine itself

    return run_labeling(args.project, task=args.task, lang=args.lang, labeler=args.labeler,
                        screenshot=args.screenshot, review=args.review)


# ---- entry point ---------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ledgerflow", description=tr("Ledgerflow: low-code ML workflows for banks"))
    p.add_argument("--lang", choices=SUPPORTED_LANGUAGES, help=tr("language of messages"))
    p.add_argument("-v", "--verbose", action="store_true", help=tr("log engine details to stderr"))
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help=tr("run a project (only nodes whose inputs changed are recomputed)"))
    r.add_argument("project", help=tr("project folder or project.lflow file"))
    g = r.add_mutually_exclusive_group()
    g.add_argument("--until", metavar="NODE", help=tr("run this node and everything it needs (title or id)"))
    g.add_argument("--only", metavar="NODE", help=tr("run just this node; its inputs must have results"))
    r.add_argument("--scheduler", metavar="ADDR", help=tr("send heavy nodes to a Dask scheduler, e.g. tcp://host:8786"))
    r.add_argument("--json", action="store_true", help=tr("print one JSON document with per-node results and metrics"))
    r.add_argument("-q", "--quiet", action="store_true", help=tr("no progress output"))
    r.set_defaults(func=cmd_run)

    v = sub.add_parser("validate", help=tr("check a project for cycles, missing inputs and bad settings"))
    v.add_argument("project")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=cmd_validate)

    n = sub.add_parser("nodes", help=tr("list node types with their ports and settings"))
    n.add_argument("--json", action="store_true")
    n.set_defaults(func=cmd_nodes)

    rs = sub.add_parser("runs", help=tr("list the run records of a project"))
    rs.add_argument("project")
    rs.add_argument("--limit", type=int, default=50)
    rs.add_argument("--json", action="store_true")
    rs.set_defaults(func=cmd_runs)

    nw = sub.add_parser("new", help=tr("create a project from a template"))
    nw.add_argument("directory")
    nw.add_argument("--template", default="credit-risk")
    nw.add_argument("--data", metavar="FILE", help=tr("your CSV or Parquet file (default: bundled sample data)"))
    nw.add_argument("--label", metavar="COLUMN", help=tr("the column to predict"))
    nw.add_argument("--name", help=tr("project name"))
    nw.add_argument("--time-limit", type=int, default=60, help=tr("AutoML time budget in seconds"))
    nw.set_defaults(func=cmd_new)

    pf = sub.add_parser("profile", help=tr("profile a CSV, Excel or Parquet file: statistics and data-quality alerts"))
    pf.add_argument("file", help=tr("CSV, Excel (first sheet) or Parquet file, or a folder of Parquet files"))
    pf.add_argument("--target", metavar="COLUMN", help=tr("binary outcome column: adds IV, AUC and event rates"))
    pf.add_argument("--html", metavar="OUT.html", help=tr("also write the report as one self-contained HTML page"))
    pf.add_argument("--json", action="store_true", help=tr("print per-column statistics and alerts as JSON"))
    pf.set_defaults(func=cmd_profile)

    from engine import cli_features

    cli_features.add_parser(sub)
    from engine import cli_experiments, cli_sweep

    cli_experiments.add_parser(sub)
    cli_sweep.add_parser(sub)
    from assetcenter import cli as assetcenter_cli

    assetcenter_cli.add_parsers(sub)

    gui = sub.add_parser("gui", help=tr("open the workbench window"))
    gui.add_argument("project", nargs="?", help=tr("project folder or project.lflow file to open"))
    gui.add_argument("--lang", choices=SUPPORTED_LANGUAGES, default=argparse.SUPPRESS,
                     help=tr("window language (saved choice otherwise); also accepted before 'gui'"))
    gui.add_argument("--run", action="store_true", help=tr("run the project once the window is up"))
    gui.add_argument("--screenshot", metavar="FILE.png",
                     help=tr("save a PNG of the window once it is idle (after the run, with --run) and exit"))
    gui.set_defaults(func=cmd_gui)

    lb = sub.add_parser("label", help=tr("open the labeling window: label records, texts and images"))
    lb.add_argument("project", nargs="?", help=tr("project folder or project.lflow file (default: this folder)"))
    lb.add_argument("--task", metavar="NAME", help=tr("open this labeling task directly"))
    lb.add_argument("--lang", choices=SUPPORTED_LANGUAGES, default=argparse.SUPPRESS,
                    help=tr("window language (saved choice otherwise); also accepted before 'label'"))
    lb.add_argument("--labeler", metavar="NAME", help=tr("who is labeling (default: your login name)"))
    lb.add_argument("--review", action="store_true",
                    help=tr("open the review page of the task (--task, else the first with labels waiting); you "
                            "review as --labeler or your login name, never your own labels"))
    lb.add_argument("--screenshot", metavar="FILE.png",
                    help=tr("save a PNG of the window with the first item shown and exit"))
    lb.set_defaults(func=cmd_label)

    sd = sub.add_parser("sample-data", help=tr("generate synthetic credit data (see resources/sampledata)"),
                        add_help=False)
    sd.add_argument("rest", nargs=argparse.REMAINDER)
    sd.set_defaults(func=cmd_sample_data)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    for i, arg in enumerate(argv):  # the language must be set before the help texts are built
        lang = arg.split("=", 1)[1] if arg.startswith("--lang=") else (argv[i + 1] if arg == "--lang" and
                                                                       i + 1 < len(argv) else None)
        if lang in SUPPORTED_LANGUAGES:
            set_language(lang)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except LedgerflowError as exc:
        print(tr("error: {msg}", msg=exc), file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print(tr("interrupted"), file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
