"""The wallet's windows (PySide6). The only package of the project allowed to import QtWidgets.

The widgets are thin: they read plain view objects (:mod:`wallet_app.gui.views`) from an adapter over the wallet's
services (:mod:`wallet_app.gui.backend`) and run every blocking call in a background worker
(:mod:`wallet_app.gui.bridge`).
"""

from wallet_app.gui.pyside_fixes import install as _install_pyside_fixes

_install_pyside_fixes()  # before any window exists: see the module for the PySide6 6.12 bug it works around
