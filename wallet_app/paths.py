"""Where the wallet keeps its data: ``--data-dir``, else ``$NETPAY_WALLET_HOME``, else the platform's user data dir
(XDG on Linux, ``~/Library/Application Support`` on macOS, ``%LOCALAPPDATA%`` on Windows)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["ENV_HOME", "data_dir"]

ENV_HOME = "NETPAY_WALLET_HOME"


def data_dir(cli_value: str | os.PathLike[str] | None = None) -> Path:
    """The wallet data directory, created with mode 0700 if missing."""
    if cli_value:
        path = Path(cli_value)
    elif os.environ.get(ENV_HOME):
        path = Path(os.environ[ENV_HOME])
    else:
        path = Path(platformdirs.user_data_dir("NetPay", appauthor=False))
    path = path.expanduser()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path
