"""Icons and style sheets from ``resources/``, chosen to follow the system's light or dark palette."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QApplication

__all__ = ["RESOURCES", "apply_theme", "icon", "is_dark"]

RESOURCES = Path(__file__).resolve().parents[2] / "resources"


def is_dark() -> bool:
    """True when the system asks for a dark colour scheme (or its window colour is dark)."""
    hints = QGuiApplication.styleHints()
    scheme = hints.colorScheme() if hints is not None else Qt.ColorScheme.Unknown
    if scheme != Qt.ColorScheme.Unknown:
        return scheme == Qt.ColorScheme.Dark
    return QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128


@cache
def _qss(name: str) -> str:
    path = RESOURCES / "styles" / f"{name}.qss"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    return text.replace("@ICONS@", (RESOURCES / "icons").as_posix())


def apply_theme(app: QApplication, dark: bool | None = None) -> str:
    """Apply the light or dark style sheet; returns the theme's name."""
    name = "dark" if (is_dark() if dark is None else dark) else "light"
    app.setStyle("Fusion")
    app.setStyleSheet(_qss(name))
    return name


def icon(name: str) -> QIcon:
    """An icon from ``resources/icons/<name>.svg`` (an empty icon when missing)."""
    path = RESOURCES / "icons" / f"{name}.svg"
    return QIcon(str(path)) if path.exists() else QIcon()
