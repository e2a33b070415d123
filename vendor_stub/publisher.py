"""The publisher's login to the shop's own pages (``/earnings``): one secret token per shop.

The token is given with ``--publisher-token`` (env ``NETPAY_VENDOR_PUBLISHER_TOKEN``) or made on first start and kept
in ``DATA_DIR/publisher_token`` (mode 0600); ``netpay-vendor publisher-token`` prints it. Logging in at
``/earnings/login`` sets an HttpOnly, SameSite=Strict cookie holding an HMAC of the token (never the token itself),
so the cookie opens the page only while the token stays the same.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

__all__ = ["COOKIE", "PublisherLogin", "load_or_create_publisher_token"]

COOKIE = "np_publisher"
_FILE = "publisher_token"


def load_or_create_publisher_token(data_dir: Path) -> str:
    """The token in ``data_dir/publisher_token``, created (random, 0600) when missing."""
    path = Path(data_dir) / _FILE
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = ""
    if token:
        return token
    token = secrets.token_urlsafe(18)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, (token + "\n").encode())
    finally:
        os.close(fd)
    return token


class PublisherLogin:
    """Checks a typed token and the session cookie made from it (constant-time compares)."""

    def __init__(self, token: str) -> None:
        if len(token) < 8:
            raise ValueError("the publisher token must be at least 8 characters")
        self._token = token.encode()
        self._cookie = hmac.new(self._token, b"netpay-publisher-session-v1", hashlib.sha256).hexdigest()

    def check_token(self, typed: str) -> bool:
        return hmac.compare_digest(typed.strip().encode(), self._token)

    def cookie_value(self) -> str:
        return self._cookie

    def check_cookie(self, value: str | None) -> bool:
        return value is not None and hmac.compare_digest(value.encode(), self._cookie.encode())
