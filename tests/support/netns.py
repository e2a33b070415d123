"""A test host in its own network namespace: ``ip netns add``, a veth pair, a /30 in a reserved test range.

The range is TEST-NET-3, 203.0.113.0/24 (RFC 5737: reserved for documentation and tests, never routed on the
internet). Chromium counts it as a *public* address, so a page served from it meets the Local Network Access rules
of a real shop on the web; a private address (10/8, 192.168/16) would not (Chromium 156 lets a private-network page
reach loopback without asking). The host side of the pair gets the /30's first address and the namespace the second;
no route leads anywhere else and nothing forwards, so traffic only flows between this machine's own namespaces.
Everything made is removed again when the context ends, also after a failure. Making namespaces needs root
(CAP_NET_ADMIN): elsewhere :func:`require_netns` skips with the reason, and fails instead under CI (``CI`` set),
where a skip would hide that the non-loopback tests never ran.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

__all__ = ["TestHost", "namespace_host", "require_netns"]


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=check)


def require_netns() -> None:
    """Skip (or, under CI, fail) when this process cannot make network namespaces."""
    reason = None
    if shutil.which("ip") is None:
        reason = "the ip command (iproute2) is not installed"
    elif os.geteuid() != 0:
        reason = "making a network namespace needs root (CAP_NET_ADMIN)"
    if reason is not None:
        message = f"non-loopback shop test not run: {reason}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@dataclass(frozen=True)
class TestHost:
    """A namespace ``name`` reachable at ``address``; this machine is ``gateway`` on the other end of the veth."""

    __test__ = False  # not a pytest test class

    name: str
    address: str
    gateway: str

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]


@contextmanager
def namespace_host() -> Iterator[TestHost]:
    """Make the namespace and veth pair; remove both afterwards (whatever happened)."""
    require_netns()
    tag = secrets.token_hex(3)
    name, outer, inner = f"netpay-{tag}", f"npv{tag}h", f"npv{tag}n"
    taken = _ip("-o", "addr", "show").stdout
    free = [y for y in range(0, 256, 4) if f" 203.0.113.{y + 1}/" not in taken]
    if not free:
        pytest.fail("every /30 of 203.0.113.0/24 is in use by other test hosts")
    y = free[secrets.randbelow(len(free))]
    gateway, address = f"203.0.113.{y + 1}", f"203.0.113.{y + 2}"
    made_ns = made_link = False
    try:
        try:
            _ip("netns", "add", name)
            made_ns = True
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            made_link = True
            _ip("link", "set", inner, "netns", name)
            _ip("addr", "add", f"{gateway}/30", "dev", outer)
            _ip("link", "set", outer, "up")
            _ip("netns", "exec", name, "ip", "addr", "add", f"{address}/30", "dev", inner)
            _ip("netns", "exec", name, "ip", "link", "set", inner, "up")
            _ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        except subprocess.CalledProcessError as exc:
            pytest.fail(f"could not make the test host's namespace: {' '.join(exc.cmd)}: {exc.stderr.strip()}")
        yield TestHost(name, address, gateway)
    finally:
        if made_link:
            _ip("link", "del", outer, check=False)  # takes its peer in the namespace with it
        if made_ns:
            _ip("netns", "del", name, check=False)
