"""Access tokens out of URLs: how a token reaches the shop's item pages without ever being in an address.

- A shop page that holds the token (the page script, after the wallet paid) posts it to ``POST /v1/access/cookie``
  (same origin): the shop sets the item's (or pass's) HttpOnly cookie and the page opens the item's plain URL.
- Anything that can only open a URL (the wallet's "Open item", its navigation fallback) first asks
  ``POST /v1/access/codes`` for a one-time code: ``/items/{id}?code=…`` exchanges it, once and within
  :data:`CODE_TTL_S`, for the same cookie and redirects (303) to the plain item URL. A code in a log, the history or
  a Referer is worth nothing: it was used, or it expires in seconds, and it alone never opens anything again.

Codes are stored as their SHA-256 (so the database holds nothing usable either) and deleted when used; an exchange
is one ``DELETE … RETURNING``, so of two processes of one shop only one can use a code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import sqlite3
from collections.abc import Callable

from netpay.errors import Forbidden
from vendor_stub.access import AccessGrant, AccessTokens
from vendor_stub.storage import Store

__all__ = ["CODE_TTL_S", "TokenHandover"]

#: How long a one-time code may wait for its exchange.
CODE_TTL_S = 120


def _digest(code: str) -> str:
    return hashlib.sha256(b"netpay-access-code:" + code.encode()).hexdigest()


class TokenHandover:
    """Issues one-time codes for access tokens and exchanges them."""

    def __init__(self, store: Store, tokens: AccessTokens, clock: Callable[[], int]) -> None:
        self._store = store
        self._tokens = tokens
        self._now = clock

    def grant(self, token: str | None) -> AccessGrant:
        """The grant of a genuine, unexpired token (for any item it opens), else ``forbidden``."""
        item = _item_of(token) if token else None
        grant = self._tokens.check(token, item, self._now()) if item else None
        if grant is None:
            raise Forbidden("this access token opens nothing here")
        return grant

    def issue(self, token: str | None) -> tuple[str, int]:
        """A one-time code for ``token`` and when it expires."""
        self.grant(token)
        code = secrets.token_urlsafe(24)
        now = self._now()

        def write(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM access_codes WHERE expires_at <= ?", (now,))
            c.execute("INSERT INTO access_codes (code_hash, token, expires_at) VALUES (?, ?, ?)",
                      (_digest(code), token, now + CODE_TTL_S))  # fmt: skip

        self._store.write(write)
        return code, now + CODE_TTL_S

    def exchange(self, code: str) -> str | None:
        """The token of an unused, unexpired code (which is used up now), else None."""
        if not code or len(code) > 64:
            return None
        now = self._now()

        def take(c: sqlite3.Connection) -> str | None:
            row = c.execute("DELETE FROM access_codes WHERE code_hash = ? RETURNING token, expires_at",
                            (_digest(code),)).fetchone()  # fmt: skip
            return str(row[0]) if row is not None and int(row[1]) > now else None

        return self._store.write(take)


def _item_of(token: str) -> str | None:
    """The item a token names (read without checking it; :meth:`AccessTokens.check` checks it next)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        return str(data["i"])
    except (ValueError, KeyError, TypeError):
        return None
