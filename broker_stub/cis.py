"""The broker as the Central Indexing Server of P2P-NetPay (seed 002 §4): certified peers and their listings.

A peer is a customer account that also sells. It registers a key (proving it holds it by signing the registration
text) and its address; the broker certifies it exactly like a vendor -- a :class:`~netpay.messages.VendorCertificate`
with the id ``peer-…`` -- and it is a row of ``vendors``, so custody, spend reports, redemption and revocation work
unchanged and buyers verify its quotes and receipts as they verify a shop's. Listings (title, description, size,
SHA-256, price) are replaced as a whole by the peer and shown only while the peer keeps sending heartbeats
(``peer_ttl_s``); the sweep drops the listings of peers that stopped answering.

Supply (002 §4.1): *requested* is what an account's coins paid to peers, *supplied* is what its own peer redeemed;
both are computed from the ``redeemed`` table (nothing is counted twice). With ``peer_supply_ratio`` > 0 the
operator refuses coin purchases of accounts whose requests exceed ratio × supply past ``peer_supply_grace``.
"""

from __future__ import annotations

import json
from typing import Any

from broker_stub.core import BrokerCore
from broker_stub.vendors import VendorService
from netpay.encoding import FieldReader
from netpay.errors import BadSignature, Forbidden, MalformedMessage, NotFound
from netpay.keys import VerifyKey
from netpay.messages.fields import check_url
from netpay.money import Money
from netpay.peers import PEER_PREFIX, peer_id_for, registration_text

__all__ = ["PEER_PREFIX", "CisService", "peer_id_for", "registration_text"]

MAX_LISTINGS = 500
MAX_PAGE = 100


def _origin(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{rest.split('/', 1)[0]}"


class CisService:
    """Peer registration, heartbeats, listings, search and each account's supply standing."""

    def __init__(self, core: BrokerCore, vendors: VendorService) -> None:
        self.core = core
        self.vendors = vendors

    # -- peers --------------------------------------------------------------------------------------------------
    def register(self, account_id: str, data: Any) -> tuple[int, dict[str, Any]]:
        """Certify the account's peer: ``{display_name, public_key, api_url, proof}``."""
        r = FieldReader(data, "body")
        display_name = r.text("display_name", 120)
        public_key = r.hex("public_key", 32)
        api_url = check_url(r.raw("api_url"), "body.api_url").rstrip("/")
        proof = r.hex("proof", 64)
        r.done()
        if "?" in api_url or "#" in api_url or "@" in api_url:
            raise MalformedMessage("body.api_url must be a plain http(s) URL", field="body.api_url")
        peer_id = peer_id_for(account_id)
        try:
            VerifyKey(public_key).verify(
                proof, registration_text(self.core.broker_id, peer_id, public_key.hex(), api_url)
            )
        except BadSignature:
            raise BadSignature("body.proof is not the key's signature of the registration text") from None
        status, answer = self.vendors.register(
            {
                "vendor_id": peer_id,
                "display_name": display_name,
                "public_key": public_key.hex(),
                "origins": [_origin(api_url)],
                "api_url": api_url,
                "payment_url": f"{api_url}/v1/payments",
            }
        )
        now = self.core.now()
        with self.core.db.tx() as c:
            c.execute(
                "INSERT INTO peers (peer_id, account_id, registered_at, last_seen) VALUES (?,?,?,?) "
                "ON CONFLICT (peer_id) DO UPDATE SET last_seen = excluded.last_seen",
                (peer_id, account_id, now, now),
            )
        return status, {"peer_id": peer_id, **answer}

    def _peer_of(self, account_id: str) -> str:
        peer_id = peer_id_for(account_id)
        if self.core.db.one("SELECT 1 FROM peers WHERE peer_id = ?", (peer_id,)) is None:
            raise NotFound("this account has not registered a peer; POST /v1/cis/peers first")
        row = self.core.db.one("SELECT revoked FROM vendors WHERE vendor_id = ?", (peer_id,))
        if row is not None and row["revoked"]:
            raise Forbidden("this peer is revoked", peer_id=peer_id)
        return peer_id

    def heartbeat(self, account_id: str) -> dict[str, Any]:
        """The peer is online: its listings stay visible for another ``peer_ttl_s``."""
        peer_id = self._peer_of(account_id)
        now = self.core.now()
        with self.core.db.tx() as c:
            c.execute("UPDATE peers SET last_seen = ? WHERE peer_id = ?", (now, peer_id))
        return {"peer_id": peer_id, "visible_until": now + self.core.settings.peer_ttl_s}

    def offline(self, account_id: str) -> dict[str, Any]:
        """The peer stops sharing: its listings disappear at once."""
        peer_id = self._peer_of(account_id)
        with self.core.db.tx() as c:
            c.execute("DELETE FROM peer_listings WHERE peer_id = ?", (peer_id,))
            c.execute("UPDATE peers SET last_seen = 0 WHERE peer_id = ?", (peer_id,))
        return {"peer_id": peer_id, "listings": 0}

    def put_listings(self, account_id: str, data: Any) -> dict[str, Any]:
        """Replace the peer's listings with ``{listings: [{item_id, title, description, size, sha256, price}]}``
        (also a heartbeat). All or nothing: one bad listing refuses the whole set."""
        peer_id = self._peer_of(account_id)
        r = FieldReader(data, "body")
        listings = r.items("listings", self._listing, max_items=MAX_LISTINGS)
        r.done()
        ids = [x["item_id"] for x in listings]
        if len(set(ids)) != len(ids):
            raise MalformedMessage("body.listings has two listings with the same item_id", field="body.listings")
        now = self.core.now()
        with self.core.db.tx() as c:
            c.execute("DELETE FROM peer_listings WHERE peer_id = ?", (peer_id,))
            for x in listings:
                c.execute(
                    "INSERT INTO peer_listings (peer_id, item_id, title, description, size, sha256, price, listed_at)"
                    " VALUES (?,?,?,?,?,?,?,?)",
                    (peer_id, x["item_id"], x["title"], x["description"], x["size"], x["sha256"], x["price"], now),
                )
            c.execute("UPDATE peers SET last_seen = ? WHERE peer_id = ?", (now, peer_id))
        return {"peer_id": peer_id, "listings": len(listings), "visible_until": now + self.core.settings.peer_ttl_s}

    def _listing(self, value: Any, where: str) -> dict[str, Any]:
        r = FieldReader(value, where)
        item_id = r.text("item_id", 64)
        title = r.text("title", 200)
        description = r.text("description", 2000, min_len=0)
        size = r.integer("size", 0, 1 << 50)
        sha256 = r.hex("sha256", 32).hex()
        money = Money.from_json(r.raw("price"), f"{where}.price")
        self.core.require_currency(money, f"{where}.price")
        price = money.amount
        r.done()
        if price <= 0:
            raise MalformedMessage(f"{where}.price must be positive", field=f"{where}.price")
        if item_id != sha256[:32]:
            # the buyer checks the same: the receipt names the item, so it binds the hash the buyer verifies
            raise MalformedMessage(f"{where}.item_id must be the first 32 hex digits of its sha256",
                                   field=f"{where}.item_id")  # fmt: skip
        return {"item_id": item_id, "title": title, "description": description, "size": size, "sha256": sha256,
                "price": price}  # fmt: skip

    # -- search -------------------------------------------------------------------------------------------------
    def search(self, q: str = "", page: int = 1, per_page: int = 20) -> dict[str, Any]:
        """Listings of live peers whose title or description holds every word of ``q``, cheapest first."""
        if len(q) > 200:
            raise MalformedMessage("q is longer than 200 characters", field="q")
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in q):
            raise MalformedMessage("q may not hold control characters", field="q")
        if not 1 <= page <= 10_000 or not 1 <= per_page <= MAX_PAGE:
            raise MalformedMessage(f"page must be 1..10000 and per_page 1..{MAX_PAGE}", field="page")
        self.sweep()
        since = self.core.now() - self.core.settings.peer_ttl_s
        where, params = ["p.last_seen >= ?", "v.revoked = 0"], [since]
        for word in q.lower().split()[:8]:
            like = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append("(LOWER(l.title) LIKE ? ESCAPE '\\' OR LOWER(l.description) LIKE ? ESCAPE '\\')")
            params += [like, like]
        sql_from = (
            "FROM peer_listings l JOIN peers p ON p.peer_id = l.peer_id JOIN vendors v ON v.vendor_id = l.peer_id "
            "WHERE " + " AND ".join(where)
        )
        total = int(self.core.db.one(f"SELECT COUNT(*) {sql_from}", params)[0])  # type: ignore[index]
        rows = self.core.db.query(
            f"SELECT l.*, v.display_name, v.public_key, v.api_url, v.certificate {sql_from} "
            "ORDER BY l.price, l.title, l.peer_id, l.item_id LIMIT ? OFFSET ?",
            [*params, per_page, (page - 1) * per_page],
        )
        results = [
            {
                "peer_id": row["peer_id"],
                "item_id": row["item_id"],
                "title": row["title"],
                "description": row["description"],
                "size": row["size"],
                "sha256": row["sha256"],
                "price": self.core.money(row["price"]).to_json(),
                "seller": row["display_name"],
                "public_key": row["public_key"],
                "quote_url": f"{row['api_url']}/v1/quotes",
                "payment_url": f"{row['api_url']}/v1/payments",
                "download_url": f"{row['api_url']}/files/{row['item_id']}",
                "certificate": json.loads(row["certificate"]),
            }
            for row in rows
        ]
        return {"results": results, "page": page, "per_page": per_page, "total": total,
                "pages": max(1, -(-total // per_page))}  # fmt: skip

    def sweep(self) -> int:
        """Drop the listings of peers that stopped answering (no heartbeat for ``peer_ttl_s``)."""
        since = self.core.now() - self.core.settings.peer_ttl_s
        with self.core.db.tx() as c:
            return int(
                c.execute(
                    "DELETE FROM peer_listings WHERE peer_id IN (SELECT peer_id FROM peers WHERE last_seen < ?)",
                    (since,),
                ).rowcount
            )

    # -- supply -------------------------------------------------------------------------------------------------
    def standing(self, account_id: str) -> dict[str, Any]:
        """Requested (paid to peers) and supplied (redeemed by the account's own peer), and whether the operator's
        policy currently lets the account buy coins."""
        requested = int(
            self.core.db.one(
                "SELECT COALESCE(SUM(r.amount), 0) FROM redeemed r JOIN chains c ON c.chain_id = r.chain_id "
                "WHERE c.account_id = ? AND r.vendor_id LIKE 'peer-%'",
                (account_id,),
            )[0]  # type: ignore[index]
        )
        supplied = int(
            self.core.db.one(
                "SELECT COALESCE(SUM(amount), 0) FROM redeemed WHERE vendor_id = ?", (peer_id_for(account_id),)
            )[0]  # type: ignore[index]
        )
        s = self.core.settings
        limited = (
            s.peer_supply_ratio > 0 and requested > s.peer_supply_grace and requested > s.peer_supply_ratio * supplied
        )
        return {
            "peer_id": peer_id_for(account_id),
            "requested": self.core.money(requested).to_json(),
            "supplied": self.core.money(supplied).to_json(),
            "policy": {"ratio": s.peer_supply_ratio, "grace": self.core.money(s.peer_supply_grace).to_json()}
            if s.peer_supply_ratio > 0
            else None,
            "may_buy_coins": not limited,
        }

    def check_may_buy(self, account_id: str) -> None:
        """Refuse a coin purchase under the operator's supply policy (does nothing when the policy is off)."""
        if self.core.settings.peer_supply_ratio <= 0:
            return
        st = self.standing(account_id)
        if not st["may_buy_coins"]:
            raise Forbidden(
                "this account requested much more from peers than its own peer supplied; share files to buy more "
                "coins (the broker's supply policy)",
                reason="supply_ratio",
                requested=st["requested"],
                supplied=st["supplied"],
            )
