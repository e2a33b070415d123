"""Small building blocks shared by the windows: cards, headings, error banners, money amounts."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

__all__ = ["Card", "banner", "empty_state", "fit_height", "heading", "muted"]


class Card(QFrame):
    """A rounded white (or dark) panel with comfortable padding."""

    def __init__(self, parent: QWidget | None = None, margins: int = 16, spacing: int = 8) -> None:
        super().__init__(parent)
        self.setObjectName("Card")
        self.body = QVBoxLayout(self)
        self.body.setContentsMargins(margins, margins, margins, margins)
        self.body.setSpacing(spacing)


def heading(text: str, kind: str = "SectionTitle") -> QLabel:
    """A label styled as a title (``Title``) or a section title (``SectionTitle``)."""
    label = QLabel(text)
    label.setObjectName(kind)
    return label


def muted(text: str, wrap: bool = True) -> QLabel:
    """A secondary, grey label."""
    label = QLabel(text)
    label.setObjectName("Muted")
    label.setWordWrap(wrap)
    return label


def empty_state(text: str) -> QLabel:
    """What an empty table says, shown in the table's place (a hint under an empty table was easy to miss)."""
    label = QLabel(text)
    label.setObjectName("EmptyState")
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    return label


def banner(kind: str = "Error") -> QLabel:
    """A hidden error (``Error``) or success (``Success``) banner; set its text and show it."""
    label = QLabel()
    label.setObjectName(kind)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.hide()
    return label


def fit_height(window: QWidget) -> None:
    """Give ``window`` the height its layout needs at its current width (growing or shrinking), and no less.

    Qt sizes a window from its layout's minimum size, which ignores height-for-width: a word-wrapped message shown
    after the window opened (an error, a success) was cut to one line and squeezed the rows above it; and once the
    message is hidden again, the space it took is given back."""
    layout = window.layout()
    if layout is None:
        return
    layout.invalidate()
    layout.activate()
    width = window.width()
    need = layout.totalHeightForWidth(width) if layout.hasHeightForWidth() else layout.totalSizeHint().height()
    window.setMinimumHeight(need)
    if window.height() != need:
        window.resize(width, need)
