"""The node palette: node types by category, with icon, translated title and one-line description.

Nodes are dragged onto the canvas (a mime payload of the type id, turned into an `AddNode` command by the canvas
controller), or added at the view centre by double-click or Enter.
"""
from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from app.canvas.node_types import icon_path
from app.canvas.viewer import NODE_MIME
from engine.i18n import tr
from engine.registry import Registry

TYPE_ROLE = QtCore.Qt.ItemDataRole.UserRole + 1
SEARCH_ROLE = QtCore.Qt.ItemDataRole.UserRole + 2


class _Tree(QtWidgets.QTreeWidget):
    def mimeData(self, items: list[QtWidgets.QTreeWidgetItem]) -> QtCore.QMimeData:  # noqa: N802 - Qt API
        mime = QtCore.QMimeData()
        type_ids = [i.data(0, TYPE_ROLE) for i in items if i.data(0, TYPE_ROLE)]
        if type_ids:
            mime.setData(NODE_MIME, type_ids[0].encode("utf-8"))
            mime.setText(type_ids[0])
        return mime

    def mimeTypes(self) -> list[str]:  # noqa: N802
        return [NODE_MIME, "text/plain"]


class NodePalette(QtWidgets.QWidget):
    add_requested = QtCore.Signal(str)  # type id

    def __init__(self, registry: Registry, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = QtWidgets.QLineEdit(placeholderText=tr("Search nodes…"))
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.filter)
        self.search.returnPressed.connect(self._add_first_visible)
        self.tree = _Tree()
        self.tree.setHeaderHidden(True)
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QtWidgets.QAbstractItemView.DragDropMode.DragOnly)
        self.tree.setIconSize(QtCore.QSize(20, 20))
        self.tree.setWordWrap(True)
        self.tree.itemDoubleClicked.connect(self._on_double_clicked)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.search)
        layout.addWidget(self.tree)
        self._populate(registry)

    def _populate(self, registry: Registry) -> None:
        categories: dict[str, QtWidgets.QTreeWidgetItem] = {}
        for cls in registry.all():
            cat = categories.get(cls.category)
            if cat is None:
                cat = QtWidgets.QTreeWidgetItem([tr(cls.category)])
                cat.setFlags(QtCore.Qt.ItemFlag.ItemIsEnabled)
                font = cat.font(0)
                font.setBold(True)
                cat.setFont(0, font)
                categories[cls.category] = cat
                self.tree.addTopLevelItem(cat)
            title, desc = tr(cls.title), tr(cls.description) if cls.description else ""
            item = QtWidgets.QTreeWidgetItem([f"{title}\n{desc}" if desc else title])
            item.setData(0, TYPE_ROLE, cls.type_id)
            item.setData(0, SEARCH_ROLE, " ".join((title, desc, cls.title, cls.type_id, tr(cls.category))).lower())
            item.setToolTip(0, f"<b>{title}</b><br>{desc}<br><small>{cls.type_id} v{cls.version}</small>")
            item.setFlags(QtCore.Qt.ItemFlag.ItemIsEnabled | QtCore.Qt.ItemFlag.ItemIsSelectable |
                          QtCore.Qt.ItemFlag.ItemIsDragEnabled)
            icon = icon_path(cls.icon)
            if icon:
                item.setIcon(0, QtGui.QIcon(icon))
            cat.addChild(item)
        self.tree.expandAll()

    def items(self) -> list[QtWidgets.QTreeWidgetItem]:
        out = []
        for i in range(self.tree.topLevelItemCount()):
            cat = self.tree.topLevelItem(i)
            out.extend(cat.child(j) for j in range(cat.childCount()))
        return out

    def filter(self, text: str) -> None:
        """Show the nodes whose title, description, category or type id contain every word typed."""
        words = text.lower().split()
        for i in range(self.tree.topLevelItemCount()):
            cat = self.tree.topLevelItem(i)
            shown = 0
            for j in range(cat.childCount()):
                item = cat.child(j)
                hidden = not all(w in item.data(0, SEARCH_ROLE) for w in words)
                item.setHidden(hidden)
                shown += not hidden
            cat.setHidden(shown == 0)

    def visible_type_ids(self) -> list[str]:
        return [i.data(0, TYPE_ROLE) for i in self.items() if not i.isHidden() and not i.parent().isHidden()]

    def _add_first_visible(self) -> None:
        visible = self.visible_type_ids()
        if visible:
            self.add_requested.emit(visible[0])

    def _on_double_clicked(self, item: QtWidgets.QTreeWidgetItem, _col: int) -> None:
        type_id = item.data(0, TYPE_ROLE)
        if type_id:
            self.add_requested.emit(type_id)
