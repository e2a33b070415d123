"""The test host of the open-web tests: made and removed by the test (also when it fails), reachable only from this
machine, and a clear skip (or, under CI, a failure) where namespaces cannot be made."""

from __future__ import annotations

import socket
import subprocess

import pytest
from _pytest.outcomes import Failed, Skipped

from tests.support import netns
from tests.support.netns import namespace_host, require_netns


def _namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout


def test_the_host_is_reachable_and_removed_even_when_the_test_fails() -> None:
    require_netns()
    with pytest.raises(RuntimeError, match="the test failed"), namespace_host() as host:
        name = host.name
        assert name in _namespaces()
        routes = subprocess.run(host.command(["ip", "route"]), capture_output=True, text=True, check=True).stdout
        assert "default" not in routes  # nothing leads out of this machine
        code = (
            f"import socket; s = socket.socket(); s.bind(({host.address!r}, 8080)); s.listen(); print('ready', "
            "flush=True); c, _ = s.accept(); c.sendall(b'hello from the test host'); c.close()"
        )
        server = subprocess.Popen(host.command(["python3", "-c", code]), stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
            with socket.create_connection((host.address, 8080), timeout=5) as conn:
                assert conn.recv(100) == b"hello from the test host"
        finally:
            server.wait(10)
        raise RuntimeError("the test failed")
    assert name not in _namespaces()
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert name.removeprefix("netpay-") not in links


def test_without_root_it_skips_with_the_reason_but_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(Skipped, match="needs root"):
        require_netns()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(Failed, match="needs root"):
        require_netns()
