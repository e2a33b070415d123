"""Access tokens: the receipt's "authorization number" that unlocks an item (or every item, for a time pass).

A token is ``v1.<payload>.<mac>`` where the payload is base64url JSON ``{"i": item_id, "p": pass?, "r": receipt,
"u": valid_until}`` and the MAC is HMAC-SHA256 under a secret that never leaves the vendor's data dir. A token for
one item does not open another; a pass token opens every item until ``valid_until``; a bundle's token opens each
item of the bundle (``AccessTokens.bundles``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AUTH_SCHEME", "AccessGrant", "AccessTokens", "bearer_token", "load_or_create_secret"]

#: The ``Authorization`` scheme that carries an access token: ``Authorization: NetPay <token>``.
AUTH_SCHEME = "NetPay"


def load_or_create_secret(path: Path) -> bytes:
    """The 32-byte HMAC secret at ``path``, created with mode 0600 on first use."""
    if path.exists():
        data = path.read_bytes()
        if len(data) == 32:
            return data
        raise ValueError(f"access secret {path} is damaged")
    data = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return data


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """What a valid token grants: one item, or (``is_pass``) everything until ``valid_until``."""

    item_id: str
    is_pass: bool
    receipt_id: str
    valid_until: int | None


class AccessTokens:
    """Issues and checks access tokens with one vendor secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._revoked: set[str] = set()  # receipt ids whose tokens open nothing any more (refunded)
        self.bundles: dict[str, frozenset[str]] = {}  # bundle item id -> the items its token opens too
        # HMAC-SHA256 with the key's inner and outer pads hashed once (RFC 2104); each MAC then costs two
        # hash-object copies instead of a fresh HMAC context (slow to set up with OpenSSL 3).
        key = secret if len(secret) <= 64 else hashlib.sha256(secret).digest()
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def revoke(self, receipt_id: str) -> None:
        """From now on no token of this receipt opens anything (the purchase was refunded)."""
        self._revoked.add(receipt_id)

    def _mac(self, payload: str) -> str:
        inner = self._inner.copy()
        inner.update(b"netpay-access:" + payload.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return _b64(outer.digest())

    def issue(self, item_id: str, receipt_id: str, is_pass: bool, valid_until: int | None) -> str:
        # json.dumps({"i", "p", "r", "u"}, sort_keys=True, separators=(",", ":")), written out (it is on every
        # payment's path): the same bytes, strings escaped by json.dumps itself
        until = "null" if valid_until is None else str(int(valid_until))
        flag = "true" if is_pass else "false"
        text = f'{{"i":{json.dumps(item_id)},"p":{flag},"r":{json.dumps(receipt_id)},"u":{until}}}'
        payload = _b64(text.encode())
        return f"v1.{payload}.{self._mac(payload)}"

    def check(self, token: str | None, item_id: str, now: int | None = None) -> AccessGrant | None:
        """The grant if ``token`` is genuine, unexpired and opens ``item_id``; otherwise None."""
        if not token or len(token) > 512:
            return None
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != "v1":
            return None
        if not hmac.compare_digest(self._mac(parts[1]), parts[2]):
            return None
        try:
            data = json.loads(_unb64(parts[1]))
            grant = AccessGrant(str(data["i"]), bool(data["p"]), str(data["r"]), data["u"])
        except (ValueError, KeyError, TypeError):
            return None
        now = int(time.time()) if now is None else now
        if grant.valid_until is not None and now >= grant.valid_until:
            return None
        if grant.receipt_id in self._revoked:
            return None
        if grant.is_pass or grant.item_id == item_id or item_id in self.bundles.get(grant.item_id, ()):
            return grant
        return None


def bearer_token(authorization: str | None) -> str | None:
    """The access token in an ``Authorization: NetPay <token>`` header value (``Bearer`` is accepted too), or None.

    The one place that reads tokens from headers, for every route that takes them (paid API, item pages)."""
    if not authorization or len(authorization) > 600:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() not in ("netpay", "bearer"):
        return None
    token = token.strip()
    return token or None
