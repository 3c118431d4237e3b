"""The project file: JSON with a format version, sorted keys, stable order and atomic writes (ARCHITECTURE §6).

A project is a folder holding `project.lflow` (the workflow) and `.ledgerflow/` (artifacts, cache index, run log).
Loading never modifies the file on disk; a broken file is reported with its position.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.errors import ProjectFileError
from engine.fileio import atomic_write_text
from engine.graph import Edge, Graph, NodeInstance
from engine.i18n import tr
from engine.registry import Registry, default_registry

FORMAT_VERSION = 1
PROJECT_FILE = "project.lflow"
STATE_DIR = ".ledgerflow"


class _PluginDoc(BaseModel):
    model_config = ConfigDict(extra="allow")
    distribution: str = "unknown"
    version: str = "0"


class _NodeDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1)
    type_id: str = Field(min_length=1)
    type_version: int = Field(ge=1)
    title: str
    settings: dict[str, Any] = Field(default_factory=dict)
    position: tuple[float, float] = (0.0, 0.0)
    disabled: bool = False
    plugin: _PluginDoc = Field(default_factory=_PluginDoc)


class _PortRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    node: str
    port: str


class _EdgeDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    src: _PortRef = Field(alias="from")
    dst: _PortRef = Field(alias="to")


class _ProjectDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format_version: int
    name: str = "Untitled"
    seed: int = 42
    nodes: list[_NodeDoc] = Field(default_factory=list)
    edges: list[_EdgeDoc] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)


def project_file(path: Path | str) -> Path:
    """Accept a project folder or its project.lflow file."""
    p = Path(path).expanduser()
    return p / PROJECT_FILE if p.is_dir() or p.suffix != ".lflow" else p


class Project:
    def __init__(self, path: Path, graph: Graph, *, name: str = "Untitled", seed: int = 42,
                 meta: dict[str, Any] | None = None) -> None:
        self.path = Path(path).resolve()
        self.graph = graph
        self.name = name
        self.seed = seed
        self.meta = meta or {}

    @property
    def directory(self) -> Path:
        return self.path.parent

    @property
    def state_dir(self) -> Path:
        return self.directory / STATE_DIR

    @classmethod
    def new(cls, directory: Path | str, name: str, registry: Registry | None = None, seed: int = 42) -> "Project":
        return cls(project_file(Path(directory)), Graph(registry or default_registry()), name=name, seed=seed)

    # ---- load ----------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path | str, registry: Registry | None = None) -> "Project":
        registry = registry or default_registry()
        file = project_file(path)
        if not file.exists():
            raise ProjectFileError(tr("No project at {path}: {file} does not exist", path=path, file=file))
        raw = file.read_bytes()
        if not raw.strip():
            raise ProjectFileError(tr("{file} is empty; it is not a Ledgerflow project", file=file))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProjectFileError(tr("{file} is not UTF-8 text (bad byte at offset {pos})", file=file,
                                      pos=exc.start)) from None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProjectFileError(tr(
                "{file} is not valid JSON at line {line}, column {col}: {msg}. The file may be truncated or "
                "corrupt; it was left unchanged. Restore it from a backup or version control.",
                file=file, line=exc.lineno, col=exc.colno, msg=exc.msg)) from None
        if not isinstance(doc, dict) or "format_version" not in doc:
            raise ProjectFileError(tr("{file} has no 'format_version'; it is not a Ledgerflow project", file=file))
        version = doc["format_version"]
        if not isinstance(version, int):
            raise ProjectFileError(tr("{file}: 'format_version' must be an integer", file=file))
        if version > FORMAT_VERSION:
            raise ProjectFileError(tr(
                "{file} uses project format {found}, but this Ledgerflow reads format {supported} or older. "
                "Upgrade Ledgerflow to open it.", file=file, found=version, supported=FORMAT_VERSION))
        try:
            parsed = _ProjectDoc.model_validate(doc)
        except ValidationError as exc:
            lines = [f"  {_json_path(e['loc'])}: {e['msg']}" for e in exc.errors()]
            raise ProjectFileError(tr("{file} has an invalid structure:", file=file) + "\n" + "\n".join(lines)) from None
        graph = Graph(registry)
        seen: set[str] = set()
        for i, nd in enumerate(parsed.nodes):
            if nd.id in seen:
                raise ProjectFileError(tr("{file}: nodes[{i}] repeats node id {id}", file=file, i=i, id=nd.id))
            seen.add(nd.id)
            graph.insert_node(_node_from_doc(nd, doc["nodes"][i], registry))
        for i, ed in enumerate(parsed.edges):
            for end, ref in (("from", ed.src), ("to", ed.dst)):
                if ref.node not in seen:
                    raise ProjectFileError(tr("{file}: edges[{i}].{end} names node {id}, which is not in the project",
                                              file=file, i=i, end=end, id=ref.node))
            # Loaded as-is: type mismatches and cycles are reported by validate(), not lost.
            graph.add_edge(Edge(ed.src.node, ed.src.port, ed.dst.node, ed.dst.port), check=False)
        return cls(file, graph, name=parsed.name, seed=parsed.seed, meta=parsed.meta)

    # ---- save ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        nodes = []
        for inst in sorted(self.graph.nodes.values(), key=lambda n: n.id):
            if inst.is_placeholder and inst.raw is not None:
                nodes.append(_placeholder_doc(inst))
                continue
            prov = self.graph.registry.provenance(inst.type_id)  # the plugin that provides the type now
            inst.plugin = {"distribution": prov.distribution, "version": prov.version}
            nodes.append({
                "id": inst.id, "type_id": inst.type_id, "type_version": inst.type_version, "title": inst.title,
                "settings": inst.settings, "position": list(inst.position), "disabled": inst.disabled,
                "plugin": inst.plugin,
            })
        edges = [{"from": {"node": e.src, "port": e.src_port}, "to": {"node": e.dst, "port": e.dst_port}}
                 for e in sorted(self.graph.edges)]
        return {"format_version": FORMAT_VERSION, "name": self.name, "seed": self.seed, "nodes": nodes,
                "edges": edges, "meta": self.meta}

    def to_json(self) -> str:
        """The project document as written to disk: sorted keys, so diffs of two versions read well."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"

    def save(self, path: Path | str | None = None) -> Path:
        """Write atomically (temp file, then rename)."""
        target = project_file(path) if path else self.path
        atomic_write_text(target, self.to_json())
        self.path = target.resolve()
        return target


def _node_from_doc(nd: _NodeDoc, raw: dict[str, Any], registry: Registry) -> NodeInstance:
    cls = registry.get(nd.type_id)
    inst = NodeInstance(id=nd.id, type_id=nd.type_id, type_version=nd.type_version, title=nd.title,
                        settings=nd.settings, position=nd.position, disabled=nd.disabled,
                        plugin=nd.plugin.model_dump(), raw=copy.deepcopy(raw))
    if cls is None:
        inst.placeholder_reason = tr(
            "Node type {type_id!r} is not installed (it comes from {dist} {ver}). Install that plugin to run this "
            "node; its settings and connections are kept.", type_id=nd.type_id, dist=nd.plugin.distribution,
            ver=nd.plugin.version)
    elif nd.type_version > cls.version:
        inst.placeholder_reason = tr(
            "Node {title!r} was saved by version {saved} of {type_id!r}, newer than the installed version {have}. "
            "Upgrade {dist} to run it; its settings are kept.", title=nd.title, saved=nd.type_version,
            type_id=cls.type_id, have=cls.version, dist=nd.plugin.distribution)
    else:
        if nd.type_version < cls.version:
            try:
                inst.settings = cls.migrate(dict(nd.settings), nd.type_version)
            except Exception as exc:  # noqa: BLE001 - a plugin's migration bug must not stop the project opening
                inst.settings = nd.settings
                inst.placeholder_reason = tr(
                    "Settings of {title!r} could not be migrated from version {old} to {new} of {type_id!r} "
                    "({exc}); the node is kept unchanged.", title=nd.title, old=nd.type_version, new=cls.version,
                    type_id=cls.type_id, exc=exc)
                return inst
            inst.type_version = cls.version
        inst.type_id = cls.type_id  # a legacy id becomes the current one
    return inst


def _placeholder_doc(inst: NodeInstance) -> dict[str, Any]:
    """A placeholder is written back exactly as it was read, except what the user changed on the canvas."""
    raw = copy.deepcopy(inst.raw or {})
    if inst.title != raw.get("title"):
        raw["title"] = inst.title
    if [float(v) for v in raw.get("position", (0.0, 0.0))] != list(inst.position):
        raw["position"] = list(inst.position)
    if inst.disabled != raw.get("disabled", False):
        raw["disabled"] = inst.disabled
    if inst.settings != raw.get("settings", {}):
        raw["settings"] = inst.settings
    return raw


def _json_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"
