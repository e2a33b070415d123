"""Icons and style sheets from ``resources/``, chosen to follow the system's light or dark palette."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QApplication

__all__ = ["RESOURCES", "apply_theme", "icon", "is_dark"]

RESOURCES = Path(__file__).resolve().parents[2] / "resources"


_applied: dict[str, bool] = {}


def system_is_dark() -> bool:
    """True when the system asks for a dark colour scheme (or its window colour is dark)."""
    hints = QGuiApplication.styleHints()
    scheme = hints.colorScheme() if hints is not None else Qt.ColorScheme.Unknown
    if scheme != Qt.ColorScheme.Unknown:
        return scheme == Qt.ColorScheme.Dark
    return QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128


def is_dark() -> bool:
    """True when the dark theme is in use (the system's choice unless :func:`apply_theme` was told otherwise)."""
    return _applied.get("dark", system_is_dark())


def _palette(dark: bool) -> QPalette:
    colours = (
        {"window": "#0f172a", "text": "#e2e8f0", "base": "#1e293b", "alt": "#223047", "button": "#1e293b",
         "muted": "#94a3b8", "highlight": "#3b82f6", "tip": "#1e293b"}
        if dark
        else {"window": "#f5f7fb", "text": "#0f172a", "base": "#ffffff", "alt": "#f8fafc", "button": "#ffffff",
              "muted": "#64748b", "highlight": "#2563eb", "tip": "#ffffff"}
    )  # fmt: skip
    p = QPalette()
    role = QPalette.ColorRole
    for r, key in (
        (role.Window, "window"), (role.WindowText, "text"), (role.Base, "base"), (role.AlternateBase, "alt"),
        (role.Text, "text"), (role.Button, "button"), (role.ButtonText, "text"), (role.ToolTipBase, "tip"),
        (role.ToolTipText, "text"), (role.PlaceholderText, "muted"), (role.Highlight, "highlight"),
    ):  # fmt: skip
        p.setColor(r, QColor(colours[key]))
    p.setColor(role.HighlightedText, QColor("#ffffff"))
    p.setColor(QPalette.ColorGroup.Disabled, role.Text, QColor(colours["muted"]))
    p.setColor(QPalette.ColorGroup.Disabled, role.ButtonText, QColor(colours["muted"]))
    p.setColor(QPalette.ColorGroup.Disabled, role.WindowText, QColor(colours["muted"]))
    return p


@cache
def _qss(name: str) -> str:
    path = RESOURCES / "styles" / f"{name}.qss"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    return text.replace("@ICONS@", (RESOURCES / "icons").as_posix())


def apply_theme(app: QApplication, dark: bool | None = None) -> str:
    """Apply the light or dark style sheet; returns the theme's name."""
    use_dark = system_is_dark() if dark is None else dark
    _applied["dark"] = use_dark
    name = "dark" if use_dark else "light"
    app.setStyle("Fusion")
    app.setPalette(_palette(use_dark))
    app.setStyleSheet(_qss(name))
    return name


def icon(name: str) -> QIcon:
    """An icon from ``resources/icons/<name>.svg`` (an empty icon when missing)."""
    path = RESOURCES / "icons" / f"{name}.svg"
    return QIcon(str(path)) if path.exists() else QIcon()
