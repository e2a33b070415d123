"""netpay: links and the single-instance channel (a plain Unix socket, no Qt)."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from netpay.errors import MalformedMessage
from wallet_app.callback.single_instance import InstanceChannel, send_to_running
from wallet_app.callback.uri import NetpayLink, parse_netpay_uri

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="Unix sockets only")


def test_parse_netpay_links() -> None:
    link = parse_netpay_uri("netpay:pay?quote_url=http%3A%2F%2F127.0.0.1%3A8201%2Fv1%2Fquotes&item=a1")
    assert link == NetpayLink("http://127.0.0.1:8201/v1/quotes", "a1")
    link = parse_netpay_uri("netpay:?quote_url=https://shop.example/v1/quotes&item=x&return=https://shop.example/x")
    assert link.return_url == "https://shop.example/x"


@pytest.mark.parametrize(
    "uri",
    [
        "http://shop.example/?quote_url=https://shop.example/q&item=a",
        "netpay:pay?quote_url=file:///etc/passwd&item=a",
        "netpay:pay?quote_url=https://shop.example/q",
        "netpay:pay?quote_url=https://shop.example/q&item=a&return=javascript:alert(1)",
        "netpay:wipe?quote_url=https://shop.example/q&item=a",
        "netpay:pay?item=" + "a" * 5000,
    ],
)
def test_bad_links_are_refused(uri: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_netpay_uri(uri)


@pytest.fixture
def sock_path(tmp_path: Path) -> Iterator[Path]:
    # AF_UNIX paths are limited to ~107 bytes; pytest's tmp_path can be longer.
    base = Path("/tmp") / f"np-{os.getpid()}-{tmp_path.name[-8:]}"
    yield base / "instance.sock"
    shutil.rmtree(base, ignore_errors=True)


def test_second_instance_hands_its_link_to_the_first(sock_path: Path) -> None:
    path = sock_path
    got: list[str] = []
    seen = threading.Event()

    def on_uri(uri: str) -> None:
        got.append(uri)
        seen.set()

    first = InstanceChannel(path, on_uri)
    assert first.acquire()
    try:
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        second = InstanceChannel(path, lambda u: None)
        assert not second.acquire()  # the first one answers
        # A separate process, as the browser would start `netpay-wallet netpay:...`.
        code = (
            "import sys; from pathlib import Path; from wallet_app.callback.single_instance import send_to_running;"
            f"sys.exit(0 if send_to_running('netpay:pay?quote_url=http://127.0.0.1:8201/v1/quotes&item=a', "
            f"Path({str(path)!r})) else 3)"
        )
        assert subprocess.run([sys.executable, "-c", code], timeout=30).returncode == 0
        assert seen.wait(5)
        assert got == ["netpay:pay?quote_url=http://127.0.0.1:8201/v1/quotes&item=a"]
    finally:
        first.close()
    assert not path.exists()
    assert not send_to_running("netpay:x", path)  # nobody listens any more


def test_refused_link_is_answered_and_channel_keeps_listening(sock_path: Path) -> None:
    path = sock_path

    def on_uri(uri: str) -> None:
        parse_netpay_uri(uri)

    channel = InstanceChannel(path, on_uri)
    assert channel.acquire()
    try:
        assert not send_to_running("netpay:wipe", path)
        assert send_to_running("netpay:pay?quote_url=http://127.0.0.1:1/v1/quotes&item=a", path)
    finally:
        channel.close()


def test_stale_socket_of_a_dead_instance_is_taken_over(sock_path: Path) -> None:
    path = sock_path
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody listens
    channel = InstanceChannel(path, lambda u: None)
    try:
        assert channel.acquire()
        assert send_to_running("netpay:pay?quote_url=http://127.0.0.1:1/q&item=a", path)
    finally:
        channel.close()


def test_desktop_file_registers_the_scheme() -> None:
    text = (Path(__file__).resolve().parents[3] / "resources" / "netpay-wallet.desktop").read_text()
    lines = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    assert lines["Exec"] == "netpay-wallet %u"
    assert "x-scheme-handler/netpay" in lines["MimeType"].split(";")
    assert lines["Type"] == "Application"
