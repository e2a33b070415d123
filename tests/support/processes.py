"""Start ``netpay-broker`` and ``netpay-vendor`` as real processes (for the races between processes on PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from netpay_web.live import free_port

__all__ = ["ServerProcess", "spawn_broker", "spawn_vendor", "together"]


class ServerProcess:
    """One server process on a loopback port; ``kill()`` is a SIGKILL, ``stop()`` a polite end."""

    def __init__(self, args: list[str], port: int, log: Path, ready_path: str) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log, "ab")  # noqa: SIM115 - lives as long as the process
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(self.url + ready_path, timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not start: {' '.join(args)}; see {log}")
            time.sleep(0.05)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def spawn_broker(data_dir: Path, database_url: str, port: int | None = None, *extra: str) -> ServerProcess:
    """``netpay-broker serve`` on ``database_url`` with the key in ``data_dir`` (start one broker there first);
    ``extra`` are more flags (a later ``--close-grace`` overrides the 0 given here)."""
    port = port or free_port()
    args = [sys.executable, "-m", "broker_stub.cli", "serve", "--data-dir", str(data_dir), "--port", str(port),
            "--database", database_url, "--close-grace", "0", *extra]  # fmt: skip
    return ServerProcess(args, port, Path(data_dir) / f"broker-{port}.log", "/v1/info")


def spawn_vendor(data_dir: Path, database_url: str, broker_url: str, broker_key: str, port: int | None = None,
                 name: str = "Daily Planet", *extra: str) -> ServerProcess:  # fmt: skip
    """``netpay-vendor serve`` of one shop (its key in ``data_dir``) on ``database_url``; ``extra`` are more flags."""
    port = port or free_port()
    args = [sys.executable, "-m", "vendor_stub.cli", "serve", "--data-dir", str(data_dir), "--port", str(port),
            "--database", database_url, "--broker", broker_url, "--broker-key", broker_key, "--name", name,
            *extra]  # fmt: skip
    return ServerProcess(args, port, Path(data_dir) / f"vendor-{port}.log", "/healthz")


def together(*calls: Callable[[], requests.Response]) -> list[requests.Response]:
    """Run the calls at the same moment, each in its own thread (the races between processes)."""
    barrier = threading.Barrier(len(calls))

    def go(call: Callable[[], requests.Response]) -> requests.Response:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(go, calls))
