"""What the docked viewers show for the selected node: its tables, its report and its log.

Outputs are read through the session (verified artifacts), only for the node the user looks at. Column lists for
the properties panel come from the upstream table's Parquet schema, or from the source file when it has not run.
"""
from __future__ import annotations

import logging
from typing import Any

import polars as pl
from PySide6 import QtCore, QtWidgets

from app.document import Document
from app.viewers.data_view import DataViewer
from app.viewers.log_view import LogViewer
from app.viewers.report_view import ReportViewer
from engine.i18n import tr
from engine.ports import ReportPort, Table
from engine.sdk import resolve_project_path

log = logging.getLogger("ledgerflow.app")


class DataPanel(QtWidgets.QWidget):
    """The data viewer plus a chooser for nodes with several table outputs (Split's train and test)."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.port_box = QtWidgets.QComboBox()
        self.port_box.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.port_label = QtWidgets.QLabel(tr("Output:"))
        self.viewer = DataViewer()
        top = QtWidgets.QHBoxLayout()
        top.setContentsMargins(4, 2, 4, 0)
        top.addWidget(self.port_label)
        top.addWidget(self.port_box)
        top.addStretch(1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.viewer)


class OutputPresenter(QtCore.QObject):
    """Feeds the data, report and log viewers from the session for the current node."""

    def __init__(self, data: DataPanel, report: ReportViewer, logs: LogViewer,
                 parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.data, self.report, self.logs = data, report, logs
        self.document: Document | None = None
        self.node_id: str | None = None
        self.data.port_box.currentIndexChanged.connect(self._show_table)

    def set_document(self, document: Document | None) -> None:
        self.document = document
        self.show_node(None)

    def show_node(self, node_id: str | None) -> None:
        doc = self.document
        self.node_id = node_id if doc is not None and node_id in (doc.graph.nodes if doc else {}) else None
        if self.node_id is None or doc is None:
            self.logs.clear()
            self._set_ports([])
            return
        inst = doc.graph.nodes[self.node_id]
        st = doc.session.status.get(self.node_id)
        self.logs.show_node(inst.title, list(st.logs) if st else [], st.error if st else None,
                            st.traceback if st else None)
        cls = doc.graph.node_class(self.node_id)
        tables = [p for p, spec in (cls.output_ports.items() if cls else []) if issubclass(spec.type, Table)]
        self._set_ports([p for p in tables if st and p in st.outputs] or tables)
        for port, spec in (cls.output_ports.items() if cls else []):
            if issubclass(spec.type, ReportPort) and st and port in st.outputs:
                self.report.set_report(self._load(port), source=inst.title)

    def _set_ports(self, ports: list[str]) -> None:
        box = self.data.port_box
        box.blockSignals(True)
        box.clear()
        box.addItems(ports)
        box.blockSignals(False)
        visible = len(ports) > 1
        box.setVisible(visible)
        self.data.port_label.setVisible(visible)
        self._show_table()

    def _show_table(self, *_: Any) -> None:
        port = self.data.port_box.currentText()
        doc, nid = self.document, self.node_id
        st = doc.session.status.get(nid) if doc and nid else None
        if not port or st is None or port not in st.outputs:
            self.data.viewer.set_table(None)
            return
        value = self._load(port)
        title = f"{doc.graph.nodes[nid].title} · {port}"  # type: ignore[union-attr]
        self.data.viewer.set_table(value if isinstance(value, pl.DataFrame) else None, title)

    def _load(self, port: str) -> Any:
        assert self.document is not None and self.node_id is not None
        try:
            return self.document.session.output(self.node_id, port)
        except Exception as exc:  # noqa: BLE001 - a damaged artifact is reported, the app goes on
            log.warning("cannot load output %s: %s", port, exc)
            self.logs.append(logging.ERROR, tr("Cannot load output {port!r}: {exc}", port=port, exc=exc))
            return None

    def append_log(self, node_id: str, level: int, message: str) -> None:
        if node_id == self.node_id:
            self.logs.append(level, message)

    def first_report_node(self) -> str | None:
        """A node with a stored report, to show after a run (the evaluation, in the sample project)."""
        doc = self.document
        if doc is None:
            return None
        for nid in doc.graph.topological_order():
            cls = doc.graph.node_class(nid)
            st = doc.session.status.get(nid)
            if cls and st and any(issubclass(s.type, ReportPort) and p in st.outputs
                                  for p, s in cls.output_ports.items()):
                return nid
        return None


def upstream_columns(document: Document, node_id: str, port: str = "") -> list[str]:
    """Columns of the table feeding the node's first connected Table input, or input `port` when given (for
    column pickers: a window node's entity column comes from its events input, its as-of column from entities)."""
    graph = document.graph
    cls = graph.node_class(node_id)
    if cls is None:
        return []
    for edge in graph.incoming(node_id):
        spec = cls.input_ports.get(edge.dst_port)
        if spec is None or not issubclass(spec.type, Table) or (port and edge.dst_port != port):
            continue
        cols = _output_columns(document, edge.src, edge.src_port)
        if cols:
            return cols
    return []


def _output_columns(document: Document, node_id: str, port: str) -> list[str]:
    st = document.session.status.get(node_id)
    if st is not None and port in st.outputs:
        try:
            folder = document.session.store.verify(Table, st.outputs[port])
            return list(pl.read_parquet_schema(folder / "table.parquet"))
        except Exception as exc:  # noqa: BLE001
            log.info("no schema for %s.%s: %s", node_id, port, exc)
    inst = document.graph.nodes[node_id]
    if not document.graph.incoming(node_id) and isinstance(inst.settings.get("path"), str):
        from engine.templates import data_columns  # a source that has not run yet: read the file's header

        try:
            return data_columns(resolve_project_path(inst.settings["path"], document.project.directory))
        except Exception as exc:  # noqa: BLE001
            log.info("no columns for %s: %s", inst.settings["path"], exc)
            return []
    return upstream_columns(document, node_id)  # a pass-through node (e.g. Split): its input's columns
