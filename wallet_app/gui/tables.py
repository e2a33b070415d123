"""A read-only, sortable table with the wallet's look, filled from rows of (text, sort key, alignment) cells."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

__all__ = ["Cell", "DataTable"]

RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter


class Cell(QTableWidgetItem):
    """A table cell that sorts by ``key`` (e.g. minor units) rather than by its text."""

    def __init__(self, text: str, key: Any = None, right: bool = False, data: Any = None) -> None:
        super().__init__(text)
        self.key = text.lower() if key is None else key
        self.setTextAlignment(RIGHT if right else LEFT)
        self.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
        if data is not None:
            self.setData(Qt.ItemDataRole.UserRole, data)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, Cell):
            try:
                return bool(self.key < other.key)
            except TypeError:
                return str(self.key) < str(other.key)
        return super().__lt__(other)


class DataTable(QTableWidget):
    """Rows select whole, alternate colours, the last column stretches."""

    def __init__(
        self, headers: list[str], stretch: int = -1, right: tuple[int, ...] = (), parent: QWidget | None = None
    ) -> None:
        super().__init__(0, len(headers), parent)
        for i, text in enumerate(headers):
            item = QTableWidgetItem(text)
            item.setTextAlignment(RIGHT if i in right else LEFT)
            self.setHorizontalHeaderItem(i, item)
        self.setAlternatingRowColors(True)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setShowGrid(False)
        self.setWordWrap(False)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(34)
        header = self.horizontalHeader()
        header.setHighlightSections(False)
        header.setDefaultAlignment(LEFT)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setMinimumSectionSize(90)
        header.setSectionResizeMode(stretch % len(headers), QHeaderView.ResizeMode.Stretch)

    def fill(self, rows: list[list[Cell]]) -> None:
        """Replace every row, keeping the current sort order."""
        sorting = self.isSortingEnabled()
        self.setSortingEnabled(False)
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, cell in enumerate(row):
                self.setItem(r, c, cell)
        self.setSortingEnabled(sorting)

    def selected_data(self) -> Any:
        """The user data of the first cell of the selected row."""
        rows = self.selectionModel().selectedRows()
        if not rows:
            return None
        item = self.item(rows[0].row(), 0)
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None
