"""The customer's broker accounts: balance and statement, top-ups and cash-outs, refunds in the history, and the
recovery of chains the account bought that this wallet does not hold (a lost wallet, an older backup).

What the broker last said is kept in the vault (``broker_accounts``), so the window shows it at once and offline;
:meth:`AccountDesk.refresh` fetches it again (in a worker: it is HTTP). Chains handed back by a recovery are kept in
``recoveries`` until the broker has closed them (it waits out its grace period when a custodian does not answer).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from netpay.errors import MalformedMessage, NetPayError, NotFound
from netpay.messages import CoinCertificate, VendorCertificate
from netpay.money import Money
from netpay.signed import Signed
from wallet_app.services.brokers import BrokerDesk
from wallet_app.services.types import AccountView, ActivityEntry, HostedView, RecoverableChain, StatementLine
from wallet_app.vault.store import Vault

__all__ = ["AccountDesk", "RecoveryOutcome"]


@dataclass(frozen=True, slots=True)
class RecoveryOutcome:
    """What handing one chain back gave: ``closed`` with its refund, or ``closing`` (the broker waits out its
    grace period for the custodian; :meth:`AccountDesk.refresh` picks the refund up later)."""

    chain_id: str
    status: str
    refund: Money


def _money(raw: Any, where: str) -> Money:
    return Money.from_json(raw, where)


class AccountDesk:
    """Account views and actions over :class:`BrokerDesk` (which holds the session). ``lock`` guards the vault."""

    def __init__(self, vault: Vault, desk: BrokerDesk, clock: Callable[[], float], lock: threading.RLock) -> None:
        self.vault = vault
        self.desk = desk
        self.clock = clock
        self.lock = lock
        #: The hosted e-wallet per broker, as fetched this session (not kept in the vault: the broker holds it).
        self.hosted: dict[str, HostedView] = {}

    # ----- fetching -----------------------------------------------------------------------------------------------
    def _with_account(self) -> list[str]:
        with self.lock:
            return [
                r[0]
                for r in self.vault.query(
                    "SELECT a.broker_id FROM accounts a JOIN brokers b ON b.broker_id = a.broker_id "
                    "WHERE b.trusted = 1 ORDER BY b.added_at"
                )
            ]

    def refresh(self, broker_id: str | None = None) -> dict[str, NetPayError]:
        """Fetch balance, statement and chains of each account (or of ``broker_id``'s) and store them; settle
        returned and recovered chains the broker has closed since. Returns the brokers that failed, with why."""
        failed: dict[str, NetPayError] = {}
        for bid in [broker_id] if broker_id else self._with_account():
            try:
                self._refresh_one(bid)
            except NetPayError as exc:
                failed[bid] = exc
        return failed

    def _refresh_one(self, broker_id: str) -> None:
        # chains first: listing them settles closings whose grace period has passed, so the statement read next
        # already holds their refunds
        chains = self.desk.call(broker_id, lambda c, t: c.account_chains(t))
        statement = self.desk.call(broker_id, lambda c, t: c.statement(t))
        self._fetch_hosted(broker_id)
        try:
            balance = _money(statement["balance"], "balance")
            entries = [
                {
                    "at": int(e["at"]),
                    "kind": str(e["kind"]),
                    "amount": _money(e["amount"], "amount").to_json(),
                    "description": str(e.get("description") or ""),
                    "ref": str(e.get("ref") or ""),
                }
                for e in statement["entries"]
            ]
            remote = [self._chain_info(c) for c in chains]
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedMessage(f"the broker's account answer is not understood: {exc}") from None
        names = self._vendor_names(
            broker_id, {c["custodian"] for c in remote if c["custodian"] and c["status"] != "closed"}
        )
        for c in remote:
            c["custodian_name"] = names.get(c["custodian"] or "")
        now = int(self.clock())
        with self.lock, self.vault.tx() as c:
            c.execute(
                """INSERT INTO broker_accounts VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(broker_id) DO UPDATE SET
                   balance = excluded.balance, currency = excluded.currency, statement_json = excluded.statement_json,
                   chains_json = excluded.chains_json, fetched_at = excluded.fetched_at""",
                (broker_id, balance.amount, balance.currency, json.dumps(entries), json.dumps(remote), now),
            )
            for info in remote:
                if info["status"] != "closed":
                    continue
                refund = info["refund"] or 0
                c.execute(
                    "UPDATE chains SET status = 'returned', refund_amount = ? "
                    "WHERE chain_id = ? AND status = 'closing'",
                    (refund, info["chain_id"]),
                )
                c.execute(
                    "UPDATE recoveries SET status = 'closed', refund_amount = ?, updated_at = ? "
                    "WHERE chain_id = ? AND status = 'closing'",
                    (refund, now, info["chain_id"]),
                )

    def _fetch_hosted(self, broker_id: str) -> None:
        """Best effort: a broker without hosted e-wallets (or one that refuses) leaves the line out."""
        try:
            raw = self.desk.call(broker_id, lambda c, t: c.hosted(t))
            view = HostedView(
                balance=_money(raw["hosted_balance"], "hosted_balance"),
                granted=_money(raw["granted"], "granted"),
                active_chains=tuple(str(c["chain_id"]) for c in raw["chains"] if c["status"] == "active"),
            )
        except (NetPayError, KeyError, TypeError, ValueError):
            self.hosted.pop(broker_id, None)
            return
        self.hosted[broker_id] = view

    def buy_hosted(self, broker_id: str, amount: Money, idempotency_key: str) -> Money:
        """Move ``amount`` of the account into the hosted e-wallet (coins of one minor unit the broker generates and
        keeps); the new hosted balance. Retrying with the same key and amount is safe (bought once)."""
        body = {"length": amount.amount, "coin_value": Money(1, amount.currency).to_json()}
        answer = self.desk.call(broker_id, lambda c, t: c.buy_hosted(t, idempotency_key, body))
        return _money(answer["hosted"], "hosted")

    def return_hosted(self, broker_id: str) -> Money:
        """Return every active hosted chain to the account (their grants end first); the total refunded."""
        self._fetch_hosted(broker_id)
        view = self.hosted.get(broker_id)
        total = 0
        currency = view.balance.currency if view else "EUR"
        for chain_id in view.active_chains if view else ():

            def give_back(c: Any, t: str, cid: str = chain_id) -> dict[str, Any]:
                answer: dict[str, Any] = c.return_hosted(t, cid)
                return answer

            total += _money(self.desk.call(broker_id, give_back)["refund"], "refund").amount
        return Money(total, currency)

    def _vendor_names(self, broker_id: str, vendor_ids: set[str]) -> dict[str, str]:
        """Display names of vendors as the broker certified them (best effort: a revoked or unknown vendor keeps
        its id)."""
        key = self.desk.trust.keys.get(broker_id)
        if key is None or not vendor_ids:
            return {}
        client = self.desk.client_for(self.desk.get(broker_id).url)
        names = {}
        for vid in sorted(vendor_ids):
            try:
                cert = Signed.from_wire(client.vendor_certificate(vid), VendorCertificate, "certificate")
                body = cert.require_signer(key)
            except NetPayError:
                continue
            if body.vendor_id == vid:
                names[vid] = body.display_name
        return names

    def _chain_info(self, raw: dict[str, Any]) -> dict[str, Any]:
        """The parts of ``GET /v1/account/chains`` the wallet keeps; the certificate is read for length and value
        (its signature is not needed: the broker is only telling us about our own purchases)."""
        cert = Signed.from_wire(raw["certificate"], CoinCertificate, "certificate").body
        refund = raw.get("refund")
        return {
            "chain_id": str(raw["chain_id"]),
            "status": str(raw["status"]),
            "custodian": raw.get("custodian"),
            "reported_index": int(raw.get("reported_index") or 0),
            "final_index": raw.get("final_index"),
            "refund": _money(refund, "refund").amount if refund is not None else None,
            "length": cert.length,
            "coin_value": cert.coin_value.to_json(),
        }

    # ----- reading the stored views -------------------------------------------------------------------------------
    def accounts(self) -> list[AccountView]:
        """Every account as last fetched (brokers never fetched yet are left out)."""
        with self.lock:
            rows = self.vault.query(
                "SELECT a.broker_id, a.username, b.name, x.balance, x.currency, x.statement_json, x.fetched_at "
                "FROM broker_accounts x JOIN accounts a ON a.broker_id = x.broker_id "
                "JOIN brokers b ON b.broker_id = x.broker_id ORDER BY b.added_at"
            )
        return [
            AccountView(
                broker_id=r["broker_id"],
                broker_name=r["name"],
                username=r["username"],
                balance=Money(r["balance"], r["currency"]),
                entries=tuple(
                    StatementLine(e["at"], e["kind"], Money.from_json(e["amount"]), e["description"], e["ref"])
                    for e in json.loads(r["statement_json"])
                ),
                fetched_at=r["fetched_at"],
                hosted=self.hosted.get(r["broker_id"]),
            )
            for r in rows
        ]

    def balance(self, broker_id: str) -> Money | None:
        """The account balance as last fetched, or None if never fetched."""
        with self.lock:
            row = self.vault.one("SELECT balance, currency FROM broker_accounts WHERE broker_id = ?", (broker_id,))
        return Money(row[0], row[1]) if row else None

    def recoverable(self, broker_id: str | None = None) -> list[RecoverableChain]:
        """Chains the account bought that this wallet does not hold and the broker has not closed, as last fetched
        (call :meth:`refresh` first for the broker's latest word)."""
        with self.lock:
            held = {r[0] for r in self.vault.query("SELECT chain_id FROM chains")}
            closing = {r[0] for r in self.vault.query("SELECT chain_id FROM recoveries WHERE status = 'closing'")}
            rows = self.vault.query("SELECT broker_id, chains_json FROM broker_accounts ORDER BY broker_id")
        out = []
        for r in rows:
            if broker_id is not None and r["broker_id"] != broker_id:
                continue
            for info in json.loads(r["chains_json"]):
                if info["chain_id"] in held or info["status"] == "closed":
                    continue
                status = "recovering" if info["chain_id"] in closing else info["status"]
                out.append(
                    RecoverableChain(
                        chain_id=info["chain_id"],
                        broker_id=r["broker_id"],
                        coin_value=Money.from_json(info["coin_value"]),
                        length=info["length"],
                        reported_index=info["reported_index"],
                        custodian=info["custodian"],
                        status=status,
                        custodian_name=info.get("custodian_name"),
                    )
                )
        return out

    # ----- actions --------------------------------------------------------------------------------------------------
    def top_up(self, broker_id: str, amount: Money, card: dict[str, Any], idempotency_key: str) -> Money:
        """Add ``amount`` to the account with the test card; the new balance. Retrying with the same key and
        request is safe (charged once)."""
        body = {"amount": amount.to_json(), "card": card}
        answer = self.desk.call(broker_id, lambda c, t: c.topup(t, idempotency_key, body))
        return _money(answer["balance"], "balance")

    def cash_out(self, broker_id: str, amount: Money, card: dict[str, Any], idempotency_key: str) -> Money:
        """Pay ``amount`` of the account back to ``card`` (one that paid in); the new balance. Same key and request
        again: the same answer, paid once; same key, other request: ``IdempotencyConflict``."""
        body = {"amount": amount.to_json(), "card": card}
        answer = self.desk.call(broker_id, lambda c, t: c.cashout(t, idempotency_key, body))
        return _money(answer["balance"], "balance")

    def recover(self, broker_id: str, chain_ids: list[str] | None = None) -> list[RecoveryOutcome]:
        """Hand back every recoverable chain of ``broker_id`` (or those of ``chain_ids``) through the broker's close
        flow; the unspent value lands on the account. Chains whose custodian does not answer stay ``closing``
        until the broker's grace period has passed (:meth:`refresh` then records the refund)."""
        self._refresh_one(broker_id)
        wanted = {c.chain_id: c for c in self.recoverable(broker_id)}
        if chain_ids is not None:
            unknown = [cid for cid in chain_ids if cid not in wanted]
            if unknown:
                raise NotFound(f"chain {unknown[0]} is not a chain of this account that the wallet lacks")
            wanted = {cid: wanted[cid] for cid in chain_ids}
        outcomes = []
        for chain in wanted.values():
            answer = self.desk.call(broker_id, lambda c, t, cid=chain.chain_id: c.close_chain(t, cid))
            try:
                refund = _money(answer["refund"], "refund")
                status = "closed" if answer["status"] == "closed" else "closing"
            except (KeyError, TypeError) as exc:
                raise MalformedMessage(f"the broker's close answer is not understood: {exc}") from None
            now = int(self.clock())
            with self.lock, self.vault.tx() as c:
                c.execute(
                    """INSERT INTO recoveries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(chain_id) DO UPDATE
                       SET status = excluded.status, refund_amount = excluded.refund_amount,
                       updated_at = excluded.updated_at""",
                    (
                        chain.chain_id, broker_id, chain.length, chain.coin_value.amount, chain.coin_value.currency,
                        chain.custodian, chain.reported_index, status,
                        refund.amount if status == "closed" else None, now, now,
                    ),
                )  # fmt: skip
            outcomes.append(RecoveryOutcome(chain.chain_id, status, refund))
        self._refresh_one(broker_id)
        return outcomes

    # ----- history ------------------------------------------------------------------------------------------------
    def activity(self) -> list[ActivityEntry]:
        """Refunds (returned, recovered and partly spent chains) and cash-outs: one entry each. From the broker's
        statement where fetched; a chain still closing shows as a pending refund of what it may return."""
        out: list[ActivityEntry] = []
        refunded: set[str] = set()
        with self.lock:
            for r in self.vault.query("SELECT broker_id, statement_json FROM broker_accounts"):
                for e in json.loads(r["statement_json"]):
                    kind = {"refund": "return", "cashout": "cashout"}.get(e["kind"])
                    if kind is None:
                        continue
                    amount = Money.from_json(e["amount"])
                    if kind == "return":
                        refunded.add(e["ref"])
                    out.append(
                        ActivityEntry(
                            e["at"], kind, "done", Money(abs(amount.amount), amount.currency),
                            None, None, e["description"], None, e["ref"], broker_id=r["broker_id"],
                        )
                    )  # fmt: skip
            for r in self.vault.query(
                "SELECT chain_id, broker_id, length, position, coin_amount, currency, status, refund_amount, "
                "created_at FROM chains WHERE status IN ('closing', 'returned')"
            ):
                if r["chain_id"] in refunded or (r["status"] == "returned" and not r["refund_amount"]):
                    continue
                pending = r["status"] == "closing"
                amount = (r["length"] - r["position"]) * r["coin_amount"] if pending else r["refund_amount"]
                out.append(
                    ActivityEntry(
                        r["created_at"], "return", "closing" if pending else "done", Money(amount, r["currency"]),
                        None, None, f"Returned chain {r['chain_id'][:8]}", None, r["chain_id"],
                        broker_id=r["broker_id"],
                    )
                )  # fmt: skip
            for r in self.vault.query("SELECT * FROM recoveries WHERE status = 'closing'"):
                if r["chain_id"] in refunded:
                    continue
                amount = (r["length"] - r["reported_index"]) * r["coin_amount"]
                out.append(
                    ActivityEntry(
                        r["started_at"], "return", "closing", Money(amount, r["currency"]), None, None,
                        f"Recovered chain {r['chain_id'][:8]}", None, r["chain_id"], broker_id=r["broker_id"],
                    )
                )  # fmt: skip
        return out
