"""A wallet that quits can start again on its port at once, but never shares the port with a program that listens.

When a client (a browser) still holds a keep-alive connection as the wallet quits, the wallet's end of that connection
stays in FIN-WAIT-2 (then TIME-WAIT) for up to a minute. Without SO_REUSEADDR the next wallet could not bind the port
for that long ("another wallet may be running", though nothing listens). With it, Linux still refuses a bind while any
socket listens on the port (SO_REUSEPORT, which the callback never sets, would allow sharing).
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.support.callback import TestWallet
from tests.support.test_keyring import wallet_process_env
from wallet_app.callback.server import CallbackServer, PortInUse

ROOT = Path(__file__).resolve().parents[3]
Start = Callable[..., CallbackServer]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _held_connection(port: int) -> http.client.HTTPConnection:
    """A keep-alive connection that has made one request and stays open (as a browser keeps it)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/v1/hello")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("connection", "keep-alive").lower() != "close"
    resp.read()
    return conn


def _lingering(port: int) -> set[str]:
    """TCP states (as /proc/net/tcp numbers them) of the non-listening sockets bound to 127.0.0.1:``port``."""
    states = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if local == f"0100007F:{port:04X}" and state != "0A":
            states.add(state)
    return states


LINUX_ONLY = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEADDR is set on Linux only")


@LINUX_ONLY
def test_callback_restarts_on_its_port_while_a_client_holds_the_old_connection(
    test_wallet: TestWallet, callback_for: Start
) -> None:
    first = callback_for(test_wallet)
    port = first.port
    conn = _held_connection(port)
    try:
        first.stop()
        if Path("/proc/net/tcp").exists():  # the situation really is the one users hit: FIN-WAIT-2 (05) / TIME-WAIT
            assert _lingering(port) & {"05", "06"}, _lingering(port)
        second = callback_for(test_wallet, port=port)
        assert requests.get(f"{second.url}/v1/hello", timeout=5).status_code == 200
    finally:
        conn.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
@pytest.mark.parametrize("reuse", [True, False])
def test_a_program_listening_on_the_port_still_fails_closed(
    test_wallet: TestWallet, callback_for: Start, host: str, reuse: bool
) -> None:
    other = socket.socket()
    if reuse:  # most servers set it too: it must not let two listeners share the port
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    other.bind((host, 0))
    other.listen(8)
    port = other.getsockname()[1]
    try:
        with pytest.raises(PortInUse, match=f"port {port} .* already in use"):
            callback_for(test_wallet, port=port)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # the other program still has its port
    finally:
        other.close()


def _start_headless(env: dict[str, str], data_dir: Path, port: int) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "wallet_app.main", "--headless", "--data-dir", str(data_dir),
           "--callback-port", str(port)]  # fmt: skip
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def _ready(proc: subprocess.Popen[str]) -> dict[str, object]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        _out, err = proc.communicate(timeout=30)
        raise AssertionError(f"the wallet exited with {proc.returncode}: {err}")
    event: dict[str, object] = json.loads(line)
    assert event["event"] == "ready", event
    return event


def _quit(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


@LINUX_ONLY
def test_netpay_wallet_starts_again_at_once_after_quitting_with_a_browser_connection_open(tmp_path: Path) -> None:
    env = wallet_process_env(tmp_path)
    data_dir = tmp_path / "w"
    code = "import sys; from pathlib import Path; from wallet_app.services import WalletService; " \
           "s = WalletService(Path(sys.argv[1])); s.create(None); s.close()"  # fmt: skip
    subprocess.run([sys.executable, "-c", code, str(data_dir)], env=env, cwd=ROOT, check=True, timeout=60)
    port = _free_port()
    first = _start_headless(env, data_dir, port)
    try:
        assert _ready(first)["callback"] == f"http://127.0.0.1:{port}"
        conn = _held_connection(port)
    finally:
        _quit(first)
    try:
        again = _start_headless(env, data_dir, port)
        try:
            assert _ready(again)["callback"] == f"http://127.0.0.1:{port}"
        finally:
            _quit(again)
    finally:
        conn.close()
