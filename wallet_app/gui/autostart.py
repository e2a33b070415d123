"""Start the wallet when the user logs in: an XDG autostart entry on Linux (other systems: not yet)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["autostart_path", "set_autostart"]

_ENTRY = """[Desktop Entry]
Type=Application
Name=NetPay Wallet
Comment=E-coin wallet for NetPay micropayments
Exec={exec} -m wallet_app.main --minimized
Icon=netpay-wallet
Terminal=false
X-GNOME-Autostart-enabled=true
"""


def autostart_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "autostart" / "netpay-wallet.desktop"


def set_autostart(enabled: bool) -> None:
    """Create or remove the autostart entry."""
    path = autostart_path()
    if enabled:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_ENTRY.format(exec=sys.executable), encoding="utf-8")
    elif path.exists():
        path.unlink()
