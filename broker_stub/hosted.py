"""Hosted e-wallets (Mobile-NetPay, seed 002 §3.1 and §5) with grants instead of whole wallets.

The broker generates chains for an account and keeps their seeds sealed (AES-GCM, key file ``hosted.key`` in the
data dir, the chain id as associated data). They are bought from the account balance exactly like a wallet's chain
(:meth:`IssuingService.purchase`: same ledger entries, same certificate). A vendor never gets a seed: for a grant of
b coins at index I it gets the coin certificate and W_{I+b}, so it can compute coins I+1..I+b and nothing above.

Grants come from an authorization-code redirect (:mod:`broker_stub.hosted_pages`): the customer approves a budget and a
duration for the vendor named in its certificate, the broker stores the hash of a one-use code bound to the vendor,
the redirect URI and a PKCE S256 challenge; the vendor redeems the code with a signed :class:`GrantRequest`.

Each grant is a custody window of the chain (:func:`broker_stub.windows.open_grant_window`): coins
``from_index+1..to_index``, both bounds hard, so the rules that pay any chain's coins (redemption inside the
claimant's windows, the overlap rule, spend reports inside the reporter's windows) pay a hosted chain's too. One chain
has at most one active grant (one custodian). When another vendor (or the same one again) needs the chain,
or the customer revokes a grant, or it expires, the broker ends the grant with the existing close request (the
custodian's signed release at its last index, :meth:`ClosingService._ask_custodian`): the coins above that index are
the hosted wallet's again. A custodian that does not answer keeps its whole slice (it may have spent it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker_stub import windows
from broker_stub.closing import ClosingService
from broker_stub.core import BrokerCore, request_hash
from broker_stub.issuing import IssuingService
from broker_stub.points import verify_point, walk
from broker_stub.vendors import VendorService, parse_signed
from netpay.encoding import FieldReader
from netpay.errors import (
    CertificateExpired,
    Forbidden,
    InsufficientCoins,
    MalformedMessage,
    NetPayError,
    NotFound,
    ReplayedRequest,
)
from netpay.messages import CustodyRelease, GrantRequest, HostedGrant
from netpay.money import Money
from netpay.signed import Signed
from netpay_web.db import lock_keys

__all__ = ["CODE_TTL_S", "DURATIONS", "HostedService", "pkce_challenge"]

#: An authorization code is good for this long, once.
CODE_TTL_S = 120
#: Grant durations the approve form offers (seconds → label).
DURATIONS: dict[int, str] = {3600: "1 hour", 86400: "1 day", 7 * 86400: "7 days", 30 * 86400: "30 days"}


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636 §4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of an http(s) URL (lowercase scheme and host), or '' if it has none."""
    if "://" not in url:
        return ""
    scheme, rest = url.split("://", 1)
    host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "@" in host or not host:
        return ""
    return f"{scheme.lower()}://{host.lower()}"


class _Sealer:
    """AES-GCM sealing of seeds under a 256-bit key kept in the data dir (created 0600 on first use)."""

    def __init__(self, path: Path) -> None:
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, AESGCM.generate_key(bit_length=256))
                os.fsync(fd)
            finally:
                os.close(fd)
        self._key = path.read_bytes()
        self._aead = AESGCM(self._key)

    def derive(self, label: str, message: str) -> bytes:
        """32 bytes only this broker can compute: HMAC-SHA256 under a key derived from the sealing key."""
        key = hmac.new(self._key, b"netpay-hosted-derive", hashlib.sha256).digest()
        return hmac.new(key, f"{label}|{message}".encode(), hashlib.sha256).digest()

    def seal(self, chain_id: str, seed: bytes) -> tuple[bytes, bytes]:
        nonce = secrets.token_bytes(12)
        return nonce, self._aead.encrypt(nonce, seed, chain_id.encode())

    def open(self, chain_id: str, nonce: bytes, sealed: bytes) -> bytes:
        return self._aead.decrypt(nonce, sealed, chain_id.encode())


class HostedService:
    """Hosted chains, authorization codes and grants of one broker."""

    def __init__(self, core: BrokerCore, issuing: IssuingService, vendors: VendorService,
                 closing: ClosingService) -> None:  # fmt: skip
        self.core = core
        self.issuing = issuing
        self.vendors = vendors
        self.closing = closing
        self._sealer = _Sealer(Path(core.settings.data_dir) / "hosted.key")

    # -- buying and returning hosted chains ------------------------------------------------------------------------
    def buy(self, account_id: str, data: Any, idem_key: str) -> tuple[int, dict[str, Any]]:
        """``POST /v1/account/hosted/chains`` ``{"length", "coin_value"}``: a chain the broker generates and keeps,
        paid from the account balance (no card)."""
        r = FieldReader(data, "body")
        length = r.integer("length", 1)
        coin_value = Money.from_json(r.raw("coin_value"), "body.coin_value")
        r.done()
        # Chain id and seed come from the request and its key (HMAC under the sealing key): a retry rebuilds the
        # very same chain, so the sale's own idempotency (IssuingService) answers it, even after a crash between
        # storing the seed and selling the chain.
        req = request_hash({"account": account_id, "key": idem_key, "body": data})
        chain_id = self._sealer.derive("chain-id", req)[:16]
        seed = self._sealer.derive("seed", req)
        cid = chain_id.hex()
        touchstone = walk(chain_id, seed, length, 0) if length <= self.core.settings.chain_length_max else b"\0" * 32
        nonce, sealed = self._sealer.seal(cid, seed)
        with self.core.db.tx() as c:  # the seed first: a chain sold without its seed would be lost money
            c.execute(
                "INSERT INTO hosted_chains (chain_id, account_id, seed_nonce, seed_sealed, free_index, created_at) "
                "VALUES (?,?,?,?,0,?) ON CONFLICT DO NOTHING",
                (cid, account_id, nonce, sealed, self.core.now()),
            )
        body = {"chain_id": cid, "touchstone": touchstone.hex(), "length": length, "coin_value": coin_value.to_json()}
        try:
            status, answer = self.issuing.purchase(account_id, body, "hosted:" + idem_key)
        except NetPayError:
            with self.core.db.tx() as c:  # never sold: forget the seed
                c.execute("DELETE FROM hosted_chains WHERE chain_id = ? AND chain_id NOT IN (SELECT chain_id FROM "
                          "chains)", (cid,))  # fmt: skip
            raise
        result = {"chain_id": cid, "certificate": answer["certificate"], "balance": answer["balance"],
                  "hosted": self.summary(account_id)["hosted_balance"]}  # fmt: skip
        return status, result

    def return_chain(self, account_id: str, chain_id: str) -> dict[str, Any]:
        """``POST /v1/account/hosted/chains/{id}/return``: end its grant, close it, refund the unspent coins."""
        row = self._own_chain(account_id, chain_id)
        self._end_active_grants(chain_id, "returned")
        with self.core.db.tx() as c:
            # Coins handed to a vendor that never released them count as spent: the refund never pays them twice.
            self._raise_lower_bound(c, row, int(c.execute(
                "SELECT free_index FROM hosted_chains WHERE chain_id = ?", (chain_id,)).fetchone()[0]))  # fmt: skip
        return self.closing.close(account_id, chain_id)

    def refuse_hosted(self, chain_id: str) -> None:
        """``POST /v1/chains/{id}/close`` is for a wallet's own chains: a hosted one returns through
        :meth:`return_chain`, which ends its grant first (else a refund could pay coins a vendor still holds)."""
        if self.core.db.one("SELECT 1 FROM hosted_chains WHERE chain_id = ?", (chain_id,)) is not None:
            raise Forbidden("a hosted chain returns through POST /v1/account/hosted/chains/{id}/return",
                            chain_id=chain_id, reason="hosted")  # fmt: skip

    # -- the customer's view -------------------------------------------------------------------------------------
    def summary(self, account_id: str) -> dict[str, Any]:
        """``GET /v1/account/hosted``: hosted balance (not yet granted), each grant with what its vendor reported,
        each hosted chain."""
        self.expire_due(account_id)
        chains = self.core.db.query(
            "SELECT h.chain_id, h.free_index, c.length, c.coin_value, c.status, c.reported_index, c.refund "
            "FROM hosted_chains h JOIN chains c ON c.chain_id = h.chain_id WHERE h.account_id = ? "
            "ORDER BY h.created_at, h.chain_id",
            (account_id,),
        )
        grants = self.core.db.query(
            "SELECT g.*, v.display_name, c.reported_index FROM hosted_grants g "
            "JOIN vendors v ON v.vendor_id = g.vendor_id JOIN chains c ON c.chain_id = g.chain_id "
            "WHERE g.account_id = ? ORDER BY g.issued_at DESC, g.grant_id",
            (account_id,),
        )
        free = sum((r["length"] - r["free_index"]) * r["coin_value"] for r in chains if r["status"] == "active")
        granted = 0
        out_grants = []
        for g in grants:
            top = g["end_index"] if g["status"] != "active" and g["end_index"] is not None else g["to_index"]
            spent_to = min(max(g["from_index"], g["reported_index"]), top)
            if g["status"] != "active" and g["end_index"] is not None:
                spent_to = g["end_index"]
            spent = (spent_to - g["from_index"]) * g["coin_value"]
            left = (g["to_index"] - spent_to) * g["coin_value"] if g["status"] == "active" else 0
            granted += left
            out_grants.append({
                "grant_id": g["grant_id"], "vendor_id": g["vendor_id"], "vendor_name": g["display_name"],
                "status": g["status"], "budget": self.core.money((g["to_index"] - g["from_index"]) * g["coin_value"]
                                                                 ).to_json(),
                "spent": self.core.money(spent).to_json(), "remaining": self.core.money(left).to_json(),
                "issued_at": g["issued_at"], "expires_at": g["expires_at"], "ended_at": g["ended_at"],
                "end_reason": g["end_reason"], "chain_id": g["chain_id"],
                "purchases": self._reported_spends(g),
            })  # fmt: skip
        return {
            "hosted_balance": self.core.money(free).to_json(),
            "granted": self.core.money(granted).to_json(),
            "grants": out_grants,
            "chains": [
                {"chain_id": r["chain_id"], "length": r["length"], "coin_value": self.core.money(r["coin_value"]
                                                                                                 ).to_json(),
                 "status": r["status"], "free_index": r["free_index"],
                 "refund": self.core.money(r["refund"]).to_json() if r["refund"] is not None else None}
                for r in chains
            ],
        }  # fmt: skip

    def _reported_spends(self, grant: sqlite3.Row) -> list[dict[str, Any]]:
        """The spends the grant's vendor reported on the grant's slice (from its spend reports), oldest first."""
        rows = self.core.db.query(
            "SELECT response, at FROM spend_reports WHERE vendor_id = ? AND at >= ? ORDER BY at", (grant["vendor_id"],
                                                                                                  grant["issued_at"])
        )  # fmt: skip
        out: list[dict[str, Any]] = []
        last = grant["from_index"]
        for row in rows:
            for entry in json.loads(row["response"]).get("accepted", []):
                if entry.get("chain_id") != grant["chain_id"]:
                    continue
                to = int(entry.get("to_index", 0))
                if last < to <= grant["to_index"]:
                    out.append({"at": row["at"], "coins": to - last,
                                "amount": self.core.money((to - last) * grant["coin_value"]).to_json()})  # fmt: skip
                    last = to
        return out

    # -- authorization codes -------------------------------------------------------------------------------------
    def check_client(self, vendor_id: str, redirect_uri: str) -> sqlite3.Row:
        """The vendor asking, if registered, unrevoked and ``redirect_uri`` is on one of its certified origins."""
        row = self.vendors.vendor_row(vendor_id)
        if row["revoked"]:
            raise Forbidden("this vendor is revoked", vendor_id=vendor_id, reason="vendor_revoked")
        origins = json.loads(row["origins"]) if row["origins"].startswith("[") else [row["origins"]]
        if origin_of(redirect_uri) not in {o.lower() for o in origins}:
            raise Forbidden("the redirect URI is not on an origin in the vendor's certificate",
                            redirect_uri=redirect_uri, reason="redirect_uri")  # fmt: skip
        return row

    def issue_code(self, account_id: str, vendor_id: str, redirect_uri: str, challenge: str, budget: Money,
                   duration_s: int) -> str:  # fmt: skip
        """Store a one-use code for an approved grant; return the code (only its hash is kept)."""
        self.check_client(vendor_id, redirect_uri)
        if duration_s not in DURATIONS:
            raise MalformedMessage("duration must be one of the offered ones", field="duration")
        if not 0 < budget.amount <= self.core.settings.max_charge:
            raise MalformedMessage("the budget must be positive", field="budget")
        code = secrets.token_urlsafe(32)
        now = self.core.now()
        with self.core.db.tx() as c:
            c.execute(
                "INSERT INTO hosted_codes (code_hash, account_id, vendor_id, redirect_uri, code_challenge, budget, "
                "duration_s, created_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (_code_hash(code), account_id, vendor_id, redirect_uri, challenge, budget.amount, duration_s, now,
                 now + CODE_TTL_S),
            )  # fmt: skip
        return code

    # -- grants ----------------------------------------------------------------------------------------------------
    def redeem_code(self, data: Any) -> dict[str, Any]:
        """``POST /v1/hosted/grants`` (vendor-signed :class:`GrantRequest`): the code becomes a grant."""
        signed = parse_signed(data, GrantRequest)
        req: GrantRequest = signed.body
        self.vendors.check_signed(signed, req.vendor_id, req.requested_at)
        now = self.core.now()
        with self.core.db.tx() as c:
            self.vendors.use_nonce(c, req.vendor_id, req.nonce, req.requested_at)
            code = c.execute("SELECT * FROM hosted_codes WHERE code_hash = ?", (_code_hash(req.code),)).fetchone()
            if code is None:
                raise Forbidden("unknown authorization code", reason="invalid_code")
            if code["used_at"] is not None:
                raise ReplayedRequest("this authorization code was already used", reason="code_used")
            if code["vendor_id"] != req.vendor_id:
                raise Forbidden("this authorization code was issued to another vendor", reason="wrong_vendor")
            if code["redirect_uri"] != req.redirect_uri:
                raise Forbidden("the redirect URI differs from the one the code was sent to", reason="redirect_uri")
            if not hmac.compare_digest(pkce_challenge(req.code_verifier), code["code_challenge"]):
                raise Forbidden("the PKCE code verifier does not match the challenge", reason="pkce")
            if code["expires_at"] <= now:
                raise CertificateExpired("this authorization code has expired; ask the customer again")
            c.execute("UPDATE hosted_codes SET used_at = ? WHERE code_hash = ?", (now, code["code_hash"]))
        return self._grant(code["account_id"], req.vendor_id, int(code["budget"]), now + int(code["duration_s"]))

    def _grant(self, account_id: str, vendor_id: str, budget: int, expires_at: int) -> dict[str, Any]:
        self.expire_due(account_id)
        chain = self._pick_chain(account_id, budget)
        cid = chain["chain_id"]
        for row in self.core.db.query("SELECT * FROM hosted_grants WHERE chain_id = ? AND status = 'active'", (cid,)):
            # the e-wallet moves (or the same shop asks again): the last custodian releases first
            self._end_grant(row, "renewed" if row["vendor_id"] == vendor_id else "handed_on")
        with self.core.db.tx() as c:
            lock_keys(c, f"chain:{cid}")  # two grants of one chain at once (two processes): one after the other
            h = c.execute("SELECT * FROM hosted_chains WHERE chain_id = ?", (cid,)).fetchone()
            ch = c.execute("SELECT * FROM chains WHERE chain_id = ?", (cid,)).fetchone()
            if c.execute("SELECT 1 FROM hosted_grants WHERE chain_id = ? AND status = 'active'", (cid,)).fetchone():
                raise InsufficientCoins("this hosted chain is still held by a vendor that did not release it")
            start = int(h["free_index"])
            coins = min(budget // int(ch["coin_value"]), int(ch["length"]) - start)
            if coins <= 0:
                raise InsufficientCoins("the hosted e-wallet has no coins left for this budget")
            seed = self._sealer.open(cid, bytes(h["seed_nonce"]), bytes(h["seed_sealed"]))
            chain_id = bytes.fromhex(cid)
            top = walk(chain_id, seed, int(ch["length"]), start + coins)
            self._raise_lower_bound(c, ch, start, seed)
            now = self.core.now()
            expires_at = min(expires_at, int(ch["expires_at"]))
            grant_id = "grant_" + secrets.token_hex(12)
            grant = Signed.sign(
                HostedGrant(grant_id, self.core.broker_id, vendor_id, chain_id, start, start + coins, top, now,
                            expires_at),
                self.core.key,
            )  # fmt: skip
            wire = grant.to_wire()
            c.execute(
                "INSERT INTO hosted_grants (grant_id, account_id, vendor_id, chain_id, from_index, to_index, "
                "coin_value, issued_at, expires_at, wire) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (grant_id, account_id, vendor_id, cid, start, start + coins, ch["coin_value"], now, expires_at,
                 json.dumps(wire)),
            )  # fmt: skip
            c.execute("UPDATE hosted_chains SET free_index = ? WHERE chain_id = ?", (start + coins, cid))
            windows.open_grant_window(c, cid, vendor_id, start, start + coins, now)
            c.execute("UPDATE chains SET custodian = ? WHERE chain_id = ?", (vendor_id, cid))
        return {"grant": wire, "certificate": json.loads(ch["certificate"])}

    def _pick_chain(self, account_id: str, budget: int) -> sqlite3.Row:
        """The active hosted chain with the most coins not yet spent (counting an active grant's unspent part)."""
        rows = self.core.db.query(
            "SELECT h.chain_id, c.length, c.coin_value, c.reported_index, h.free_index, c.expires_at FROM "
            "hosted_chains h JOIN chains c ON c.chain_id = h.chain_id WHERE h.account_id = ? AND c.status = 'active' "
            "AND c.revoked = 0 AND c.expires_at > ?",
            (account_id, self.core.now()),
        )
        best = max(rows, key=lambda r: r["length"] - max(r["reported_index"], 0), default=None)
        if best is None or (best["length"] - best["reported_index"]) * best["coin_value"] < min(
            budget, best["coin_value"]
        ):
            raise InsufficientCoins("the hosted e-wallet is empty: buy hosted coins first")
        return best

    def revoke(self, account_id: str, grant_id: str) -> dict[str, Any]:
        """The customer ends a grant: the vendor releases the chain, the unspent part is the hosted wallet's again."""
        row = self.core.db.one("SELECT * FROM hosted_grants WHERE grant_id = ? AND account_id = ?",
                               (grant_id, account_id))  # fmt: skip
        if row is None:
            raise NotFound("no such grant on this account", grant_id=grant_id)
        if row["status"] == "active":
            self._end_grant(row, "revoked")
        return self.summary(account_id)

    def expire_due(self, account_id: str) -> None:
        due = self.core.db.query(
            "SELECT * FROM hosted_grants WHERE account_id = ? AND status = 'active' AND expires_at <= ?",
            (account_id, self.core.now()),
        )
        for row in due:
            self._end_grant(row, "expired")

    def _end_active_grants(self, chain_id: str, reason: str) -> None:
        for row in self.core.db.query(
            "SELECT * FROM hosted_grants WHERE chain_id = ? AND status = 'active'", (chain_id,)
        ):
            self._end_grant(row, reason)

    def _end_grant(self, grant: sqlite3.Row, reason: str) -> None:
        """Ask the custodian for its release (the existing close flow); on a valid one the coins above its index go
        back to the hosted wallet. Without one the grant stays active (the vendor may have spent its slice)."""
        chain = self.core.db.one("SELECT * FROM chains WHERE chain_id = ?", (grant["chain_id"],))
        assert chain is not None
        release = self.closing._ask_custodian(chain) if chain["custodian"] == grant["vendor_id"] else None
        if release is None and chain["custodian"] == grant["vendor_id"] and reason != "returned":
            return
        with self.core.db.tx() as c:
            lock_keys(c, f"chain:{grant['chain_id']}")
            g = c.execute("SELECT * FROM hosted_grants WHERE grant_id = ?", (grant["grant_id"],)).fetchone()
            if g["status"] != "active":
                return
            end = int(g["to_index"])
            if release is not None and self._accept_release(c, g, release):
                end = release.body.last_index
                windows.end_grant_window(c, g["chain_id"], g["vendor_id"], (int(g["from_index"]), int(g["to_index"])),
                                         end)  # fmt: skip
            now = self.core.now()
            c.execute(
                "UPDATE hosted_grants SET status = ?, end_index = ?, ended_at = ?, end_reason = ? WHERE grant_id = ?",
                ("ended", end, now, reason, g["grant_id"]),
            )
            c.execute("UPDATE hosted_chains SET free_index = ? WHERE chain_id = ? AND free_index = ?",
                      (end, g["chain_id"], g["to_index"]))  # fmt: skip
            c.execute("UPDATE chains SET custodian = NULL WHERE chain_id = ? AND custodian = ?",
                      (g["chain_id"], g["vendor_id"]))  # fmt: skip

    def _accept_release(self, c: sqlite3.Connection, grant: sqlite3.Row, release: Signed[CustodyRelease]) -> bool:
        body = release.body
        cid = grant["chain_id"]
        if not grant["from_index"] <= body.last_index <= grant["to_index"]:
            return False
        try:
            if body.last_index > 0:
                verify_point(c, cid, body.last_index, body.last_payword)
        except NetPayError:
            return False
        c.execute(
            "INSERT INTO releases (chain_id, released_by, released_to, last_index, wire) VALUES (?,?,?,?,?) "
            "ON CONFLICT DO NOTHING",
            (cid, body.released_by, "broker", body.last_index, json.dumps(release.to_wire())),
        )
        c.execute(
            "UPDATE chains SET reported_index = ?, reported_payword = ? WHERE chain_id = ? AND reported_index < ?",
            (body.last_index, body.last_payword, cid, body.last_index),
        )
        return True

    def _raise_lower_bound(self, c: sqlite3.Connection, chain: sqlite3.Row, index: int,
                           seed: bytes | None = None) -> None:  # fmt: skip
        """Make W_index (from the seed) the chain's verified lower bound, so the next vendor and a return start
        there (coins below it are spent or belong to an earlier slice)."""
        cid = chain["chain_id"]
        current = c.execute("SELECT reported_index FROM chains WHERE chain_id = ?", (cid,)).fetchone()[0]
        if index <= int(current):
            return
        if seed is None:
            h = c.execute("SELECT seed_nonce, seed_sealed FROM hosted_chains WHERE chain_id = ?", (cid,)).fetchone()
            seed = self._sealer.open(cid, bytes(h[0]), bytes(h[1]))
        value = walk(bytes.fromhex(cid), seed, int(chain["length"]), index)
        verify_point(c, cid, index, value)
        c.execute("UPDATE chains SET reported_index = ?, reported_payword = ? WHERE chain_id = ?", (index, value, cid))

    def _own_chain(self, account_id: str, chain_id: str) -> sqlite3.Row:
        row = self.core.db.one(
            "SELECT c.* FROM hosted_chains h JOIN chains c ON c.chain_id = h.chain_id "
            "WHERE h.chain_id = ? AND h.account_id = ?",
            (chain_id, account_id),
        )
        if row is None:
            raise NotFound("no such hosted chain on this account", chain_id=chain_id)
        return row
