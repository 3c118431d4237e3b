"""Port types: what flows along an edge, how it is stored, and which ports may connect.

Port types form a small class hierarchy. An input accepts an output whose type is the same or a subtype, so
`Data` (the root) accepts anything. Each type knows how to persist its values in the artifact store in a safe,
native format (Parquet for tables, JSON + PNG for reports, the library's own format for models): never pickle.
"""
from __future__ import annotations

import base64
import html
import io
import json
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from engine.fileio import atomic_write_text
from engine.i18n import tr


class PortType:
    """Base of all port types. Subclass to add one; register nothing: the class is the type."""

    type_name: ClassVar[str] = "Data"
    color: ClassVar[str] = "#9e9e9e"
    description: ClassVar[str] = "Any value"
    python_type: ClassVar[type | None] = None  # what compute must return for this port (None: anything)

    @classmethod
    def accepts(cls, produced: type["PortType"]) -> bool:
        """True when an output of type `produced` may feed an input of this type."""
        return issubclass(produced, cls)

    @classmethod
    def check(cls, value: Any) -> None:
        """Raise TypeError when a compute returned something this port cannot carry."""
        if cls.python_type is not None and not isinstance(value, cls.python_type):
            raise TypeError(f"expected a {cls.python_type.__name__}, got {type(value).__name__}")

    @classmethod
    def save(cls, value: Any, folder: Path) -> None:
        raise NotImplementedError(f"{cls.type_name} values cannot be stored")

    @classmethod
    def load(cls, folder: Path) -> Any:
        raise NotImplementedError(f"{cls.type_name} values cannot be loaded")

    # Values cross to another host (Dask) as plain payloads; the default is the value itself.
    @classmethod
    def to_transport(cls, value: Any) -> Any:
        return value

    @classmethod
    def from_transport(cls, payload: Any, workdir: Path) -> Any:
        return payload


Data = PortType


class Table(PortType):
    type_name = "Table"
    color = "#1e88e5"
    description = "A polars DataFrame"
    python_type = pl.DataFrame

    @classmethod
    def save(cls, value: pl.DataFrame, folder: Path) -> None:
        import pyarrow.parquet as pq

        # pyarrow's writer (zero-copy from polars) costs half of polars' own for the small tables of a long chain
        pq.write_table(value.to_arrow(), folder / "table.parquet", compression="zstd")

    @classmethod
    def load(cls, folder: Path) -> pl.DataFrame:
        return pl.read_parquet(folder / "table.parquet")


@dataclass(frozen=True)
class ModelRef:
    """A fitted model stored in its library's native format in a folder.

    `flavor` names the library (e.g. "autogluon"); `info` carries JSON metadata such as the label and problem type.
    Native formats may execute code when loaded, which is why the artifact store verifies the folder's content hash
    before anyone opens it.
    """

    flavor: str
    path: Path
    info: dict = field(default_factory=dict)


class Model(PortType):
    type_name = "Model"
    color = "#8e24aa"
    description = "A fitted model in its native format"
    python_type = ModelRef

    @classmethod
    def check(cls, value: Any) -> None:
        super().check(value)
        if not Path(value.path).exists():
            raise TypeError(f"model folder {value.path} does not exist")

    @classmethod
    def save(cls, value: ModelRef, folder: Path) -> None:
        src = Path(value.path)
        if src.is_dir():
            shutil.copytree(src, folder / "model")
        else:
            (folder / "model").mkdir()
            shutil.copy2(src, folder / "model" / src.name)
        (folder / "model.json").write_text(json.dumps({"flavor": value.flavor, "info": value.info}, sort_keys=True))

    @classmethod
    def load(cls, folder: Path) -> ModelRef:
        meta = json.loads((folder / "model.json").read_text("utf-8"))
        return ModelRef(flavor=meta["flavor"], path=folder / "model", info=meta["info"])

    @classmethod
    def to_transport(cls, value: ModelRef) -> dict:
        buf = io.BytesIO()
        src = Path(value.path)
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            for p in sorted(src.rglob("*")):
                if p.is_file():
                    zf.write(p, p.relative_to(src).as_posix())
        return {"flavor": value.flavor, "info": value.info, "zip": buf.getvalue()}

    @classmethod
    def from_transport(cls, payload: Any, workdir: Path) -> ModelRef:
        if isinstance(payload, ModelRef):
            return payload
        target = Path(workdir) / f"model-{len(list(Path(workdir).glob('model-*')))}"
        with zipfile.ZipFile(io.BytesIO(payload["zip"])) as zf:
            for name in zf.namelist():  # refuse absolute paths and parent references
                if name.startswith("/") or ".." in Path(name).parts:
                    raise ValueError(f"unsafe path in model payload: {name!r}")
            zf.extractall(target)
        return ModelRef(flavor=payload["flavor"], path=target, info=payload["info"])


@dataclass(frozen=True)
class FittedTransform:
    """A preprocessing step fitted on training data, kept as JSON parameters so it is auditable and portable."""

    kind: str
    params: dict = field(default_factory=dict)
    columns: tuple[str, ...] = ()


class FittedTransformPort(PortType):
    type_name = "FittedTransform"
    color = "#00897b"
    description = "Preprocessing fitted on training data"
    python_type = FittedTransform

    @classmethod
    def save(cls, value: FittedTransform, folder: Path) -> None:
        doc = {"kind": value.kind, "params": value.params, "columns": list(value.columns)}
        (folder / "transform.json").write_text(json.dumps(doc, sort_keys=True, ensure_ascii=False), "utf-8")

    @classmethod
    def load(cls, folder: Path) -> FittedTransform:
        doc = json.loads((folder / "transform.json").read_text("utf-8"))
        return FittedTransform(kind=doc["kind"], params=doc["params"], columns=tuple(doc["columns"]))


@dataclass
class Report:
    """Structured results (metrics, tables) plus figures, renderable to one self-contained HTML page.

    Figures are kept as PNG bytes, rendered once when added, so a report is cheap to move between processes and
    never needs matplotlib to be displayed.
    """

    title: str
    kind: str = "report"
    metrics: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    figures: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def visible_tables(self) -> dict[str, pl.DataFrame]:
        """The tables a person reads; names starting with "_" are data for other tools (e.g. the ROC points the
        Experiments view overlays) and are kept but not shown."""
        return {name: table for name, table in self.tables.items() if not name.startswith("_")}

    def add_figure(self, name: str, fig: Any, dpi: int = 110, tight: bool = True) -> None:
        """Render a matplotlib figure to PNG. Prefer `matplotlib.figure.Figure` (no pyplot global state);
        a pyplot figure is closed here so it does not pile up. `tight=False` skips the extra layout pass of a
        tight bounding box (a third of the drawing time) for figures that set their own margins."""
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
        if getattr(fig.canvas, "manager", None) is not None:
            import matplotlib.pyplot as plt

            plt.close(fig)
        self.figures[name] = buf.getvalue()

    def to_html(self) -> str:
        esc = html.escape
        parts = [
            "<!doctype html><html><head><meta charset='utf-8'>",
            f"<title>{esc(self.title)}</title>",
            "<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}"
            "img{max-width:100%;margin:1em 0}</style></head><body>",
            f"<h1>{esc(self.title)}</h1>",
        ]
        if self.metrics:
            parts.append(f"<h2>{esc(tr('Metrics'))}</h2><table>")
            for k, v in self.metrics.items():
                shown = f"{v:.4f}" if isinstance(v, float) else esc(str(v))
                parts.append(f"<tr><th>{esc(k)}</th><td>{shown}</td></tr>")
            parts.append("</table>")
        for name, table in self.visible_tables().items():
            parts.append(f"<h2>{esc(name)}</h2><table><tr>")
            parts.extend(f"<th>{esc(c)}</th>" for c in table.columns)
            parts.append("</tr>")
            for row in table.head(200).iter_rows():
                parts.append("<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in row) + "</tr>")
            parts.append("</table>")
        for name, png in self.figures.items():
            data = base64.b64encode(png).decode("ascii")
            parts.append(f"<h2>{esc(name)}</h2><img alt='{esc(name)}' src='data:image/png;base64,{data}'>")
        for note in self.notes:
            parts.append(f"<p>{esc(note)}</p>")
        parts.append("</body></html>")
        return "".join(parts)


class ReportPort(PortType):
    type_name = "Report"
    color = "#f4511e"
    description = "Metrics, tables and figures"
    python_type = Report

    @classmethod
    def save(cls, value: Report, folder: Path) -> None:
        (folder / "tables").mkdir()
        (folder / "figures").mkdir()
        names_t = sorted(value.tables)
        for i, name in enumerate(names_t):
            value.tables[name].write_parquet(folder / "tables" / f"{i}.parquet")
        names_f = sorted(value.figures)
        for i, name in enumerate(names_f):
            (folder / "figures" / f"{i}.png").write_bytes(value.figures[name])
        doc = {"title": value.title, "kind": value.kind, "metrics": value.metrics, "notes": value.notes,
               "tables": names_t, "figures": names_f}
        atomic_write_text(folder / "report.json", json.dumps(doc, sort_keys=True, ensure_ascii=False))

    @classmethod
    def load(cls, folder: Path) -> Report:
        doc = json.loads((folder / "report.json").read_text("utf-8"))
        tables = {n: pl.read_parquet(folder / "tables" / f"{i}.parquet") for i, n in enumerate(doc["tables"])}
        figures = {n: (folder / "figures" / f"{i}.png").read_bytes() for i, n in enumerate(doc["figures"])}
        return Report(title=doc["title"], kind=doc["kind"], metrics=doc["metrics"], tables=tables,
                      figures=figures, notes=doc["notes"])


PORT_TYPES: dict[str, type[PortType]] = {
    t.type_name: t for t in (PortType, Table, Model, FittedTransformPort, ReportPort)
}
