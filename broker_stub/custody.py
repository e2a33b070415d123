"""Custody claims and spend reports: who holds each chain, and a verified lower bound of its index."""

from __future__ import annotations

import json
from typing import Any

from broker_stub.core import BrokerCore, request_hash
from broker_stub.hosted import outside_grants
from broker_stub.points import verify_point
from broker_stub.vendors import VendorService, parse_signed
from netpay.errors import CertificateExpired, Forbidden, NetPayError, NotFound, ReplayedRequest, Revoked
from netpay.messages import CustodyClaim, SpendReport
from netpay_web.db import lock_keys

__all__ = ["CustodyService"]


class CustodyService:
    """``POST /v1/custody/claims`` and ``POST /v1/spend-reports``."""

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
            previous = None
            if chain["custodian"] is not None and chain["custodian"] != claim.vendor_id:
                prev = c.execute(
                    "SELECT vendor_id, api_url FROM vendors WHERE vendor_id = ?", (chain["custodian"],)
                ).fetchone()
                previous = {"vendor_id": prev["vendor_id"], "api_url": prev["api_url"]}
            if chain["custodian"] != claim.vendor_id:
                seq = c.execute("SELECT COUNT(*) FROM custody WHERE chain_id = ?", (cid,)).fetchone()[0]
                c.execute(
                    "INSERT INTO custody (chain_id, seq, vendor_id, claimed_at, lower_index) VALUES (?,?,?,?,?)",
                    (cid, seq + 1, claim.vendor_id, self.core.now(), chain["reported_index"]),
                )
                c.execute("UPDATE chains SET custodian = ? WHERE chain_id = ?", (claim.vendor_id, cid))
        return {
            "chain_id": cid,
            "custodian": claim.vendor_id,
            "previous": previous,
            "lower_bound": {"index": chain["reported_index"], "payword": bytes(chain["reported_payword"]).hex()},
        }

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
                    if (why := outside_grants(c, report.vendor_id, cid, entry.from_index, entry.to_index)) is not None:
                        raise Forbidden(why, chain_id=cid, reason="outside_grant")
                    if chain["final_index"] is not None and entry.to_index > chain["final_index"]:
                        raise Revoked(
                            "the chain was closed below this index", chain_id=cid, final_index=chain["final_index"]
                        )
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
