"""`ledgerflow experiments list|compare|candidate|history` on a project with real training and evaluation runs.

The project is run in this process with the test training node of tests/engine/test_experiments.py; the commands
then read it like a terminal user would (the project loads with the installed node types only, as in the field).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import pytest

from engine import cli_experiments
from engine.cli import EXIT_INVALID, build_parser
from engine.errors import LedgerflowError
from engine.i18n import tr
from test_experiments import build_project


def lf(*argv: str) -> int:
    """The `ledgerflow` entry point's parser and error handling, with `experiments` added if cli.py lacks it."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "experiments" not in sub.choices:
        cli_experiments.add_parser(sub)
    args = parser.parse_args(list(argv))
    try:
        return int(args.func(args))
    except LedgerflowError as exc:
        print(tr("error: {msg}", msg=exc), file=sys.stderr)
        return EXIT_INVALID


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli") / "proj"
    return folder, build_project(folder)


@pytest.fixture
def project(built, tmp_path):
    folder = tmp_path / "proj"
    shutil.copytree(built[0], folder, ignore=shutil.ignore_patterns("tmp"))
    return str(folder), built[1]


def _json(capsys, *argv: str) -> dict:
    assert lf(*argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_list_as_json_and_text(project, capsys):
    path, ids = project
    runs = _json(capsys, "experiments", "list", "--project", path, "--json")["runs"]
    assert [r["id"] for r in runs] == [ids["weak"], ids["good"]]  # newest first; the failed run's node type is
    assert runs[1]["model_name"] == "Logit C=1" and runs[1]["settings"]["C"] == 1.0  # not installed here
    evaluations = {e["node_title"]: e for e in runs[1]["evaluations"]}
    assert runs[1]["metrics"]["Evaluate.auc"] > 0.6 and evaluations["Evaluate"]["curves"]["roc"]["fpr"][0] == 0.0
    assert runs[1]["project"] == "Experiments test" and runs[1]["project_path"] == str(Path(path).resolve())
    assert lf("experiments", "list", "-p", path) == 0
    text = capsys.readouterr().out
    assert "Logit C=0.0005" in text and ".auc 0.7" in text and str(ids["good"]) in text
    best = max(r["metrics"]["Evaluate.auc"] for r in runs)
    filtered = _json(capsys, "experiments", "list", "-p", path, "--json", "--metric", f"Evaluate.auc>={best}",
                     "--outcome", "done", "--since", "2000-01-01")["runs"]
    assert [r["id"] for r in filtered] == [ids["good"]]
    assert _json(capsys, "experiments", "list", "-p", path, "-p", path, "--json", "--limit", "3")["runs"][2]["id"] \
        == ids["good"]  # two projects' runs together (the same one twice here), newest first
    assert lf("experiments", "list", "-p", path, "--text", "no such thing") == 0
    assert "No training runs match" in capsys.readouterr().out


def test_compare(project, capsys):
    path, ids = project
    doc = _json(capsys, "experiments", "compare", str(ids["good"]), str(ids["weak"]), "-p", path, "--json")
    assert doc["parameters"] == {"C": [1.0, 0.0005]}
    assert len(doc["metrics"]["Evaluate.ks"]) == 2 and doc["data"] == {}
    assert lf("experiments", "compare", str(ids["good"]), str(ids["weak"]), "-p", path) == 0
    text = capsys.readouterr().out
    assert "Settings that differ" in text and "0.0005" in text and "Evaluate.auc" in text


def test_candidate_mark_replace_unmark_and_history(project, capsys):
    path, ids = project
    assert lf("experiments", "candidate", str(ids["good"]), "--note", "best on test", "-p", path) == 0
    assert "is now the candidate" in capsys.readouterr().out
    assert lf("experiments", "candidate", str(ids["weak"]), "-p", path) == EXIT_INVALID
    assert f"Run {ids['good']} is the candidate of 'Logit'" in capsys.readouterr().err
    doc = _json(capsys, "experiments", "candidate", str(ids["weak"]), "--replace", "-p", path, "--json")
    assert doc["run"]["candidate"] and doc["event"]["action"] == "mark"
    runs = _json(capsys, "experiments", "list", "-p", path, "--json", "--candidates")["runs"]
    assert [r["id"] for r in runs] == [ids["weak"]]
    assert lf("experiments", "candidate", str(ids["weak"]), "--unmark", "--note", "revoked", "-p", path) == 0
    assert "no longer the candidate" in capsys.readouterr().out
    events = _json(capsys, "experiments", "history", "-p", path, "--json")["events"]
    assert [(e["action"], e["record_id"], e["note"]) for e in events] == [
        ("mark", ids["good"], "best on test"), ("mark", ids["weak"], ""), ("unmark", ids["weak"], "revoked")]


def test_errors_are_messages(project, capsys):
    path, ids = project
    assert lf("experiments", "compare", str(ids["good"]), "424242", "-p", path) == EXIT_INVALID
    err = capsys.readouterr().err
    assert "No training run with id 424242" in err and "experiments list" in err
    assert lf("experiments", "candidate", "abc", "-p", path) == EXIT_INVALID
    assert "'abc' is not a run id" in capsys.readouterr().err
    assert lf("experiments", "compare", str(ids["good"]), "-p", path) == EXIT_INVALID
    assert "at least two" in capsys.readouterr().err
    assert lf("experiments", "list", "-p", path, "--metric", "auc high") == EXIT_INVALID
    assert "auc>=0.7" in capsys.readouterr().err
    assert lf("experiments", "list", "-p", str(Path(path) / "missing")) == EXIT_INVALID
    assert "missing" in capsys.readouterr().err
