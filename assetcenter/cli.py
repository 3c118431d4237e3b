"""`ledgerflow assetcenter …` (run an asset center) and `ledgerflow assets …` (use one).

The `assets` commands talk to a shared server when LEDGERFLOW_ASSETCENTER_URL and LEDGERFLOW_TOKEN are set
(LEDGERFLOW_ASSETCENTER_CA names a private certificate authority), and to the embedded store otherwise (`--home DIR`
or the default folder in the user's data directory), with the same output either way.

Exit codes: 0 ok; 1 refused (authentication, permission, maker-checker, not found) or a verification failure;
2 usage (bad arguments, a missing file, an inconsistent configuration); 130 interrupted.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.cli_common import positive_int, print_json
from engine.errors import LedgerflowError
from engine.i18n import tr

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
URL_ENV, TOKEN_ENV, CA_ENV, DB_ENV = ("LEDGERFLOW_ASSETCENTER_URL", "LEDGERFLOW_TOKEN", "LEDGERFLOW_ASSETCENTER_CA",
                                      "LEDGERFLOW_ASSETCENTER_DB")
STAGES = ("candidate", "validated", "production", "retired")


class UsageError(LedgerflowError):
    """A mistake in the command line or configuration: `ledgerflow` exits with 2 (engine.cli.main)."""


def _refusals_exit_1(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """The asset center's refusals and verification failures exit with 1; usage errors keep exit 2."""
    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except UsageError:
            raise
        except LedgerflowError as exc:
            print(tr("error: {msg}", msg=exc), file=sys.stderr)
            return EXIT_REFUSED
    return run


# ---- where the commands act -------------------------------------------------------------------------------------
def _home(args: argparse.Namespace) -> Path:
    from assetcenter.home import default_home

    return Path(args.home).expanduser() if args.home else default_home()


def _db_url(args: argparse.Namespace) -> str | None:
    return getattr(args, "db", None) or os.environ.get(DB_ENV) or None


def _open_center(args: argparse.Namespace, *, must_exist: bool = False) -> Any:
    from assetcenter.home import AssetHome
    from assetcenter.service import AssetCenter

    home = _home(args)
    db_url = _db_url(args)
    if must_exist and not db_url and not (home / "assetcenter.db").exists():
        raise UsageError(tr("There is no asset center at {home} (create one with 'ledgerflow assetcenter init "
                            "--home {home}')", home=home))
    return AssetCenter(AssetHome(home), db_url=db_url)


def _server() -> tuple[str, str, str | None] | None:
    """(url, token, ca_file) when a server is configured; None for the embedded store."""
    url = os.environ.get(URL_ENV, "").strip()
    if not url:
        return None
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise UsageError(tr("{url_env} is set, so the command talks to that server, but {token_env} is not: set it "
                            "to your token (or unset {url_env} to use the embedded store)", url_env=URL_ENV,
                            token_env=TOKEN_ENV))
    return url, token, os.environ.get(CA_ENV, "").strip() or None


def _assets(args: argparse.Namespace) -> Any:
    """An AssetClient for the configured server, else EmbeddedAssets on --home (same methods, same replies)."""
    server = _server()
    if server is not None:
        if args.home:
            raise UsageError(tr("--home picks an embedded store, but {url_env} points at a server; use one or the "
                                "other", url_env=URL_ENV))
        from assetcenter.client import AssetClient

        return AssetClient(*server)
    from assetcenter.local import EmbeddedAssets

    return EmbeddedAssets.open(_home(args))


def _ref(text: str) -> str:
    """"[project/]name[@version]" checked and made explicit ("default" project), or a usage error."""
    from assetcenter.client import split_ref

    try:
        project, name, number = split_ref(text)
    except LedgerflowError as exc:
        raise UsageError(str(exc)) from None
    return f"{project}/{name}" + (f"@{number}" if number is not None else "")


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


# ---- ledgerflow assetcenter … -----------------------------------------------------------------------------------
@_refusals_exit_1
def cmd_init(args: argparse.Namespace) -> int:
    from assetcenter.home import AssetHome
    from assetcenter.service import set_crypto_profile

    set_crypto_profile(AssetHome(_home(args)), args.crypto)
    center = _open_center(args)
    try:
        token = center.init()
    finally:
        center.close()
    if args.json:
        print_json({"home": str(center.home.root), "user": "admin", "token": token})
        return EXIT_OK
    print(tr("Asset center created at {home}; its first user is admin (admin on every project).",
             home=center.home.root))
    print(tr("One-time admin token (shown only this once; it expires in 24 hours and works once):"))
    print(f"  {token}")
    print(tr("Exchange it for a normal token now:"))
    print("  LEDGERFLOW_TOKEN=<" + tr("the token above") + "> ledgerflow assetcenter redeem" +
          (f" --home {args.home}" if args.home else ""))
    return EXIT_OK


@_refusals_exit_1
def cmd_redeem(args: argparse.Namespace) -> int:
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise UsageError(tr("Set {env} to the one-time token that 'ledgerflow assetcenter init' printed",
                            env=TOKEN_ENV))
    server = _server()
    if server is not None:
        from assetcenter.client import AssetClient

        with AssetClient(*server) as client:
            new, user = client.redeem(label=args.label), None
    else:
        center = _open_center(args, must_exist=True)
        try:
            principal, new = center.redeem(token, label=args.label)
            user = principal.name
        finally:
            center.close()
    if args.json:
        print_json({"user": user, "token": new})
        return EXIT_OK
    print(tr("New token (keep it secret; it is not shown again):"))
    print(f"  {new}")
    print(tr("Set {env} to it for later commands; the one-time token is now used up.", env=TOKEN_ENV))
    return EXIT_OK


@_refusals_exit_1
def cmd_verify(args: argparse.Namespace) -> int:
    center = _open_center(args, must_exist=True)
    try:
        problems = center.verify()
    finally:
        center.close()
    if args.json:
        print_json({"ok": not problems, "problems": problems})
    elif not problems:
        print(tr("ok"))
    if problems:
        print(tr("verify failed: {problem}", problem=problems[0]), file=sys.stderr)
        if len(problems) > 1:
            print(tr("{n} more problem(s):", n=len(problems) - 1), file=sys.stderr)
            for problem in problems[1:50]:
                print(f"  {problem}", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK


@_refusals_exit_1
def cmd_serve(args: argparse.Namespace) -> int:
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError(tr("TLS needs both --tls-cert and --tls-key"))
    for path in (args.tls_cert, args.tls_key):
        if path and not Path(path).is_file():
            raise UsageError(tr("{path} does not exist", path=path))
    from assetcenter.server import serve
    from assetcenter.service import MAX_UPLOAD_BYTES

    limit = args.max_upload_mb << 20 if args.max_upload_mb else MAX_UPLOAD_BYTES
    serve(_home(args), args.host, args.port, _db_url(args), Path(args.tls_cert) if args.tls_cert else None,
          Path(args.tls_key) if args.tls_key else None, limit)
    return EXIT_OK


# ---- ledgerflow assets … ----------------------------------------------------------------------------------------
@_refusals_exit_1
def cmd_publish(args: argparse.Namespace) -> int:
    from assetcenter.db import KINDS

    path = Path(args.path)
    if not path.is_file():
        raise UsageError(tr("{path} is not a file", path=path))
    if args.kind not in KINDS:
        raise UsageError(tr("Unknown asset kind {kind!r}; use one of {kinds}", kind=args.kind,
                            kinds=", ".join(KINDS)))
    with _assets(args) as assets:
        info = assets.publish(path, project=args.project, kind=args.kind, name=args.name,
                              description=args.description or "", tags=args.tag or (), sensitive=args.sensitive)
    if args.json:
        print_json(info)
    else:
        print(tr("Published {ref} ({size}, SHA-256 {sha}){stage}", ref=info["ref"], size=_size(info["size"]),
                 sha=info["content_sha256"][:16],
                 stage=tr(", stage {stage}", stage=info["stage"]) if info.get("stage") else ""))
    return EXIT_OK


@_refusals_exit_1
def cmd_list(args: argparse.Namespace) -> int:
    with _assets(args) as assets:
        page = assets.search(text=args.text, kind=args.kind, tag=args.tag, owner=args.owner, project=args.project,
                             stage=args.stage, latest_only=args.latest, page=args.page, per_page=args.per_page)
    if args.json:
        print_json(page)
        return EXIT_OK
    if not page["items"]:
        print(tr("No asset versions found."))
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table as RichTable

    view = RichTable(box=None, pad_edge=False, show_edge=False)
    for title in (tr("asset"), tr("kind"), tr("stage"), tr("size"), tr("owner"), tr("published"), tr("tags")):
        view.add_column(title, overflow="fold")
    for v in page["items"]:
        view.add_row(v["ref"], v["kind"], v.get("stage") or "", _size(v["size"]), v["owner"],
                     v["created_at"][:19].replace("T", " "), ", ".join(v.get("tags") or ()))
    Console(highlight=False, width=None if sys.stdout.isatty() else 200).print(view)
    pages = max(1, -(-page["total"] // page["per_page"]))
    print(tr("page {page} of {pages} ({total} versions)", page=page["page"], pages=pages, total=page["total"]))
    return EXIT_OK


@_refusals_exit_1
def cmd_get(args: argparse.Namespace) -> int:
    ref = _ref(args.ref)
    target = Path(args.output)
    if target.is_dir():
        raise UsageError(tr("{path} is a folder; -o names the file to write", path=target))
    if not target.parent.is_dir():
        raise UsageError(tr("The folder {path} does not exist", path=target.parent))
    with _assets(args) as assets:
        info = assets.fetch(ref, target)
    if args.json:
        print_json({**info, "path": str(target)})
    else:
        print(tr("Wrote {path}: {ref}, {size}, SHA-256 {sha} and signature (key {key}) verified", path=target,
                 ref=info["ref"], size=_size(info["size"]), sha=info["content_sha256"][:16],
                 key=info["signature"].get("key_id", "")))
    return EXIT_OK


@_refusals_exit_1
def cmd_promote(args: argparse.Namespace) -> int:
    ref = _ref(args.ref)
    with _assets(args) as assets:
        info = assets.promote(ref, args.to, args.comment)
    if args.json:
        print_json(info)
    else:
        print(tr("{ref} is now {stage}", ref=info["ref"], stage=info["stage"]))
    return EXIT_OK


@_refusals_exit_1
def cmd_history(args: argparse.Namespace) -> int:
    ref = _ref(args.ref)
    with _assets(args) as assets:
        events = assets.history(ref)
    if args.json:
        print_json(events)
        return EXIT_OK
    if not events:
        print(tr("No stage changes (only model packages have stages)."))
    for e in events:
        print(tr("{at}  version {version}: {before} → {after} by {who}: {comment}", at=e["at"][:19].replace("T", " "),
                 version=e["version"], before=e.get("from") or "—", after=e["to"], who=e["by"],
                 comment=e.get("comment") or ""))
    return EXIT_OK


# ---- parsers ------------------------------------------------------------------------------------------------------
def _home_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--home", metavar="DIR", help=tr("the asset center's folder (default: the embedded store in "
                                                    "your Ledgerflow data folder)"))


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL", help=tr("database URL, e.g. postgresql+psycopg://user@host/db (default: "
                                                  "SQLite in the home folder; or set {env}, which keeps a password "
                                                  "out of the process list)", env=DB_ENV))


def add_parsers(sub: argparse._SubParsersAction) -> None:
    ac = sub.add_parser("assetcenter", help=tr("create, serve and verify an asset center"))
    acs = ac.add_subparsers(dest="assetcenter_command", required=True)

    p = acs.add_parser("init", help=tr("create the store and its first admin; prints a one-time token"))
    _home_arg(p)
    _db_arg(p)
    p.add_argument("--crypto", choices=("standard", "gm"), default="standard",
                   help=tr("standard: Ed25519 signatures, AES-256-GCM encryption; gm: the 国密 suite, SM2 signatures "
                           "and SM4 encryption (fixed for the life of the center)"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_init)

    p = acs.add_parser("serve", help=tr("serve the asset center over HTTP(S) for a team"))
    _home_arg(p)
    p.add_argument("--host", default="127.0.0.1", help=tr("address to listen on (default 127.0.0.1)"))
    p.add_argument("--port", type=positive_int, default=8765, help=tr("port (default 8765)"))
    _db_arg(p)
    p.add_argument("--tls-cert", metavar="FILE", help=tr("PEM certificate chain: serve HTTPS"))
    p.add_argument("--tls-key", metavar="FILE", help=tr("PEM private key of the certificate"))
    p.add_argument("--max-upload-mb", type=positive_int, metavar="N", help=tr("largest version accepted, in MiB"))
    p.set_defaults(func=cmd_serve)

    p = acs.add_parser("verify", help=tr("check the audit chain, every signature and every blob hash"))
    _home_arg(p)
    _db_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)

    p = acs.add_parser("redeem", help=tr("exchange the one-time token in {env} for a normal token",
                                         env=TOKEN_ENV))
    _home_arg(p)
    _db_arg(p)
    p.add_argument("--label", default="cli", help=tr("a note stored with the new token"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_redeem)

    assets = sub.add_parser("assets", help=tr("publish, find and download shared assets (a server when {url} "
                                              "and {token} are set, else the embedded store)", url=URL_ENV,
                                              token=TOKEN_ENV))
    asub = assets.add_subparsers(dest="assets_command", required=True)

    p = asub.add_parser("publish", help=tr("publish a file as a new immutable version"))
    p.add_argument("path", help=tr("the file to publish"))
    p.add_argument("--kind", required=True, help=tr("dataset, feature_view, model_package, workflow, plugin or "
                                                    "report"))
    p.add_argument("--name", required=True, help=tr("the asset's name"))
    p.add_argument("--project", default="default", help=tr("the project (default: default)"))
    p.add_argument("--tag", action="append", metavar="T", help=tr("a label (repeatable)"))
    p.add_argument("--description", metavar="D")
    p.add_argument("--sensitive", action="store_true", help=tr("encrypt at rest; downloads need the sensitive-read "
                                                               "permission and are audited"))
    p.add_argument("--json", action="store_true")
    _home_arg(p)
    p.set_defaults(func=cmd_publish)

    p = asub.add_parser("list", help=tr("search asset versions, newest first"))
    p.add_argument("--text", help=tr("part of the name"))
    p.add_argument("--kind")
    p.add_argument("--tag")
    p.add_argument("--owner")
    p.add_argument("--project")
    p.add_argument("--stage", choices=STAGES)
    p.add_argument("--latest", action="store_true", help=tr("only each asset's latest version"))
    p.add_argument("--page", type=positive_int, default=1)
    p.add_argument("--per-page", type=positive_int, default=50)
    p.add_argument("--json", action="store_true")
    _home_arg(p)
    p.set_defaults(func=cmd_list)

    p = asub.add_parser("get", help=tr("download a version, verified (signature and SHA-256) before it is written"))
    p.add_argument("ref", metavar="[PROJECT/]NAME[@VERSION]", help=tr("the latest version when none is given"))
    p.add_argument("-o", "--output", required=True, metavar="PATH", help=tr("the file to write"))
    p.add_argument("--json", action="store_true")
    _home_arg(p)
    p.set_defaults(func=cmd_get)

    p = asub.add_parser("promote", help=tr("move a model version to another stage (maker-checker applies)"))
    p.add_argument("ref", metavar="[PROJECT/]NAME[@VERSION]")
    p.add_argument("--to", required=True, choices=STAGES[1:])
    p.add_argument("--comment", required=True, help=tr("why (kept in the history and the audit log)"))
    p.add_argument("--json", action="store_true")
    _home_arg(p)
    p.set_defaults(func=cmd_promote)

    p = asub.add_parser("history", help=tr("the stage changes of an asset's versions"))
    p.add_argument("ref", metavar="[PROJECT/]NAME[@VERSION]")
    p.add_argument("--json", action="store_true")
    _home_arg(p)
    p.set_defaults(func=cmd_history)
