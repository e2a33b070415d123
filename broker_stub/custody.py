"""Custody claims, releases and spend reports: who holds each chain in which window, and a verified lower bound of
its index (see :mod:`broker_stub.windows`)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from broker_stub import windows
from broker_stub.core import BrokerCore, request_hash
from broker_stub.points import verify_point
from broker_stub.vendors import VendorService, parse_signed
from netpay.errors import (
    CertificateExpired,
    Conflict,
    Forbidden,
    InvalidPayword,
    MalformedMessage,
    NetPayError,
    NotFound,
    ReplayedRequest,
    Revoked,
)
from netpay.keys import VerifyKey
from netpay.messages import CustodyClaim, CustodyGrant, CustodyRelease, SpendReport
from netpay.signed import Signed
from netpay_web.db import lock_keys

__all__ = ["CustodyService"]


class CustodyService:
    """``POST /v1/custody/claims``, ``POST /v1/custody/releases`` and ``POST /v1/spend-reports``."""

    def __init__(self, core: BrokerCore, vendors: VendorService) -> None:
        self.core = core
        self.vendors = vendors

    def claim(self, data: Any) -> dict[str, Any]:
        signed = parse_signed(data, CustodyClaim)
        claim: CustodyClaim = signed.body
        self.vendors.check_signed(signed, claim.vendor_id, claim.claimed_at)
        cid = claim.chain_id.hex()
        with self.core.db.tx() as c:
            lock_keys(c, f"chain:{cid}")  # two vendors claiming at once: one after the other
            chain = c.execute("SELECT * FROM chains WHERE chain_id = ?", (cid,)).fetchone()
            if chain is None:
                raise NotFound("no such chain", chain_id=cid)
            if chain["revoked"] or chain["status"] != "active":
                raise Revoked("this chain is closed or revoked", chain_id=cid, status=chain["status"])
            if chain["expires_at"] <= self.core.now():
                raise CertificateExpired("this chain's coin certificate has expired", chain_id=cid)
            if c.execute("SELECT 1 FROM hosted_chains WHERE chain_id = ?", (cid,)).fetchone():
                raise Forbidden("a hosted chain goes to vendors only through grants", chain_id=cid, reason="hosted")
            self.vendors.use_nonce(c, claim.vendor_id, claim.nonce, claim.claimed_at)
            now = self.core.now()
            previous = None
            grant = None
            if chain["custodian"] is not None and chain["custodian"] != claim.vendor_id:
                prev = c.execute(
                    "SELECT vendor_id, api_url FROM vendors WHERE vendor_id = ?", (chain["custodian"],)
                ).fetchone()
                previous = {"vendor_id": prev["vendor_id"], "api_url": prev["api_url"]}
            if chain["custodian"] != claim.vendor_id:
                seq = windows.open_window(c, cid, claim.vendor_id, chain["reported_index"], now)
                c.execute("UPDATE chains SET custodian = ? WHERE chain_id = ?", (claim.vendor_id, cid))
            else:
                seq = int(c.execute("SELECT MAX(seq) FROM custody WHERE chain_id = ?", (cid,)).fetchone()[0])
            if previous is not None:
                grant = Signed.sign(
                    CustodyGrant(claim.chain_id, claim.vendor_id, previous["vendor_id"], seq, chain["reported_index"],
                                 now),
                    self.core.key,
                ).to_wire()  # fmt: skip
        return {
            "chain_id": cid,
            "custodian": claim.vendor_id,
            "previous": previous,
            "lower_bound": {"index": chain["reported_index"], "payword": bytes(chain["reported_payword"]).hex()},
            "window": seq,
            "grant": grant,
        }

    def release(self, data: Any) -> dict[str, Any]:
        """Record a custodian's signed release (sent by either vendor of the hand-off): it bounds both windows."""
        release = Signed.from_wire(data, CustodyRelease, "body")
        with self.core.db.tx() as c:
            lock_keys(c, f"chain:{release.body.chain_id.hex()}")
            outcome = self.record_release(c, release)
            if outcome not in ("recorded", "known"):
                raise Conflict(f"this release does not fit the chain's custody ({outcome})", reason=outcome)
            return {"chain_id": release.body.chain_id.hex(), "recorded": outcome == "recorded"}

    @staticmethod
    def record_release(c: sqlite3.Connection, release: Signed[CustodyRelease]) -> str:
        """Check a release (signed by the vendor it names, payword on the chain) and bound the windows it ends and
        starts. Raises for a release that is not genuine; returns :func:`broker_stub.windows.record_release`'s
        outcome otherwise."""
        rel = release.body
        cid = rel.chain_id.hex()
        chain = c.execute("SELECT length FROM chains WHERE chain_id = ?", (cid,)).fetchone()
        if chain is None:
            raise NotFound("no such chain", chain_id=cid)
        key = c.execute("SELECT public_key FROM vendors WHERE vendor_id = ?", (rel.released_by,)).fetchone()
        if key is None or release.signer != VerifyKey.from_hex(key[0]):
            raise MalformedMessage("the release is not signed by the vendor it names", field="release")
        if rel.last_index > chain[0] or rel.released_to == "broker":
            raise MalformedMessage("the release is beyond the chain or not to a vendor", field="release")
        try:
            verify_point(c, cid, rel.last_index, rel.last_payword)
        except InvalidPayword:
            raise MalformedMessage("the release's payword is not on the chain", field="release.last_payword") from None
        outcome = windows.record_release(c, cid, rel.released_by, rel.released_to, rel.last_index)
        if outcome in ("recorded", "known"):
            c.execute(
                "INSERT INTO releases (chain_id, released_by, released_to, last_index, wire) "
                "VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING",
                (cid, rel.released_by, rel.released_to, rel.last_index, json.dumps(release.to_wire())),
            )
        return outcome

    def spend_report(self, data: Any) -> dict[str, Any]:
        signed = parse_signed(data, SpendReport)
        report: SpendReport = signed.body
        self.vendors.check_signed(signed, report.vendor_id, report.reported_at)
        req = request_hash(data)
        accepted: list[dict[str, Any]] = []
        rejected: list[dict[str, Any]] = []
        first_error: NetPayError | None = None
        with self.core.db.tx() as c:
            lock_keys(
                c,
                f"report:{report.vendor_id}:{report.report_id}",
                *(f"chain:{e.chain_id.hex()}" for e in report.entries),
            )
            row = c.execute(
                "SELECT request_hash, response FROM spend_reports WHERE vendor_id = ? AND report_id = ?",
                (report.vendor_id, report.report_id),
            ).fetchone()
            if row is not None:
                if row[0] != req:
                    raise ReplayedRequest("this report_id was used for another report", report_id=report.report_id)
                stored: dict[str, Any] = json.loads(row[1])
                return stored
            for entry in report.entries:
                cid = entry.chain_id.hex()
                try:
                    chain = c.execute("SELECT * FROM chains WHERE chain_id = ?", (cid,)).fetchone()
                    if chain is None:
                        raise NotFound("no such chain", chain_id=cid)
                    if entry.to_index > chain["length"]:
                        raise NotFound("to_index is beyond the chain's length", chain_id=cid)
                    held = c.execute(
                        "SELECT 1 FROM custody WHERE chain_id = ? AND vendor_id = ? LIMIT 1", (cid, report.vendor_id)
                    ).fetchone()
                    if held is None:
                        raise Forbidden("this vendor never held custody of the chain", chain_id=cid)
                    if chain["final_index"] is not None and entry.to_index > chain["final_index"]:
                        raise Revoked(
                            "the chain was closed below this index", chain_id=cid, final_index=chain["final_index"]
                        )
                    end = chain["final_index"] if chain["final_index"] is not None else chain["length"]
                    if out := windows.outside(c, cid, end, report.vendor_id, entry.from_index, entry.to_index):
                        # the same rule as redemption's: a vendor reports only coins of its own custody windows (a
                        # hosted grant's vendor knows the paywords of the part of its slice it released)
                        raise Forbidden("these coins are outside this vendor's custody windows", chain_id=cid,
                                        reason="outside_custody", outside=[list(p) for p in out])  # fmt: skip
                    verify_point(c, cid, entry.to_index, entry.payword)
                    if entry.to_index > chain["reported_index"]:
                        c.execute(
                            "UPDATE chains SET reported_index = ?, reported_payword = ? WHERE chain_id = ?",
                            (entry.to_index, entry.payword, cid),
                        )
                    accepted.append(entry.to_json())
                except NetPayError as exc:
                    first_error = first_error or exc
                    rejected.append({"entry": entry.to_json(), "code": exc.code, "message": exc.message})
            if not accepted:
                assert first_error is not None
                first_error.details["rejected"] = rejected
                raise first_error
            response = {"report_id": report.report_id, "accepted": accepted, "rejected": rejected}
            c.execute(
                "INSERT INTO spend_reports (vendor_id, report_id, request_hash, response, at) VALUES (?,?,?,?,?)",
                (report.vendor_id, report.report_id, req, json.dumps(response), self.core.now()),
            )
        return response
