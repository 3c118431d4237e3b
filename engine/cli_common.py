"""What every `ledgerflow` subcommand shares: one JSON document on stdout, Ctrl-C cancelling the running work, and
argument types."""
from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from engine.i18n import tr


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1, with a translated message otherwise."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(tr("must be a whole number of at least 1 (got {value!r})", value=text))
    return value


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


@contextlib.contextmanager
def ctrl_c_cancels(cancel: Callable[[], None]) -> Iterator[threading.Event]:
    """The first Ctrl-C cancels the running work (nodes stop, records are kept) and says so; a second one
    interrupts at once. Yields the event that tells afterwards whether Ctrl-C was pressed. Signal handlers can only
    be set on the main thread: elsewhere (tests calling a command) Ctrl-C keeps Python's default behaviour."""
    interrupted = threading.Event()

    def on_sigint(signum: int, frame: Any) -> None:
        interrupted.set()
        sys.stderr.write("\n" + tr("Cancelling… (press Ctrl-C again to force)") + "\n")
        signal.signal(signal.SIGINT, signal.default_int_handler)
        cancel()

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if main_thread else None
    try:
        yield interrupted
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
