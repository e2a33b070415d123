"""The wallet's chains: traversal states cached while unlocked, selection of chains for a price, reservation of
indexes (the traversal state is persisted in the same transaction), rewind after a proven refusal, resync."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from netpay.encoding import parse_json
from netpay.errors import InsufficientCoins
from netpay.messages import CoinCertificate
from netpay.money import Money
from netpay.signed import Signed
from netpay.traversal import PaywordTraversal, create_chain
from wallet_app.services.change import HELD, OTHER, UNHELD, Candidate, make_change, suggest_coin_value
from wallet_app.services.types import ChainSummary
from wallet_app.vault.store import Vault

__all__ = ["ChainBook", "Pick"]


@dataclass(frozen=True, slots=True)
class Pick:
    """Coins to take from one chain for a payment."""

    chain_id: str
    coins: int
    coin_value: Money


class ChainBook:
    """Reads and moves chains in the vault. Holds traversal states only while the vault is unlocked."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self._traversals: dict[str, PaywordTraversal] = {}
        self._certificates: dict[str, Signed[CoinCertificate]] = {}  # a chain's certificate never changes

    def forget(self, chain_ids: list[str] | None = None) -> None:
        """Drop cached traversal states: all of them (on lock) or those of ``chain_ids`` (after a rollback)."""
        if chain_ids is None:
            self._traversals.clear()
            self._certificates.clear()
        for cid in chain_ids or ():
            self._traversals.pop(cid, None)

    # ----- reading ----------------------------------------------------------------------------------------------
    def summaries(self) -> list[ChainSummary]:
        rows = self.vault.query(
            """SELECT c.*,
                 COALESCE((SELECT SUM(g.to_index - g.from_index) FROM spend_segments g JOIN spends s
                           ON s.payment_id = g.payment_id WHERE g.chain_id = c.chain_id AND s.status = 'settled'), 0)
                   AS settled,
                 COALESCE((SELECT SUM(g.to_index - g.from_index) FROM spend_segments g JOIN spends s
                           ON s.payment_id = g.payment_id WHERE g.chain_id = c.chain_id AND s.status = 'pending'), 0)
                   AS pending
               FROM chains c ORDER BY c.created_at, c.chain_id"""
        )
        out = []
        for r in rows:
            out.append(
                ChainSummary(
                    chain_id=r["chain_id"],
                    broker_id=r["broker_id"],
                    coin_value=Money(r["coin_amount"], r["currency"]),
                    length=r["length"],
                    position=r["position"],
                    settled=r["settled"],
                    pending=r["pending"],
                    burned=r["position"] - r["settled"] - r["pending"],
                    unspent=r["length"] - r["position"] if r["status"] in ("active", "buying") else 0,
                    status=r["status"],
                    holder=r["holder"],
                    needs_resync=bool(r["needs_resync"]),
                    expires_at=r["expires_at"],
                )
            )
        return out

    def certificate(self, chain_id: str) -> Signed[CoinCertificate]:
        """The chain's certificate as stored (checked when it was bought); read from the vault once per unlock."""
        cert = self._certificates.get(chain_id)
        if cert is None:
            row = self.vault.one("SELECT certificate_json FROM chains WHERE chain_id = ?", (chain_id,))
            cert = Signed.from_wire(parse_json(row["certificate_json"]), CoinCertificate, verify=False)
            self._certificates[chain_id] = cert
        return cert

    # ----- choosing ---------------------------------------------------------------------------------------------
    def candidates(
        self, broker_id: str, currency: str, vendor_id: str, now: int, revoked: set[str] | None = None
    ) -> list[Candidate]:
        """Chains that may pay ``vendor_id`` now: active, not waiting for a resync, unexpired, with coins left, no
        payment in flight, not revoked, and never refused by this vendor for custody (``chain_refusals``)."""
        rows = self.vault.query(
            """SELECT chain_id, length, position, coin_amount, holder FROM chains
               WHERE broker_id = ? AND currency = ? AND status = 'active' AND needs_resync = 0
                 AND position < length AND (expires_at = 0 OR expires_at > ?)
                 AND chain_id NOT IN (SELECT g.chain_id FROM spend_segments g JOIN spends s
                                      ON s.payment_id = g.payment_id WHERE s.status = 'pending')
                 AND chain_id NOT IN (SELECT chain_id FROM chain_refusals WHERE vendor_id = ?)""",
            (broker_id, currency, now, vendor_id),
        )
        return [
            Candidate(
                r["chain_id"],
                r["coin_amount"],
                r["length"] - r["position"],
                HELD if r["holder"] == vendor_id else UNHELD if r["holder"] is None else OTHER,
            )
            for r in rows
            if not revoked or r["chain_id"] not in revoked
        ]

    def pick(
        self, broker_id: str, price: Money, vendor_id: str, now: int, revoked: set[str] | None = None
    ) -> list[Pick]:
        """Chains and coins that make ``price`` exactly (:func:`~wallet_app.services.change.make_change`: the chain
        the vendor holds first, then the fewest custody claims and chains). Raises :class:`InsufficientCoins`
        whose ``details`` say why (``reason``: ``short`` or ``no_exact_change``) and, in ``buy``, a coin value
        whose chain would make the price payable."""
        cands = self.candidates(broker_id, price.currency, vendor_id, now, revoked)
        found = make_change(cands, price.amount)
        if found is None:
            raise self.no_change(broker_id, price, cands)
        return [Pick(c.key, coins, Money(c.value, price.currency)) for c, coins in found]

    def no_change(self, broker_id: str, price: Money, cands: list[Candidate]) -> InsufficientCoins:
        """The refusal for a price no combination of ``cands`` makes: what is missing and what to buy. Its
        message tells the page nothing about the balance; the details are for the wallet's own prompt."""
        row = self.vault.one("SELECT info_json FROM brokers WHERE broker_id = ?", (broker_id,))
        info = json.loads(row["info_json"]) if row is not None else {}
        offered = [
            int(v["amount"])
            for v in info.get("coin_values") or ()
            if isinstance(v, dict) and v.get("currency") == price.currency and isinstance(v.get("amount"), int)
        ] or [1]
        usable = sum(c.value * c.left for c in cands)
        value = suggest_coin_value(cands, price.amount, offered)
        buy = Money(value, price.currency) if value is not None else None
        hint = f"buy coins of {buy.format()}" if buy is not None else "buy coins"
        if usable < price.amount:
            reason, text = "short", f"Not enough coins for {price.format()}: {hint} in the wallet."
        else:
            reason, text = (
                "no_exact_change",
                f"No combination of your coins makes exactly {price.format()}: {hint} in the wallet.",
            )
        details: dict[str, Any] = {"price": price.to_json(), "reason": reason, "broker_id": broker_id}
        if buy is not None:
            details["buy"] = buy.to_json()
        return InsufficientCoins(text, **details)

    def refused(self, conn: Any, chain_id: str, vendor_id: str, code: str, payment_id: str, at: int) -> None:
        """Remember that ``vendor_id`` refused ``chain_id`` for custody: never offered to that vendor again."""
        conn.execute(
            """INSERT INTO chain_refusals (vendor_id, chain_id, code, payment_id, at) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT(vendor_id, chain_id) DO NOTHING""",
            (vendor_id, chain_id, code, payment_id, at),
        )

    def unspent(self, broker_id: str, currency: str, revoked: set[str] | None = None) -> Money:
        """Unspent coins of the active chains at ``broker_id`` in ``currency``, revoked chains left out."""
        rows = self.vault.query(
            """SELECT chain_id, (length - position) * coin_amount FROM chains
               WHERE broker_id = ? AND currency = ? AND status = 'active'""",
            (broker_id, currency),
        )
        return Money(sum(int(r[1]) for r in rows if not revoked or r[0] not in revoked), currency)

    # ----- moving -------------------------------------------------------------------------------------------------
    def _traversal(self, chain_id: str) -> PaywordTraversal:
        """The cached traversal, loaded from the vault if not cached."""
        t = self._traversals.get(chain_id)
        if t is None:
            row = self.vault.one("SELECT traversal FROM chains WHERE chain_id = ?", (chain_id,))
            t = PaywordTraversal.from_bytes(bytes(row["traversal"]))
            self._traversals[chain_id] = t
        return t

    def state(self, chain_id: str) -> bytes:
        """The chain's traversal state as it stands (what :meth:`advance` would start from)."""
        return self._traversal(chain_id).to_bytes()

    def advance(self, chain_id: str, coins: int) -> tuple[int, int, bytes, bytes]:
        """Advance the chain's traversal by ``coins`` in memory only: ``(from, to, W_to, new state)``. The caller
        makes the new state durable (a spend intent, applied with :meth:`store_state`) before using the paywords,
        or calls :meth:`forget` for the chain if that fails."""
        t = self._traversal(chain_id)
        start = t.position
        try:
            to, word = t.advance(coins)
        except BaseException:
            self._traversals.pop(chain_id, None)
            raise
        return start, to, word, t.to_bytes()

    @staticmethod
    def store_state(conn: Any, chain_id: str, state: bytes, position: int) -> None:
        """Persist a traversal state made by :meth:`advance` (never moving a chain back: a later state wins)."""
        conn.execute(
            "UPDATE chains SET traversal = ?, position = ? WHERE chain_id = ? AND position <= ?",
            (state, position, chain_id, position),
        )

    # ----- moving inside a vault transaction ----------------------------------------------------------------------

    def move_to(self, conn: Any, chain_id: str, position: int) -> None:
        """Put the chain at ``position`` (rebuilding the traversal from the seed) and persist it."""
        row = conn.execute("SELECT seed, length FROM chains WHERE chain_id = ?", (chain_id,)).fetchone()
        _, t = create_chain(bytes.fromhex(chain_id), row["length"], bytes(row["seed"]))
        if position > 0:
            t.advance(min(position, row["length"]))
        conn.execute(
            "UPDATE chains SET traversal = ?, position = ? WHERE chain_id = ?", (t.to_bytes(), t.position, chain_id)
        )
        self._traversals.pop(chain_id, None)
