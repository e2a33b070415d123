"""A keyring backend for tests only: a real ``keyring.backend.KeyringBackend`` that keeps secrets in a JSON file
(so a wallet subprocess and the test share it) or in memory. Never used outside tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import keyring.backend
import keyring.errors

__all__ = ["FileKeyring", "MemoryKeyring", "wallet_process_env"]

ROOT = Path(__file__).resolve().parents[2]


def wallet_process_env(tmp: Path) -> dict[str, str]:
    """Environment for a wallet (or demo) subprocess in a test or benchmark: offscreen Qt, the file keyring below
    in ``tmp/keyring.json`` (shared with the test), private runtime and config dirs, and the repository importable."""
    (tmp / "run").mkdir(mode=0o700, parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        {
            "QT_QPA_PLATFORM": "offscreen",
            "PYTHON_KEYRING_BACKEND": "tests.support.test_keyring.FileKeyring",
            "NETPAY_TEST_KEYRING_FILE": str(tmp / "keyring.json"),
            "NETPAY_WALLET_REPORT_SHOWN": "1",
            "XDG_RUNTIME_DIR": str(tmp / "run"),
            "XDG_CONFIG_HOME": str(tmp / "config"),
            "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        }
    )
    return env


class MemoryKeyring(keyring.backend.KeyringBackend):
    """Secrets in a dict."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError(username)


class FileKeyring(keyring.backend.KeyringBackend):
    """Secrets in a JSON file (mode 0600) so several test processes see the same keyring."""

    priority = 1  # type: ignore[assignment]

    def __init__(self, path: Path | None = None) -> None:
        super().__init__()
        self.path = Path(path or os.environ["NETPAY_TEST_KEYRING_FILE"])

    def _load(self) -> dict[str, str]:
        try:
            return dict(json.loads(self.path.read_text()))
        except FileNotFoundError:
            return {}

    def _save(self, data: dict[str, str]) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}\n{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data[f"{service}\n{username}"] = password
        self._save(data)

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        if data.pop(f"{service}\n{username}", None) is None:
            raise keyring.errors.PasswordDeleteError(username)
        self._save(data)
