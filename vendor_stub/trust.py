"""What the vendor trusts: the broker's key, its own broker-signed certificate, and the revocation list.

The broker key is pinned by settings, or learnt from ``GET /v1/info`` on first contact and then remembered in the
database (a later different key is refused). Coin certificates are verified once per chain and cached.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from netpay.errors import CertificateExpired, NetPayError, Revoked, UntrustedSigner
from netpay.keys import SigningKey, VerifyKey
from netpay.messages import CoinCertificate, VendorCertificate
from netpay.signed import Signed
from vendor_stub.broker_client import BrokerClient
from vendor_stub.storage import Store

__all__ = ["Trust"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _CachedCert:
    signature: bytes
    signer: VerifyKey
    body: CoinCertificate


class Trust:
    """Broker key, own certificate, revocations, and the per-chain certificate cache."""

    def __init__(self, store: Store, broker: BrokerClient, key: SigningKey, vendor_id: str, pinned: str = "") -> None:
        self._store = store
        self._broker = broker
        self._key = key
        self.vendor_id = vendor_id
        self._lock = threading.Lock()
        self._broker_key: VerifyKey | None = VerifyKey.from_hex(pinned) if pinned else None
        self.broker_id: str | None = store.get_meta("broker_id")
        if self._broker_key is None and (known := store.get_meta("broker_public_key")):
            self._broker_key = VerifyKey.from_hex(known)
        self._certificate: Signed[VendorCertificate] | None = None
        self._certs: dict[bytes, _CachedCert] = {}
        self.revoked_chains: frozenset[bytes] = frozenset()
        self.revoked_vendors: frozenset[str] = frozenset()
        self.revocation_serial = -1
        self.revocations_at = 0.0

    # -- the broker -------------------------------------------------------------------------------------------
    def broker_key(self) -> VerifyKey:
        """The trusted broker key; learnt from the broker on first contact (PeerUnavailable if it is down)."""
        if self._broker_key is not None and self.broker_id is not None:
            return self._broker_key
        with self._lock:
            if self._broker_key is None or self.broker_id is None:
                info = self._broker.info()
                key = VerifyKey.from_hex(str(info.get("public_key", "")))
                if self._broker_key is not None and key != self._broker_key:
                    raise UntrustedSigner("the broker presents a different key than the one this vendor trusts")
                self._store.set_meta("broker_public_key", key.hex)
                self._store.set_meta("broker_id", str(info.get("broker_id", "")))
                self._broker_key = key
                self.broker_id = str(info.get("broker_id", ""))
            return self._broker_key

    def certificate(self) -> Signed[VendorCertificate]:
        """This vendor's certificate from the broker (fetched once; PeerUnavailable/NotFound until registered)."""
        if self._certificate is not None:
            return self._certificate
        key = self.broker_key()
        cert = self._broker.vendor_certificate(self.vendor_id)
        body = cert.require_signer(key)
        if body.vendor_id != self.vendor_id or body.public_key != self._key.public:
            raise UntrustedSigner("the broker's certificate for this vendor names another id or key")
        self._certificate = cert
        return cert

    def has_certificate(self) -> bool:
        """Whether :meth:`certificate` answers without asking the broker."""
        return self._certificate is not None

    def refresh_revocations(self) -> None:
        """Fetch the broker's revocation list (keeps the old one if the broker is down)."""
        key = self.broker_key()
        signed = self._broker.revocations()
        body = signed.require_signer(key)
        if body.serial >= self.revocation_serial:
            self.revoked_chains = frozenset(body.chains)
            self.revoked_vendors = frozenset(body.vendors)
            self.revocation_serial = body.serial
        self.revocations_at = time.monotonic()

    def maybe_refresh_revocations(self, every_s: float) -> None:
        if time.monotonic() - self.revocations_at >= every_s:
            try:
                self.refresh_revocations()
            except NetPayError as exc:
                log.info("revocation list not refreshed: %s", exc.message)
                self.revocations_at = time.monotonic()

    # -- coin certificates ------------------------------------------------------------------------------------
    def check_coin_certificate(self, cert: Signed[CoinCertificate], now: int) -> CoinCertificate:
        """Broker-signed (verified once per chain, then cached), unexpired, not revoked."""
        body = cert.body
        cached = self._certs.get(body.chain_id)
        if (cached is None or cached.signature != cert.signature or cached.signer != cert.signer
                or (cached.body is not body and cached.body != body)):  # fmt: skip
            key = self.broker_key()
            cert.verify_signature()
            cert.require_signer(key)
            if self.broker_id and body.broker_id != self.broker_id:
                raise UntrustedSigner("the coin certificate names another broker")
            self._certs[body.chain_id] = _CachedCert(cert.signature, cert.signer, body)
        if not body.issued_at - 300 <= now < body.expires_at:
            cid = body.chain_id.hex()
            raise CertificateExpired(f"chain {cid} is outside its validity period", chain_id=cid)
        if body.chain_id in self.revoked_chains:
            raise Revoked(f"chain {body.chain_id.hex()} is revoked", chain_id=body.chain_id.hex())
        return body

    def check_vendor_certificate(self, cert: Signed[VendorCertificate], now: int) -> VendorCertificate:
        """Another vendor's certificate: broker-signed, unexpired, not revoked."""
        body = cert.require_signer(self.broker_key())
        if not body.issued_at - 300 <= now < body.expires_at:
            raise CertificateExpired(f"vendor certificate of {body.vendor_id} is outside its validity period")
        if body.vendor_id in self.revoked_vendors:
            raise Revoked(f"vendor {body.vendor_id} is revoked")
        return body
