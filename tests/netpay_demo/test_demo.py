"""`netpay-demo` as a user runs it: everything starts and answers, the wallet window is shown (offscreen), a second
demo and a taken port are refused with a clear message, Ctrl+C stops every process; and the tour passes."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from netpay_web.live import free_ports
from tests.support.test_keyring import wallet_process_env


def _ports() -> dict[str, int]:
    names = ("broker", "news", "cards", "callback")
    return dict(zip(names, free_ports(len(names)), strict=True))


def _argv(data_dir: Path, ports: dict[str, int], *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "netpay_demo.cli", "--data-dir", str(data_dir), "--no-browser",
        "--broker-port", str(ports["broker"]), "--news-port", str(ports["news"]),
        "--cards-port", str(ports["cards"]), "--callback-port", str(ports["callback"]), *extra,
    ]  # fmt: skip


def _wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float = 120) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        lines.append(line.rstrip())
        if needle in line:
            return lines
    raise AssertionError(f"{needle!r} not printed; output so far:\n" + "\n".join(lines))


@pytest.fixture
def running_demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, int], Path]]:
    ports = _ports()
    data = tmp_path / "demo"
    proc = subprocess.Popen(_argv(data, ports), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=wallet_process_env(tmp_path), cwd=tmp_path)  # fmt: skip
    try:
        yield proc, ports, data
    finally:
        # Even when the test fails midway, leave nothing behind: the demo stops its children on SIGINT; whatever
        # still runs after that (children live in their own process groups) is killed here.
        children = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


@pytest.mark.slow
def test_demo_starts_everything_and_stops_cleanly_on_sigint(
    running_demo: tuple[subprocess.Popen[str], dict[str, int], Path], tmp_path: Path
) -> None:
    proc, ports, data = running_demo
    output = _wait_for_line(proc, "Ctrl+C stops everything")
    base = "http://127.0.0.1"
    assert requests.get(f"{base}:{ports['broker']}/v1/info", timeout=5).json()["broker_id"] == "demo-broker"
    names = {requests.get(f"{base}:{ports[k]}/v1/info", timeout=5).json()["display_name"] for k in ("news", "cards")}
    assert names == {"Daily Planet", "Paper Lantern Cards"}
    assert requests.get(f"{base}:{ports['callback']}/v1/hello", timeout=5).status_code == 200
    assert "Daily Planet" in requests.get(f"{base}:{ports['news']}/", timeout=5).text
    deadline = time.monotonic() + 60
    wallet_log = data / "logs" / "wallet.log"
    while "NETPAY_WALLET_SHOWN" not in (wallet_log.read_text() if wallet_log.exists() else ""):
        assert time.monotonic() < deadline, "the wallet window was never shown"
        time.sleep(0.2)
    assert any("customer" in line for line in output)
    # Every server logs its requests under demo-data/logs/; the publisher's earnings token is printed.
    server_logs = [data / "logs" / "broker.log", *sorted((data / "logs").glob("vendor-*.log"))]
    assert len(server_logs) == 3
    for log in server_logs:
        assert '"GET /v1/info HTTP/1.1" 200' in log.read_text(), log.name
    assert sum("publisher token" in line for line in output) == 2

    # A second demo on the same data directory says so and changes nothing.
    second = subprocess.run(
        _argv(data, _ports()), capture_output=True, text=True, env=wallet_process_env(tmp_path), timeout=60
    )
    assert second.returncode == 2
    assert "already running" in second.stderr

    children = psutil.Process(proc.pid).children(recursive=True)
    assert len(children) >= 4  # broker, two vendors, wallet
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 0
    _gone, alive = psutil.wait_procs(children, timeout=20)
    assert alive == [], f"left behind: {alive}"
    for port in ports.values():
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers"


def test_a_taken_port_gets_a_clear_message(tmp_path: Path) -> None:
    ports = _ports()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", ports["news"]))
        blocker.listen()
        env = wallet_process_env(tmp_path)
        out = subprocess.run(_argv(tmp_path / "demo", ports), capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2
    assert f"port {ports['news']} (Daily Planet) is taken" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_the_tour_passes_and_prints_the_reconciliation(tmp_path: Path) -> None:
    out = subprocess.run(_argv(tmp_path / "demo", _ports(), "--tour"), capture_output=True, text=True,
                         env=wallet_process_env(tmp_path), timeout=240)  # fmt: skip
    print(out.stdout)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "custody moved: daily-planet released the chain, paper-lantern-cards holds it now" in out.stdout
    assert "broker trial balance:" in out.stdout
    assert "0 failed" in out.stdout
    assert "tour passed: every figure agrees" in out.stdout
