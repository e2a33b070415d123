"""Test keyring backends for the wallet's windows and the start-up benchmark (never used outside tests/bench).

``MemoryKeyring`` keeps keys in a dict (one test). ``FileTestKeyring`` keeps them in the JSON file named by
``NETPAY_TEST_KEYRING_FILE`` so several wallet processes share one key; select it in a subprocess with
``PYTHON_KEYRING_BACKEND=tests.support.gui_keyring.FileTestKeyring``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keyring.backend

__all__ = ["FileTestKeyring", "MemoryKeyring"]


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring that lives in memory."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def delete_password(self, service: str, username: str) -> None:
        self.entries.pop((service, username), None)


class FileTestKeyring(keyring.backend.KeyringBackend):
    """A keyring in one JSON file (path from ``NETPAY_TEST_KEYRING_FILE``), for multi-process tests only."""

    priority = 1  # type: ignore[assignment]

    @property
    def path(self) -> Path:
        return Path(os.environ["NETPAY_TEST_KEYRING_FILE"])

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data[f"{service}\x00{username}"] = password
        self.path.write_text(json.dumps(data), encoding="utf-8")

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}\x00{username}")

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        data.pop(f"{service}\x00{username}", None)
        self.path.write_text(json.dumps(data), encoding="utf-8")
