"""Two test hosts (network namespaces, :func:`tests.support.netns.namespace_host`) that can also reach each other
directly, over a veth pair of their own in another /30 of TEST-NET-3: nothing is routed or forwarded through this
machine, so peer-to-peer traffic really crosses from one namespace to the other. Everything goes with the namespaces.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import pytest

from tests.support.netns import TestHost, namespace_host

__all__ = ["HostPair", "host_pair"]


@dataclass(frozen=True)
class HostPair:
    """``a`` and ``b`` reach this machine at their gateways, and each other at ``a_direct`` / ``b_direct``."""

    a: TestHost
    b: TestHost
    a_direct: str
    b_direct: str


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=True)


@contextmanager
def host_pair() -> Iterator[HostPair]:
    with ExitStack() as stack:
        a = stack.enter_context(namespace_host())
        b = stack.enter_context(namespace_host())
        taken = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True, timeout=20).stdout
        for ns in (a.name, b.name):
            taken += subprocess.run(["ip", "netns", "exec", ns, "ip", "-o", "addr", "show"], capture_output=True,
                                    text=True, timeout=20).stdout  # fmt: skip
        free = [y for y in range(0, 256, 4) if f" 203.0.113.{y + 1}/" not in taken
                and f" 203.0.113.{y + 2}/" not in taken]  # fmt: skip
        if not free:
            pytest.fail("no free /30 in 203.0.113.0/24 for the direct link")
        y = free[secrets.randbelow(len(free))]
        a_addr, b_addr = f"203.0.113.{y + 1}", f"203.0.113.{y + 2}"
        tag = secrets.token_hex(3)
        end_a, end_b = f"npd{tag}a", f"npd{tag}b"
        try:
            _ip("link", "add", end_a, "type", "veth", "peer", "name", end_b)
            _ip("link", "set", end_a, "netns", a.name)
            _ip("link", "set", end_b, "netns", b.name)
            for ns, end, addr in ((a.name, end_a, a_addr), (b.name, end_b, b_addr)):
                _ip("netns", "exec", ns, "ip", "addr", "add", f"{addr}/30", "dev", end)
                _ip("netns", "exec", ns, "ip", "link", "set", end, "up")
        except subprocess.CalledProcessError as exc:
            subprocess.run(["ip", "link", "del", end_a], capture_output=True, timeout=20)
            pytest.fail(f"could not link the test hosts: {' '.join(exc.cmd)}: {exc.stderr.strip()}")
        yield HostPair(a, b, a_addr, b_addr)  # the direct link goes when the namespaces are deleted
