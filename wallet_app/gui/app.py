"""The wallet's window controller: first run, unlock, main window, prompts, tray, auto-lock.

:func:`create_application` makes the QApplication with the wallet's theme; :class:`WalletWindows` decides what to
show (the first-run wizard, the unlock dialog, or the main window) and reacts to the services' events.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, QLocale, QObject, QSettings, QTimer, QTranslator
from PySide6.QtWidgets import QApplication

from wallet_app.gui.backend import GuiBackend
from wallet_app.gui.dialogs import UnlockDialog
from wallet_app.gui.first_run import DEMO_BROKER_URL, FirstRunWizard
from wallet_app.gui.formatting import plural
from wallet_app.gui.gc_guard import install_main_thread_gc
from wallet_app.gui.main_window import MainWindow
from wallet_app.gui.prompt import PromptQueue
from wallet_app.gui.theme import RESOURCES, apply_theme, icon
from wallet_app.gui.tray import Tray

__all__ = ["WalletWindows", "create_application"]

_INPUT_EVENTS = {QEvent.Type.KeyPress, QEvent.Type.MouseButtonPress, QEvent.Type.Wheel}


def create_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication (created once), named, themed after the system palette."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(argv if argv is not None else [])
    app.setApplicationName("NetPay Wallet")
    app.setOrganizationName("NetPay")
    app.setApplicationDisplayName("NetPay Wallet")
    app.setDesktopFileName("netpay-wallet")
    app.setWindowIcon(icon("app"))
    app.setQuitOnLastWindowClosed(False)
    install_main_thread_gc(app)  # worker threads never free Qt objects
    _install_translator(app)
    apply_theme(app)
    return app


def _install_translator(app: QApplication) -> None:
    """Load ``resources/translations/netpay_<locale>.qm`` for the system locale when one exists."""
    translator = QTranslator(app)
    if translator.load(QLocale.system(), "netpay", "_", str(RESOURCES / "translations")):
        app.installTranslator(translator)


class _ActivityFilter(QObject):
    """Tells the services about user input so auto-lock counts idle time only."""

    def __init__(self, touch: Callable[[], None]) -> None:
        super().__init__()
        self._touch = touch
        self._last = 0.0

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in _INPUT_EVENTS and time.monotonic() - self._last > 5:
            self._last = time.monotonic()
            self._touch()
        return False


class WalletWindows(QObject):
    """Shows the right window for the vault's state and keeps prompts, tray and auto-lock working."""

    def __init__(
        self,
        backend: GuiBackend,
        data_dir: Path,
        demo_broker_url: str = DEMO_BROKER_URL,
        on_main_shown: Callable[[], None] | None = None,
        callback_url: str = "",
        minimized: bool = False,
    ) -> None:
        super().__init__()
        self.backend = backend
        self.bridge = backend.bridge
        self.data_dir = data_dir
        self.demo_broker_url = demo_broker_url
        self.on_main_shown = on_main_shown
        self.callback_url = callback_url
        self.callback_error = ""
        self.start_minimized = minimized
        self.qsettings = QSettings(str(data_dir / "gui.ini"), QSettings.Format.IniFormat)
        self.window: MainWindow | None = None
        self.p2p: Any = None  # the Sharing and Find pages with their peer server (wallet_app.gui.p2p)
        self.wizard: FirstRunWizard | None = None
        self.unlock_dialog: UnlockDialog | None = None
        self.tray = Tray(self)
        self.prompts = PromptQueue(self.backend.approve, self.backend.decline, self.bridge.run, self._pending_changed)
        self.bridge.prompt_requested.connect(self.prompts.add)
        self.bridge.prompt_closed.connect(self.prompts.withdraw)
        self.bridge.vault_locked.connect(self._locked)
        self.bridge.unlock_requested.connect(self._unlock_requested)
        self.bridge.balance_changed.connect(self._update_tray)
        self.tray.show_requested.connect(self.show_main)
        self.tray.lock_requested.connect(self.lock)
        self.tray.quit_requested.connect(self.quit)
        self.metered: dict[str, Any] = {}  # open metered sessions, as the tray lists them
        self.bridge.metered_changed.connect(self._metered_changed)
        self.bridge.vault_locked.connect(lambda: self._metered_cleared())
        self.tray.end_metered_requested.connect(
            lambda sid: self.bridge.run(self.backend.end_metered, sid, on_error=lambda _e: None)
        )
        self.idle_timer = QTimer(self)
        self.idle_timer.setInterval(15000)
        self.idle_timer.timeout.connect(self._check_idle)
        self._filter = _ActivityFilter(self._touch)
        app = QCoreApplication.instance()
        if app is not None:
            app.installEventFilter(self._filter)

    # --- start ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        state = self.backend.state
        if state == "new":
            self.show_wizard()
        elif state == "unlocked":
            self.show_main()
        elif self.backend.needs_passphrase():
            self.show_unlock()
        else:
            # keyring vault: open it in the background; ask only if the keyring cannot.
            self.bridge.run(
                self.backend.service.unlock,
                None,
                on_done=lambda _r: self._opened(),
                on_error=lambda _e: self._ask(),
            )

    def _opened(self) -> None:
        self.show_main()

    def _ask(self) -> None:
        self.show_unlock()

    def show_wizard(self) -> FirstRunWizard:
        self.wizard = FirstRunWizard(self.backend, self.demo_broker_url)
        self.wizard.accepted.connect(self.show_main)
        self.wizard.rejected.connect(self.quit)
        self.wizard.show()
        return self.wizard

    def show_unlock(self) -> UnlockDialog:
        if self.unlock_dialog is not None and self.unlock_dialog.isVisible():
            self.unlock_dialog.raise_()
            self.unlock_dialog.activateWindow()
            return self.unlock_dialog
        dialog = UnlockDialog(self.backend, self.window)
        dialog.accepted.connect(self.show_main)
        dialog.rejected.connect(lambda: None if self.window is not None and self.window.isVisible() else self.quit())
        self.unlock_dialog = dialog
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    def show_main(self) -> MainWindow:
        if self.window is None:
            self.window = MainWindow(self.backend, self.qsettings)
            self.window.lock_requested.connect(self.lock)
            self.window.on_notify = self._notify
            self.window.refreshed.connect(self._update_tray)
            self._status()
            from wallet_app.gui.p2p import install_p2p_pages  # P2P-NetPay (issue 20): Sharing and Find

            self.p2p = install_p2p_pages(self.window, self.backend)
        elif self.p2p is not None and self.p2p.resume is not None:
            self.p2p.resume()  # unlocked again: sharing that the lock stopped comes back
        if self.start_minimized and self.tray.available:
            self.start_minimized = False  # started with the system: stay in the tray until asked
        else:
            self.window.show()
            self.window.raise_()
            self.window.activateWindow()
        self.idle_timer.start()
        for prompt in self.backend.pending_prompts():
            self.prompts.add(prompt)
        if self.on_main_shown is not None:
            callback, self.on_main_shown = self.on_main_shown, None
            QTimer.singleShot(0, callback)
        return self.window

    # --- events ----------------------------------------------------------------------------------------------
    def set_callback_state(self, url: str, error: str) -> None:
        """The browser callback is listening on ``url`` (or did not start: ``error``)."""
        self.callback_url = url
        self.callback_error = error
        self._status()

    def _status(self) -> None:
        if self.window is not None:
            if self.callback_error:
                where = self.tr("Browser hand-off off: %1").replace("%1", self.callback_error)
            elif self.callback_url:
                where = self.tr("Browser hand-off on %1").replace("%1", self.callback_url)
            else:
                where = ""
            pending = self.prompts.pending
            waiting = plural(pending, self.tr("1 purchase waiting"), self.tr("%n purchases waiting")) if pending else ""
            self.window.set_status("  ·  ".join(t for t in (where, waiting) if t))

    def _pending_changed(self, count: int) -> None:
        self.tray.set_pending(count)
        self._status()

    def _metered_changed(self, session: Any) -> None:
        if session.status == "open":
            self.metered[session.session_id] = session
        else:
            self.metered.pop(session.session_id, None)
        self.tray.set_metered(list(self.metered.values()))
        self.bridge.activity_changed.emit()

    def _metered_cleared(self) -> None:
        self.metered.clear()
        self.tray.set_metered([])

    def _update_tray(self) -> None:
        if self.window is not None:
            self.tray.set_balance(self.window.balance_text())

    def _notify(self, title: str, text: str) -> None:
        # the setting comes with the window's last snapshot: never block the GUI thread on the vault
        enabled = self.window is None or bool(self.window.snapshot.get("notifications", True))
        if enabled:
            self.tray.notify(title, text)

    def _locked(self) -> None:
        self.idle_timer.stop()
        if self.window is not None:
            self.window.save_geometry()
            self.window.hide()
        self.show_unlock()

    def _unlock_requested(self) -> None:
        if self.backend.state == "locked":
            self.show_unlock()

    def lock(self) -> None:
        self.bridge.run(self.backend.service.lock, on_error=lambda _e: None)

    def _touch(self) -> None:
        if self.backend.state == "unlocked":
            with contextlib.suppress(Exception):
                self.backend.service.touch()

    def _check_idle(self) -> None:
        if self.backend.state == "unlocked":
            self.bridge.run(self.backend.service.check_idle, on_error=lambda _e: None)

    def quit(self) -> None:
        if self.window is not None:
            self.window.save_geometry()
        self.tray.hide()
        QCoreApplication.quit()

    def shutdown(self) -> None:
        """Save the window geometry, stop timers and wait for background work (before the services close)."""
        self.idle_timer.stop()
        if self.p2p is not None:
            self.p2p.shutdown()  # sharing stops with the wallet
        if self.window is not None:
            self.window.save_geometry()
        app = QCoreApplication.instance()
        if app is not None:
            app.removeEventFilter(self._filter)
        self.bridge.wait_idle()

    def _unused(self) -> Any:
        return None
