"""Vendor registration (operator), vendor certificates, and authentication of vendor-signed requests."""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
from typing import Any

from broker_stub.core import BrokerCore
from netpay.encoding import FieldReader
from netpay.errors import (
    CertificateExpired,
    Conflict,
    MalformedMessage,
    NotFound,
    ReplayedRequest,
    Revoked,
    StaleRequest,
    UntrustedSigner,
)
from netpay.keys import VerifyKey
from netpay.messages import VendorCertificate
from netpay.signed import Body, Signed
from netpay_web.db import IntegrityError, lock_keys

__all__ = ["VendorService"]

_VENDOR_ID = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")


class VendorService:
    """Registers vendors and checks that a signed request really comes from the vendor it names."""

    def __init__(self, core: BrokerCore) -> None:
        self.core = core

    def register(self, data: Any) -> tuple[int, dict[str, Any]]:
        r = FieldReader(data, "body")
        vendor_id = r.text("vendor_id", 64)
        display_name = r.text("display_name", 120)
        public_key = r.hex("public_key", 32)
        origins = r.raw("origins")
        api_url = r.raw("api_url")
        payment_url = r.raw("payment_url")
        r.done()
        if not _VENDOR_ID.match(vendor_id) or vendor_id == "broker":
            raise MalformedMessage("body.vendor_id may hold letters, digits and ._- (1 to 64)", field="body.vendor_id")
        now = self.core.now()
        body = VendorCertificate.from_body(
            {
                "vendor_id": vendor_id,
                "display_name": display_name,
                "public_key": public_key.hex(),
                "origins": origins,
                "api_url": api_url,
                "payment_url": payment_url,
                "broker_id": self.core.broker_id,
                "issued_at": now,
                "expires_at": now + self.core.settings.vendor_cert_validity_s,
            },
            "body",
        )
        with self.core.db.tx() as c:
            lock_keys(c, f"vendor:{vendor_id}")
            row = c.execute(
                "SELECT public_key, revoked, certificate FROM vendors WHERE vendor_id = ?", (vendor_id,)
            ).fetchone()
            if row is not None:
                if row["revoked"]:
                    raise Revoked("this vendor is revoked", vendor_id=vendor_id)
                if row["public_key"] != body.public_key.hex:
                    raise Conflict("this vendor id is registered with another key", field="body.vendor_id")
                old = json.loads(row["certificate"])["body"]
                if {k: v for k, v in old.items() if k not in ("issued_at", "expires_at")} == {
                    k: v for k, v in body.to_body().items() if k not in ("issued_at", "expires_at")
                }:
                    return 200, {"certificate": json.loads(row["certificate"])}
            cert = Signed.sign(body, self.core.key).to_wire()
            c.execute(
                "INSERT INTO vendors (vendor_id, display_name, public_key, origins, api_url, payment_url, "
                "certificate, registered_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (vendor_id) DO UPDATE SET "
                "display_name = excluded.display_name, origins = excluded.origins, api_url = excluded.api_url, "
                "payment_url = excluded.payment_url, certificate = excluded.certificate",
                (
                    vendor_id,
                    body.display_name,
                    body.public_key.hex,
                    json.dumps(list(body.origins)),
                    body.api_url,
                    body.payment_url,
                    json.dumps(cert),
                    now,
                ),
            )
        return 201, {"certificate": cert}

    def revoke(self, vendor_id: str, reason: str = "operator") -> dict[str, Any]:
        """Put a vendor on the revocation list: its certificate and signed requests are refused from now on."""
        from broker_stub.revocation import revoke

        with self.core.db.tx() as c:
            if c.execute("SELECT 1 FROM vendors WHERE vendor_id = ?", (vendor_id,)).fetchone() is None:
                raise NotFound("no such vendor", vendor_id=vendor_id)
            revoke(c, "vendor", vendor_id, reason, self.core.now())
            serial = c.execute(
                "SELECT serial FROM revocations WHERE kind = 'vendor' AND ident = ?", (vendor_id,)
            ).fetchone()[0]
        return {"vendor_id": vendor_id, "revoked": True, "serial": int(serial)}

    def certificate(self, vendor_id: str) -> dict[str, Any]:
        row = self.core.db.one("SELECT certificate, revoked FROM vendors WHERE vendor_id = ?", (vendor_id,))
        if row is None:
            raise NotFound("no such vendor", vendor_id=vendor_id)
        if row["revoked"]:
            raise Revoked("this vendor is revoked", vendor_id=vendor_id)
        cert: dict[str, Any] = json.loads(row["certificate"])
        return cert

    def vendor_row(self, vendor_id: str) -> sqlite3.Row:
        """The registered vendor; unknown → ``untrusted_signer``, certificate past its expiry → ``expired``."""
        row = self.core.db.one("SELECT * FROM vendors WHERE vendor_id = ?", (vendor_id,))
        if row is None:
            raise UntrustedSigner("no vendor is registered with this id", vendor_id=vendor_id)
        if json.loads(row["certificate"])["body"]["expires_at"] <= self.core.now():
            raise CertificateExpired("this vendor's certificate has expired; register it again", vendor_id=vendor_id)
        return row

    def check_signed(self, signed: Signed[Any], vendor_id: str, at: int) -> sqlite3.Row:
        """Check that ``signed`` is signed by the registered, unrevoked key of ``vendor_id`` and is fresh."""
        row = self.vendor_row(vendor_id)
        signed.require_signer(VerifyKey.from_hex(row["public_key"]))
        if row["revoked"]:
            raise Revoked("this vendor is revoked", vendor_id=vendor_id)
        skew = self.core.settings.max_clock_skew_s
        if abs(self.core.now() - at) > skew:
            raise StaleRequest(f"timestamp is more than {skew} s from the broker's clock", broker_time=self.core.now())
        return row

    def use_nonce(self, conn: sqlite3.Connection, vendor_id: str, nonce: str, at: int) -> None:
        """Record a nonce inside the caller's transaction; a nonce seen before raises :class:`ReplayedRequest`.

        Now and then nonces older than twice the allowed clock skew are dropped: such requests are refused as
        ``stale`` anyway, so the table stays small."""
        if secrets.randbelow(256) == 0:
            conn.execute(
                "DELETE FROM nonces WHERE at < ?", (self.core.now() - 2 * self.core.settings.max_clock_skew_s,)
            )
        try:
            conn.execute("INSERT INTO nonces (vendor_id, nonce, at) VALUES (?,?,?)", (vendor_id, nonce, at))
        except IntegrityError:
            raise ReplayedRequest("this nonce was already used", nonce=nonce) from None


def parse_signed(data: Any, kind: type[Body]) -> Signed[Any]:
    """Parse a vendor-signed wire object (checks the signature against its embedded key)."""
    return Signed.from_wire(data, kind, "body")


__all__ += ["parse_signed"]
