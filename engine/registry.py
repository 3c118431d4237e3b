"""Node type discovery: entry points (`ledgerflow.nodes`) plus a plugins folder for frozen builds.

Built-in nodes register through the same entry point as third-party ones, so the engine knows no node by name.
A plugin that fails to import is logged and skipped; it never stops the engine or the app.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import sys
import types
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Iterable

from engine.sdk import Node

ENTRY_POINT_GROUP = "ledgerflow.nodes"
log = logging.getLogger("ledgerflow.registry")


@dataclass(frozen=True)
class Provenance:
    distribution: str
    version: str


class Registry:
    def __init__(self) -> None:
        self._types: dict[str, type[Node]] = {}
        self._legacy: dict[str, str] = {}
        self._provenance: dict[str, Provenance] = {}
        self.errors: list[str] = []

    def register(self, cls: type[Node], provenance: Provenance | None = None) -> None:
        if not cls.type_id:
            raise TypeError(f"{cls.__name__} is not declared with @node")
        existing = self._types.get(cls.type_id)
        if existing is not None and existing is not cls:
            raise ValueError(f"node type {cls.type_id!r} is registered twice ({existing.__module__} and {cls.__module__})")
        self._types[cls.type_id] = cls
        self._provenance[cls.type_id] = provenance or Provenance("unknown", "0")
        for old in cls.legacy_ids:
            self._legacy[old] = cls.type_id

    def get(self, type_id: str) -> type[Node] | None:
        """The node class for an id, following legacy ids of renamed nodes; None when unknown."""
        return self._types.get(type_id) or self._types.get(self._legacy.get(type_id, ""))

    def provenance(self, type_id: str) -> Provenance:
        return self._provenance.get(type_id, Provenance("unknown", "0"))

    def all(self) -> list[type[Node]]:
        return sorted(self._types.values(), key=lambda c: (c.category, c.type_id))

    def load_entry_point(self, ep: EntryPoint) -> None:
        try:
            classes = _node_classes(ep.load())
            dist = ep.dist
            prov = Provenance(dist.name if dist else ep.name, dist.version if dist else "0")
            for cls in classes:
                self.register(cls, prov)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop discovery
            msg = f"plugin entry point {ep.name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}"
            log.warning(msg)
            self.errors.append(msg)

    def load_folder(self, folder: Path) -> None:
        """Load every `*.py` in a plugins folder (frozen builds cannot install distributions)."""
        for path in sorted(Path(folder).glob("*.py")):
            try:
                name = f"ledgerflow_plugin_{path.stem}"
                spec = importlib.util.spec_from_file_location(name, path)
                assert spec and spec.loader
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module  # importable by name, so its node classes pickle to worker processes
                try:
                    spec.loader.exec_module(module)
                except BaseException:
                    sys.modules.pop(name, None)
                    raise
                for cls in _node_classes(module):
                    self.register(cls, Provenance(f"plugins/{path.name}", "0"))
            except Exception as exc:  # noqa: BLE001
                msg = f"plugin file {path} failed to load: {type(exc).__name__}: {exc}"
                log.warning(msg)
                self.errors.append(msg)

    @classmethod
    def discover(cls) -> "Registry":
        reg = cls()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            reg.load_entry_point(ep)
        folder = os.environ.get("LEDGERFLOW_PLUGIN_DIR")
        if folder and Path(folder).is_dir():
            reg.load_folder(Path(folder))
        return reg


def _node_classes(obj: object) -> Iterable[type[Node]]:
    """An entry point may name a module (its NODES list), a list of classes, or a callable returning one."""
    if isinstance(obj, types.ModuleType):
        obj = getattr(obj, "NODES", None)
        if obj is None:
            raise TypeError("module has no NODES list")
    elif callable(obj) and not isinstance(obj, type):
        obj = obj()
    if isinstance(obj, type):
        obj = [obj]
    classes = list(obj)  # type: ignore[arg-type]
    for c in classes:
        if not (isinstance(c, type) and issubclass(c, Node) and c.type_id):
            raise TypeError(f"{c!r} is not a node class declared with @node")
    return classes


_default: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry, discovered once."""
    global _default
    if _default is None:
        _default = Registry.discover()
    return _default
