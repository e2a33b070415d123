"""Which web origins may talk to the callback: the origins of vendor certificates signed by a trusted broker.

A browser's ``Origin`` header cannot be forged by a page, so an origin is allowed when a trusted broker certified it
for some vendor. The registry learns certificates from purchases that passed every check and, for a first CORS
preflight from an origin it has not seen, by fetching ``{origin}/v1/info`` (the vendor's own certificate) once;
failures are remembered for a while so a hostile page cannot make the wallet fetch in a loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import requests

from netpay.errors import CertificateExpired, Forbidden, NetPayError
from netpay.keys import VerifyKey
from netpay.messages import VendorCertificate
from netpay.signed import Signed
from wallet_app.clients.http import shared_session
from wallet_app.clients.policy import require_secure_url

__all__ = ["OriginRegistry", "normalize_origin", "origin_of_url", "verify_vendor_certificate"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
#: Discovery fetches allowed per minute, over all origins.
MAX_DISCOVERIES = 20


@lru_cache(maxsize=1024)
def normalize_origin(value: str | None) -> str | None:
    """``scheme://host[:port]`` in lower case with the default port dropped; None for anything else (incl. "null")."""
    if not value or value == "null" or len(value) > 255:
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username or parts.password:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def origin_of_url(url: str) -> str | None:
    """The origin of an absolute http(s) URL, normalised; None if it is not one."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return normalize_origin(f"{parts.scheme}://{parts.netloc}")


def verify_vendor_certificate(
    cert: Signed[VendorCertificate], trusted: Sequence[VerifyKey], now: int
) -> VendorCertificate:
    """Signature already checked by ``from_wire``; require a trusted broker signer and the validity period."""
    body = cert.require_signer(*trusted)
    if not body.issued_at - 300 <= now < body.expires_at:
        raise CertificateExpired(f"vendor certificate of {body.vendor_id} is not valid now", field="vendor_certificate")
    return body


class OriginRegistry:
    """Allowed origins, learnt from trusted vendor certificates; thread-safe."""

    def __init__(
        self,
        trusted_keys: Callable[[], Sequence[VerifyKey]],
        clock: Callable[[], float] = time.time,
        discover: bool = True,
        negative_ttl: float = 60.0,
        fetch_timeout: float = 2.0,
    ) -> None:
        self._trusted_keys = trusted_keys
        self._clock = clock
        self._discover = discover
        self._negative_ttl = negative_ttl
        self._fetch_timeout = fetch_timeout
        self._allowed: dict[str, int] = {}  # origin -> certificate expiry
        self._refused: dict[str, float] = {}  # origin -> retry-after time
        self._fetches: list[float] = []  # times of recent discovery fetches
        self._lock = threading.Lock()

    def add_certificate(self, cert: Signed[VendorCertificate]) -> None:
        """Allow the certificate's origins (after checking it is trusted and valid)."""
        body = verify_vendor_certificate(cert, self._trusted_keys(), int(self._clock()))
        with self._lock:
            for origin in body.origins:
                norm = normalize_origin(origin)
                if norm:
                    self._allowed[norm] = max(self._allowed.get(norm, 0), body.expires_at)
                    self._refused.pop(norm, None)

    def is_known(self, origin: str | None) -> bool:
        """True if ``origin`` is allowed by a certificate seen before (no network)."""
        norm = normalize_origin(origin)
        if norm is None:
            return False
        with self._lock:
            return self._allowed.get(norm, 0) > self._clock()

    def is_allowed(self, origin: str | None) -> bool:
        """True if ``origin`` is known, or (when discovery is on) its own ``/v1/info`` proves it certified."""
        norm = normalize_origin(origin)
        if norm is None:
            return False
        if self.is_known(norm):
            return True
        if not self._discover:
            return False
        with self._lock:
            now = self._clock()
            if self._refused.get(norm, 0) > now:
                return False
            # At most MAX_DISCOVERIES fetches a minute in all, so a page cannot make the wallet fetch from many hosts.
            self._fetches = [t for t in self._fetches if now - t < 60.0]
            if len(self._fetches) >= MAX_DISCOVERIES:
                return False
            self._fetches.append(now)
            if len(self._refused) > 10_000:
                self._refused = {o: t for o, t in self._refused.items() if t > now}
            # Remember the attempt at once so concurrent preflights do not fetch in parallel.
            self._refused[norm] = now + self._negative_ttl
        cert = self._fetch(norm)
        if cert is not None:
            try:
                self.add_certificate(cert)
            except NetPayError:
                return False
        return self.is_known(norm)

    def _fetch(self, origin: str) -> Signed[VendorCertificate] | None:
        try:
            url = require_secure_url(f"{origin}/v1/info", "vendor")
            resp = shared_session().get(url, timeout=self._fetch_timeout, allow_redirects=False)
            if resp.status_code != 200 or len(resp.content) > 64 * 1024:
                return None
            data: Any = resp.json()
            if not isinstance(data, dict):
                return None
            return Signed.from_wire(data.get("certificate"), VendorCertificate, "certificate")
        except (requests.RequestException, ValueError, NetPayError):
            return None

    def require(self, origin: str | None) -> str:
        """The normalised origin if allowed; :class:`Forbidden` otherwise."""
        norm = normalize_origin(origin)
        if norm is None or not self.is_allowed(norm):
            raise Forbidden("this origin is not a certified vendor origin", reason="origin")
        return norm
