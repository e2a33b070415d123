"""``python -m wallet_app.main``: the GUI process shows its window, and ``--headless`` answers prompts on stdin."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from tests.support.test_keyring import wallet_process_env

ROOT = Path(__file__).resolve().parents[3]


class _Lines:
    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self.sel = selectors.DefaultSelector()
        self.sel.register(proc.stdout, selectors.EVENT_READ)
        self.buffer = b""

    def next(self, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            assert time.monotonic() < deadline, "no output from the wallet"
            assert self.proc.poll() is None, "the wallet exited"
            if self.sel.select(timeout=0.05):
                self.buffer += os.read(self.proc.stdout.fileno(), 4096)  # type: ignore[union-attr]
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()


def _stop(proc: subprocess.Popen[bytes]) -> int:
    proc.terminate()
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def test_headless_wallet_prints_prompts_and_takes_answers_on_stdin(tmp_path: Path, broker: Any, vendor: Any) -> None:
    cmd = [sys.executable, "-m", "wallet_app.main", "--headless", "--data-dir", str(tmp_path / "w"),
           "--callback-port", "0", "--broker-url", broker.url]  # fmt: skip
    env = wallet_process_env(tmp_path)
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        lines = _Lines(proc)
        ready = json.loads(lines.next())
        assert ready["event"] == "ready" and ready["callback"].startswith("http://127.0.0.1:")
        offer = requests.post(f"{vendor.url}/v1/quotes", json={"item_id": "night-market-returns"}, timeout=10).json()
        answer = requests.post(f"{ready['callback']}/v1/purchase", json=offer, headers={"Origin": vendor.url},
                               timeout=10).json()  # fmt: skip
        assert answer["status"] == "pending"
        prompt = json.loads(lines.next())
        assert prompt["event"] == "prompt" and prompt["prompt_id"] == answer["prompt_id"]
        assert prompt["vendor"] == "Daily Planet" and prompt["price"] == {"amount": 3, "currency": "EUR"}
        assert proc.stdin is not None
        proc.stdin.write(f"decline {answer['prompt_id']}\n".encode())
        proc.stdin.flush()
        assert json.loads(lines.next()) == {"event": "answered", "prompt_id": answer["prompt_id"],
                                            "status": "declined"}  # fmt: skip
    finally:
        assert _stop(proc) == 0


def test_gui_process_shows_the_main_window_of_a_keyring_vault(tmp_path: Path) -> None:
    data_dir = tmp_path / "w"
    code = f"from pathlib import Path; from wallet_app.services import WalletService; " \
           f"s = WalletService(Path({str(data_dir)!r})); s.create(None); s.close()"  # fmt: skip
    env = wallet_process_env(tmp_path)
    subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True, timeout=60)
    proc = subprocess.Popen([sys.executable, "-m", "wallet_app.main", "--data-dir", str(data_dir),
                             "--callback-port", "0"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        assert _Lines(proc).next() == "NETPAY_WALLET_SHOWN"
    finally:
        _stop(proc)
    assert (data_dir / "gui.ini").is_file()  # SIGTERM closes the window cleanly and saves its geometry
