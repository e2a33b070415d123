"""Which broker and vendor URLs the wallet talks to, and which TLS certificates it trusts.

- Plain ``http://`` only to this computer (127.0.0.0/8, ``::1``, ``localhost``): anything else must be ``https://``,
  so a broker's or vendor's answers (and the customer's login and coins) never cross a network unencrypted. A
  refused URL raises :class:`~netpay.errors.Forbidden` with ``reason="insecure_url"`` before any byte is sent.
- Certificates are always verified: against the CA bundle requests uses (certifi's Mozilla store; ``REQUESTS_CA_BUNDLE``
  is honoured), or against the one CA file the user names with ``--ca-file`` / ``NETPAY_WALLET_CA_FILE`` (a private
  or test CA). There is no switch to turn verification off.
"""

from __future__ import annotations

import functools
import ipaddress
import os
from pathlib import Path
from urllib.parse import urlsplit

from netpay.errors import Forbidden, MalformedMessage

__all__ = ["ENV_CA_FILE", "ca_file_from_env", "is_loopback_host", "require_secure_url"]

#: Environment variable naming a PEM file of CA certificates the wallet trusts instead of the default bundle.
ENV_CA_FILE = "NETPAY_WALLET_CA_FILE"


@functools.lru_cache(maxsize=256)
def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost``, any 127.0.0.0/8 address and ``::1`` (a fact about the name alone: remembered, since
    every payment checks the same few hosts several times)."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_secure_url(url: str, what: str = "server") -> str:
    """``url`` itself when it is ``https://``, or ``http://`` to this computer; otherwise a clear refusal."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise MalformedMessage(f"the {what} URL {url!r} is not a URL", field="url") from None
    if parts.scheme not in ("http", "https") or not host:
        raise MalformedMessage(f"the {what} URL {url!r} must start with https:// (or http:// on this computer)",
                               field="url")  # fmt: skip
    if parts.scheme == "http" and not is_loopback_host(host):
        raise Forbidden(
            f"the {what} at {url} would be reached over plain HTTP across the network; the wallet only uses "
            "https:// for other computers",
            reason="insecure_url",
        )
    return url


def ca_file_from_env() -> str | None:
    """The CA file named by ``NETPAY_WALLET_CA_FILE``, checked to exist; None when the variable is unset or empty."""
    value = os.environ.get(ENV_CA_FILE, "").strip()
    if not value:
        return None
    if not Path(value).is_file():
        raise FileNotFoundError(f"{ENV_CA_FILE}={value}: no such CA file")
    return value
