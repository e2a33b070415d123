"""Brokers and coins: trusting a broker, the account session, buying chains (journalled like payments), returning
a chain, revocation lists, and resynchronising chains with the broker after a restore."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Collection
from typing import Any

from netpay.chain import new_chain_id, new_seed
from netpay.encoding import canonical_json, parse_json
from netpay.errors import (
    AuthenticationRequired,
    Conflict,
    IdempotencyConflict,
    MalformedMessage,
    NetPayError,
    NotFound,
    PeerUnavailable,
    SessionExpired,
    UntrustedSigner,
)
from netpay.keys import VerifyKey
from netpay.messages import CoinCertificate, RevocationList
from netpay.money import Money
from netpay.signed import Signed
from netpay.traversal import create_chain
from wallet_app.clients.broker import BrokerClient
from wallet_app.services.chains import ChainBook
from wallet_app.services.crashpoints import crash_point
from wallet_app.services.payments import TrustView
from wallet_app.services.types import BrokerInfo, BuyProgress, ChainSummary
from wallet_app.vault.store import Vault

__all__ = ["BrokerDesk"]


def _info(row: Any, username: str | None) -> BrokerInfo:
    info = json.loads(row["info_json"])
    lengths = info.get("chain_length") or {}
    key = VerifyKey.from_hex(row["public_key"])
    return BrokerInfo(
        broker_id=row["broker_id"],
        name=row["name"],
        url=row["url"],
        public_key_hex=key.hex,
        fingerprint=key.fingerprint,
        currencies=tuple(info.get("currencies") or ()),
        coin_values=tuple(Money.from_json(v) for v in info.get("coin_values") or ()),
        chain_length_min=int(lengths.get("min", 1)),
        chain_length_max=int(lengths.get("max", 2**20)),
        chain_length_default=int(lengths.get("default", 10_000)),
        trusted=bool(row["trusted"]),
        username=username,
    )


class BrokerDesk:
    """Everything the wallet does with brokers. ``lock`` guards the vault; HTTP runs outside it."""

    def __init__(
        self,
        vault: Vault,
        book: ChainBook,
        trust: TrustView,
        broker_client_factory: Callable[[str], BrokerClient],
        clock: Callable[[], float],
        lock: threading.RLock,
    ) -> None:
        self.vault = vault
        self.book = book
        self.trust = trust
        self.client_for = broker_client_factory
        self.clock = clock
        self.lock = lock

    # ----- trust ------------------------------------------------------------------------------------------------
    def load_trust(self) -> None:
        """Fill the trust view from the vault (after unlock and after changes)."""
        with self.lock:
            self.trust.keys = {
                r["broker_id"]: VerifyKey.from_hex(r["public_key"])
                for r in self.vault.query("SELECT broker_id, public_key FROM brokers WHERE trusted = 1")
            }
            chains: set[str] = set()
            vendors: set[str] = set()
            fetched: dict[str, float] = {}
            for r in self.vault.query("SELECT broker_id, list_json, fetched_at FROM revocations"):
                if r["broker_id"] not in self.trust.keys:
                    continue
                data = json.loads(r["list_json"])
                chains.update(data["chains"])
                vendors.update(data["vendors"])
                fetched[r["broker_id"]] = float(r["fetched_at"])
            self.trust.revoked_chains, self.trust.revoked_vendors = chains, vendors
            self.trust.fetched_at = fetched

    def add(self, url: str) -> BrokerInfo:
        url = url.rstrip("/")
        info = self.client_for(url).info()
        try:
            broker_id = str(info["broker_id"])
            key = VerifyKey.from_hex(str(info["public_key"]))
            name = str(info.get("name") or broker_id)
        except (KeyError, TypeError):
            raise MalformedMessage("the broker's /v1/info answer lacks broker_id or public_key") from None
        with self.lock, self.vault.tx() as c:
            old = c.execute("SELECT public_key FROM brokers WHERE broker_id = ?", (broker_id,)).fetchone()
            if old is not None and old["public_key"] != key.hex:
                raise Conflict(f"broker {broker_id} is known with another key; remove it first to change its key")
            c.execute(
                """INSERT INTO brokers (broker_id, url, name, public_key, info_json, trusted, added_at)
                   VALUES (?, ?, ?, ?, ?, 0, ?) ON CONFLICT(broker_id) DO UPDATE SET url = excluded.url,
                   name = excluded.name, info_json = excluded.info_json""",
                (broker_id, url, name, key.hex, json.dumps(info), int(self.clock())),
            )
        return self.get(broker_id)

    def get(self, broker_id: str) -> BrokerInfo:
        with self.lock:
            row = self.vault.one("SELECT * FROM brokers WHERE broker_id = ?", (broker_id,))
            if row is None:
                raise NotFound(f"no broker {broker_id!r}")
            acc = self.vault.one("SELECT username FROM accounts WHERE broker_id = ?", (broker_id,))
            return _info(row, acc["username"] if acc else None)

    def list(self) -> list[BrokerInfo]:
        with self.lock:
            ids = [r[0] for r in self.vault.query("SELECT broker_id FROM brokers ORDER BY added_at")]
        return [self.get(b) for b in ids]

    def trust_broker(self, broker_id: str) -> None:
        self.get(broker_id)
        with self.lock, self.vault.tx() as c:
            c.execute("UPDATE brokers SET trusted = 1 WHERE broker_id = ?", (broker_id,))
            c.execute(
                "INSERT INTO audit (at, kind, detail_json) VALUES (?, 'trust_broker', ?)",
                (int(self.clock()), json.dumps({"broker_id": broker_id})),
            )
        self.load_trust()

    def _client(self, broker_id: str) -> BrokerClient:
        info = self.get(broker_id)
        if not info.trusted:
            raise UntrustedSigner(f"broker {broker_id} is not trusted yet")
        return self.client_for(info.url)

    # ----- account ----------------------------------------------------------------------------------------------
    def register(self, broker_id: str, username: str, password: str) -> None:
        self._client(broker_id).create_account(username, password)
        self.login(broker_id, username, password)

    def login(self, broker_id: str, username: str, password: str) -> str:
        answer = self._client(broker_id).login(username, password)
        with self.lock, self.vault.tx() as c:
            c.execute(
                """INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(broker_id) DO UPDATE SET
                   username = excluded.username, password = excluded.password, account_id = excluded.account_id,
                   token = excluded.token, token_expires_at = excluded.token_expires_at""",
                (broker_id, username, password, answer.get("account_id"), answer["token"], answer.get("expires_at")),
            )
        return str(answer["token"])

    def _token(self, broker_id: str, fresh: bool = False) -> str:
        with self.lock:
            row = self.vault.one("SELECT * FROM accounts WHERE broker_id = ?", (broker_id,))
        if row is None:
            raise AuthenticationRequired(f"log in at broker {broker_id} first")
        expires = row["token_expires_at"]
        if fresh or not row["token"] or (expires and expires <= self.clock() + 30):
            return self.login(broker_id, row["username"], row["password"])
        return str(row["token"])

    def call(self, broker_id: str, fn: Callable[[BrokerClient, str], Any]) -> Any:
        """Run ``fn(client, token)``, logging in again once if the session has expired."""
        client = self._client(broker_id)
        try:
            return fn(client, self._token(broker_id))
        except (AuthenticationRequired, SessionExpired):
            return fn(client, self._token(broker_id, fresh=True))

    def account(self, broker_id: str) -> dict[str, Any]:
        return dict(self.call(broker_id, lambda c, t: c.account(t)))

    # ----- buying -----------------------------------------------------------------------------------------------
    def buy(
        self,
        broker_id: str,
        coins: int,
        coin_value: Money,
        card: dict[str, Any] | None,
        progress: Callable[[BuyProgress], None] | None,
    ) -> ChainSummary:
        report = progress or (lambda p: None)
        self._client(broker_id)  # trusted?
        report(BuyProgress("generating", 0, 3))
        chain_id = new_chain_id()
        seed = new_seed()
        touchstone, traversal = create_chain(chain_id, coins, seed)
        body: dict[str, Any] = {
            "chain_id": chain_id.hex(),
            "touchstone": touchstone.hex(),
            "length": coins,
            "coin_value": coin_value.to_json(),
        }
        if card is not None:  # kept (encrypted) until the purchase completes, so a retry is the identical request
            body["card"] = card
        now = int(self.clock())
        with self.lock, self.vault.tx(durable=True) as c:
            c.execute(
                """INSERT INTO chains (chain_id, broker_id, length, coin_amount, currency, seed, traversal,
                   position, idempotency_key, request_json, status, created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, 'buying', ?)""",
                (
                    chain_id.hex(), broker_id, coins, coin_value.amount, coin_value.currency,
                    seed, traversal.to_bytes(), secrets.token_hex(16),
                    canonical_json(body).decode(), now,
                ),
            )  # fmt: skip
        crash_point("buy_after_journal")
        report(BuyProgress("sending", 1, 3))
        self._complete_buy(chain_id.hex())
        report(BuyProgress("done", 3, 3))
        return next(s for s in self.book.summaries() if s.chain_id == chain_id.hex())

    def _complete_buy(self, chain_id: str) -> None:
        with self.lock:
            row = self.vault.one("SELECT * FROM chains WHERE chain_id = ?", (chain_id,))
        body = parse_json(row["request_json"])
        broker_id = row["broker_id"]
        try:
            answer = self.call(broker_id, lambda c, t: c.create_chain(t, row["idempotency_key"], body))
        except PeerUnavailable:
            raise  # stays 'buying'; recover_buys() retries with the same idempotency key
        except (IdempotencyConflict, Conflict):
            raise  # cannot happen for the identical request; keep the chain for a later look rather than lose it
        except NetPayError:
            with self.lock, self.vault.tx() as c:  # refused: nothing was charged
                c.execute("DELETE FROM chains WHERE chain_id = ? AND status = 'buying'", (chain_id,))
            raise
        crash_point("buy_after_send")
        cert = Signed.from_wire(answer["certificate"], CoinCertificate, "certificate")
        cc = cert.require_signer(self.trust.keys[broker_id])
        if (
            cc.chain_id.hex() != chain_id
            or cc.touchstone.hex() != body["touchstone"]
            or cc.length != row["length"]
            or cc.coin_value != Money(row["coin_amount"], row["currency"])
        ):
            raise MalformedMessage("the broker certified another chain than the one sent")
        with self.lock, self.vault.tx() as c:
            c.execute(
                """UPDATE chains SET status = 'active', certificate_json = ?, expires_at = ?, request_json = ?
                   WHERE chain_id = ?""",
                (
                    canonical_json(cert.to_wire()).decode(),
                    cc.expires_at,
                    canonical_json({k: v for k, v in body.items() if k != "card"}).decode(),
                    chain_id,
                ),
            )

    def recover_buys(self) -> int:
        """Finish purchases interrupted after they were journalled; return how many completed."""
        with self.lock:
            ids = [r[0] for r in self.vault.query("SELECT chain_id FROM chains WHERE status = 'buying'")]
        done = 0
        for cid in ids:
            try:
                self._complete_buy(cid)
                done += 1
            except NetPayError:
                continue
        return done

    # ----- returning, revocations, resync -----------------------------------------------------------------------
    def return_chain(self, chain_id: str) -> Money:
        with self.lock:
            row = self.vault.one("SELECT * FROM chains WHERE chain_id = ?", (chain_id,))
            if row is None:
                raise NotFound(f"no chain {chain_id}")
            busy = self.vault.one(
                """SELECT 1 FROM spend_segments g JOIN spends s ON s.payment_id = g.payment_id
                   WHERE g.chain_id = ? AND s.status = 'pending'""",
                (chain_id,),
            )
            if busy or row["status"] not in ("active", "closing"):
                raise Conflict("the chain has a payment in progress or is not active")
        answer = self.call(row["broker_id"], lambda c, t: c.close_chain(t, chain_id))
        refund = Money.from_json(answer["refund"])
        status = "returned" if answer.get("status") == "closed" else "closing"
        with self.lock, self.vault.tx() as c:
            c.execute(
                "UPDATE chains SET status = ?, refund_amount = ? WHERE chain_id = ?",
                (status, refund.amount, chain_id),
            )
        self.book.forget([chain_id])
        return refund

    def refresh_revocations(self, broker_ids: Collection[str] | None = None) -> None:
        """Fetch, verify and store the revocation list of each trusted broker (or of ``broker_ids``). Raises the
        first broker's error after trying every one; the lists fetched are kept either way."""
        first: NetPayError | None = None
        for info in self.list():
            if not info.trusted or (broker_ids is not None and info.broker_id not in broker_ids):
                continue
            try:
                self._refresh_one(info)
            except NetPayError as exc:
                first = first or exc
        self.load_trust()
        if first is not None:
            raise first

    def _refresh_one(self, info: BrokerInfo) -> None:
        wire = self.client_for(info.url).revocations()
        lst = Signed.from_wire(wire, RevocationList, "revocations")
        body = lst.require_signer(self.trust.keys[info.broker_id])
        if body.broker_id != info.broker_id:
            raise UntrustedSigner(f"the revocation list names broker {body.broker_id!r}, not {info.broker_id!r}")
        data = {"chains": [c.hex() for c in body.chains], "vendors": list(body.vendors)}
        with self.lock, self.vault.tx() as c:
            old = c.execute(
                "SELECT serial, list_json FROM revocations WHERE broker_id = ?", (info.broker_id,)
            ).fetchone()
            if old is not None and old["serial"] > body.serial:
                return
            # An older list (a lower serial: replayed or from a lagging replica) never replaces a newer one.
            c.execute(
                """INSERT INTO revocations VALUES (?, ?, ?, ?) ON CONFLICT(broker_id) DO UPDATE SET
                   serial = excluded.serial, list_json = excluded.list_json, fetched_at = excluded.fetched_at
                   WHERE excluded.serial >= revocations.serial""",
                (info.broker_id, body.serial, json.dumps(data), int(self.clock())),
            )
            # A chain of ours the broker revoked since the last list (closed from another device, a double spend):
            # asked about at the next resync, which learns whether it was closed (and refunded) or not. Once only.
            newly = set(data["chains"]) - set(json.loads(old["list_json"])["chains"] if old is not None else ())
            for r in c.execute(
                "SELECT chain_id FROM chains WHERE broker_id = ? AND status IN ('active', 'closing')", (info.broker_id,)
            ).fetchall():
                if r[0] in newly:
                    c.execute("UPDATE chains SET needs_resync = 1 WHERE chain_id = ?", (r[0],))

    def resync(self) -> int:
        """Move every chain marked ``needs_resync`` to at least the index its broker reports, then clear the mark."""
        with self.lock:
            rows = self.vault.query("SELECT chain_id, broker_id FROM chains WHERE needs_resync = 1")
        by_broker: dict[str, list[str]] = {}
        for r in rows:
            by_broker.setdefault(r["broker_id"], []).append(r["chain_id"])
        done = 0
        for broker_id, ids in by_broker.items():
            remote = {c["chain_id"]: c for c in self.call(broker_id, lambda c, t: c.account_chains(t))}
            with self.lock, self.vault.tx() as c:
                for cid in ids:
                    info = remote.get(cid)
                    row = c.execute("SELECT position, status FROM chains WHERE chain_id = ?", (cid,)).fetchone()
                    if info is None:
                        if row["status"] == "buying":
                            continue  # recover_buys() decides
                        c.execute("UPDATE chains SET needs_resync = 0 WHERE chain_id = ?", (cid,))
                        continue
                    reported = max(int(info.get("reported_index") or 0), int(info.get("final_index") or 0))
                    if reported > row["position"]:
                        self.book.move_to(c, cid, reported)
                    status = "returned" if info.get("status") == "closed" else row["status"]
                    c.execute(
                        "UPDATE chains SET needs_resync = 0, holder = ?, status = ? WHERE chain_id = ?",
                        (info.get("custodian"), status, cid),
                    )
                    done += 1
        return done
