"""The node SDK: how a node type declares its ports, settings and pure compute function.

A node type is one class. Its `compute(inputs, settings, ctx)` must be pure and picklable (no globals, no GUI), so
the same code runs in-process, in a worker process or on a Dask worker. See ARCHITECTURE.md §2.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict

from engine.errors import Cancelled
from engine.ports import PortType

_TYPE_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


class NodeSettings(BaseModel):
    """Base for every node's settings model: unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


@dataclass(frozen=True)
class PortSpec:
    name: str
    type: type[PortType]
    required: bool = True
    description: str = ""


def _as_port(name: str, spec: type[PortType] | PortSpec) -> PortSpec:
    if isinstance(spec, PortSpec):
        return spec
    if isinstance(spec, type) and issubclass(spec, PortType):
        return PortSpec(name=name, type=spec)
    raise TypeError(f"port {name!r} must be a PortType subclass or PortSpec, got {spec!r}")


def resolve_project_path(path: str | Path, project_dir: Path | None) -> Path:
    """A settings path, relative to the project folder when not absolute (so projects can be moved)."""
    p = Path(path).expanduser()
    if not p.is_absolute() and project_dir is not None:
        p = project_dir / p
    return p


class Context:
    """What compute may use besides its inputs: progress, cancellation, a logger, a seeded RNG, resources.

    Built by the executor on the side that runs the node; the callbacks route events back to the scheduler.
    """

    def __init__(
        self,
        *,
        node_id: str,
        title: str,
        seed: int,
        workdir: Path,
        project_dir: Path | None = None,
        resources: Mapping[str, float] | None = None,
        on_progress: Callable[[float | None, str], None] | None = None,
        on_log: Callable[[int, str], None] | None = None,
        is_cancelled: Callable[[], bool] | None = None,
        lineage: Mapping[str, Any] | None = None,
    ) -> None:
        self.node_id = node_id
        self.title = title
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self._workdir = Path(workdir)
        self.project_dir = Path(project_dir) if project_dir else None
        self.resources = dict(resources or {})
        self._on_progress = on_progress
        self._is_cancelled = is_cancelled
        self.log = NodeLogger(title, on_log)
        # Where this execution's inputs came from, for models and packages to carry (empty outside a run):
        # {"run_id", "node_id", "inputs": {port: {"digest", "node_id", "run_id" (the run that produced it)}}}.
        # Digests are content hashes, so storing them keeps an artifact reproducible; run ids are not.
        self.lineage: dict[str, Any] = dict(lineage or {})

    @property
    def workdir(self) -> Path:
        """A private scratch folder for files the node produces (a model folder); created on first use."""
        self._workdir.mkdir(parents=True, exist_ok=True)
        return self._workdir

    def progress(self, fraction: float | None, message: str = "") -> None:
        """Report progress in [0, 1] (None when unknown) and an optional short message."""
        if fraction is not None:
            fraction = min(1.0, max(0.0, float(fraction)))
        if self._on_progress:
            self._on_progress(fraction, message)

    def cancelled(self) -> bool:
        return bool(self._is_cancelled and self._is_cancelled())

    def check_cancelled(self) -> None:
        """Raise Cancelled if the user cancelled; call it between chunks of long work."""
        if self.cancelled():
            raise Cancelled(f"node {self.title!r} was cancelled")

    def resolve_path(self, path: str | Path) -> Path:
        return resolve_project_path(path, self.project_dir)


class NodeLogger:
    """A logger for one node execution: messages go to the run's per-node log and to Python logging.

    Not a `logging.Logger`, because those are process-global and would leak handlers across runs.
    """

    def __init__(self, title: str, sink: Callable[[int, str], None] | None) -> None:
        self._sink = sink
        self._py = logging.getLogger("ledgerflow.node")
        self._title = title

    def log(self, level: int, msg: str, *args: Any) -> None:
        text = msg % args if args else msg
        self._py.log(level, "[%s] %s", self._title, text)
        if self._sink is not None:
            try:
                self._sink(level, text)
            except Exception:  # a log sink must never break the node
                pass

    def debug(self, msg: str, *args: Any) -> None:
        self.log(logging.DEBUG, msg, *args)

    def info(self, msg: str, *args: Any) -> None:
        self.log(logging.INFO, msg, *args)

    def warning(self, msg: str, *args: Any) -> None:
        self.log(logging.WARNING, msg, *args)

    def error(self, msg: str, *args: Any) -> None:
        self.log(logging.ERROR, msg, *args)


class Node:
    """Base class of node types. Declare with the `@node` decorator; override `compute`."""

    type_id: ClassVar[str] = ""
    version: ClassVar[int] = 1
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    category: ClassVar[str] = "Other"
    icon: ClassVar[str] = ""
    heavy: ClassVar[bool] = False
    gpu: ClassVar[bool] = False
    legacy_ids: ClassVar[tuple[str, ...]] = ()
    inputs: ClassVar[dict[str, Any]] = {}
    outputs: ClassVar[dict[str, Any]] = {}
    input_ports: ClassVar[dict[str, PortSpec]] = {}
    output_ports: ClassVar[dict[str, PortSpec]] = {}

    class Settings(NodeSettings):
        pass

    def compute(self, inputs: dict[str, Any], settings: Any, ctx: Context) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def migrate(cls, settings: dict, from_version: int) -> dict:
        """Upgrade settings saved by an older version of this node type. Default: unchanged."""
        return settings

    @classmethod
    def fingerprint(cls, settings: Any, ctx: "FingerprintContext") -> str | None:
        """Source nodes return a hash of the data they read (file content), so the cache sees data changes."""
        return None

    @classmethod
    def receipt(cls, settings: Any, ctx: "FingerprintContext") -> str | None:
        """Nodes with side effects (writers) return a hash of what they wrote; a mismatch means re-run."""
        return None

    @classmethod
    def scrub_settings(cls, settings: dict[str, Any]) -> dict[str, Any]:
        """Take secrets out of settings before the graph stores them (and so before any project file is written):
        e.g. a password pasted inside a database URL. Default: unchanged."""
        return settings

    @classmethod
    def preview(cls, settings: Any, ctx: Context, rows: int) -> Any | None:
        """Source nodes: the first `rows` rows as `compute` would read them (types and overrides applied), read
        cheaply, so the app can show the schema before anything runs. None: this node type has no preview."""
        return None

    @classmethod
    def has_preview(cls) -> bool:
        return cls.preview.__func__ is not Node.preview.__func__  # type: ignore[attr-defined]

    @classmethod
    def resources(cls) -> dict[str, float]:
        """Dask worker resources this node needs; GPU nodes only go to workers that declare GPU."""
        return {"GPU": 1} if cls.gpu else {}


@dataclass
class FingerprintContext:
    project_dir: Path | None
    files: Any  # engine.fileio.FileFingerprints

    def resolve_path(self, path: str | Path) -> Path:
        return resolve_project_path(path, self.project_dir)


def node(
    type_id: str,
    *,
    version: int = 1,
    title: str,
    category: str,
    heavy: bool = False,
    gpu: bool = False,
    legacy_ids: tuple[str, ...] = (),
    icon: str = "",
) -> Callable[[type[Node]], type[Node]]:
    """Declare a node type. Validates the declaration at import time so a bad plugin fails fast and clearly."""
    if not _TYPE_ID.match(type_id):
        raise ValueError(f"node type id {type_id!r} must look like 'category.name' (lowercase, dotted)")

    def wrap(cls: type[Node]) -> type[Node]:
        if not issubclass(cls, Node):
            raise TypeError(f"{cls.__name__} must subclass engine.sdk.Node")
        if not (isinstance(cls.Settings, type) and issubclass(cls.Settings, BaseModel)):
            raise TypeError(f"{cls.__name__}.Settings must be a pydantic model")
        if version < 1:
            raise ValueError(f"{type_id}: version must be >= 1")
        cls.type_id = type_id
        cls.version = version
        cls.title = title
        cls.category = category
        cls.heavy = heavy or gpu
        cls.gpu = gpu
        cls.legacy_ids = tuple(legacy_ids)
        cls.icon = icon
        doc = (cls.__doc__ or "").strip()
        cls.description = doc.splitlines()[0] if doc else ""
        cls.input_ports = {n: _as_port(n, s) for n, s in cls.inputs.items()}
        cls.output_ports = {n: _as_port(n, s) for n, s in cls.outputs.items()}
        return cls

    return wrap
