"""Returning coins: close a chain at its final index, refund the unspent coins, revoke the chain.

The broker asks the chain's custodian with a signed ``CloseRequest`` (POST ``{api_url}/v1/custody/close``) for a
``CustodyRelease`` to the broker. Without a valid answer the chain is ``closing`` from the end of that first call
(``closing_since``); once ``close_grace_s`` has passed since then it is closed at the highest index the broker knows
(spend reports and redemptions).
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
from typing import Any

import requests

from broker_stub import ledger, windows
from broker_stub.accounts import AccountService
from broker_stub.core import BrokerCore
from broker_stub.ledger import Leg
from broker_stub.points import verify_point
from broker_stub.revocation import revoke
from netpay.errors import NetPayError, NotFound
from netpay.keys import VerifyKey
from netpay.messages import CloseRequest, CustodyRelease
from netpay.signed import Signed
from netpay_web.db import lock_keys

__all__ = ["ClosingService"]

log = logging.getLogger(__name__)


class ClosingService:
    """``POST /v1/chains/{chain_id}/close``."""

    def __init__(self, core: BrokerCore, accounts: AccountService) -> None:
        self.core = core
        self.accounts = accounts

    def close(self, account_id: str, chain_id: str) -> dict[str, Any]:
        chain = self.core.db.one("SELECT * FROM chains WHERE chain_id = ? AND account_id = ?", (chain_id, account_id))
        if chain is None:
            raise NotFound("no such chain on this account", chain_id=chain_id)
        if chain["status"] != "closed":
            release = self._ask_custodian(chain) if chain["custodian"] else None
            with self.core.db.tx() as c:
                self._advance(c, chain_id, release)
        return self._answer(account_id, chain_id)

    def settle_due(self, account_id: str) -> None:
        """Close chains of the account whose grace period has passed (without asking the custodian again)."""
        due = self.core.db.query(
            "SELECT chain_id FROM chains WHERE account_id = ? AND status = 'closing' AND closing_since <= ?",
            (account_id, self.core.now() - self.core.settings.close_grace_s),
        )
        for row in due:
            with self.core.db.tx() as c:
                self._advance(c, row[0], None)

    def _ask_custodian(self, chain: sqlite3.Row) -> Signed[CustodyRelease] | None:
        vendor = self.core.db.one("SELECT public_key, api_url FROM vendors WHERE vendor_id = ?", (chain["custodian"],))
        if vendor is None:
            return None
        request = Signed.sign(
            CloseRequest(self.core.broker_id, bytes.fromhex(chain["chain_id"]), secrets.token_hex(16), self.core.now()),
            self.core.key,
        )
        url = vendor["api_url"].rstrip("/") + "/v1/custody/close"
        try:
            resp = requests.post(url, json=request.to_wire(), timeout=self.core.settings.custodian_timeout_s)
            if resp.status_code != 200:
                log.warning("custodian %s answered %s to a close request", chain["custodian"], resp.status_code)
                return None
            release = Signed.from_wire(resp.json(), CustodyRelease, "release")
            release.require_signer(VerifyKey.from_hex(vendor["public_key"]))
        except (requests.RequestException, ValueError, NetPayError) as exc:
            log.warning("custodian %s did not release chain %s: %s", chain["custodian"], chain["chain_id"], exc)
            return None
        body = release.body
        if (
            body.chain_id.hex() != chain["chain_id"]
            or body.released_by != chain["custodian"]
            or body.released_to != "broker"
            or body.last_index > chain["length"]
        ):
            log.warning("custodian %s sent a release that does not fit the close request", chain["custodian"])
            return None
        return release

    def _advance(self, c: sqlite3.Connection, chain_id: str, release: Signed[CustodyRelease] | None) -> None:
        lock_keys(c, f"chain:{chain_id}")
        chain = c.execute("SELECT * FROM chains WHERE chain_id = ?", (chain_id,)).fetchone()
        if chain["status"] == "closed":
            return
        now = self.core.now()
        known = max(
            int(chain["reported_index"]),
            int(
                c.execute("SELECT COALESCE(MAX(to_index), 0) FROM redeemed WHERE chain_id = ?", (chain_id,)).fetchone()[
                    0
                ]
            ),
        )
        final: int | None = None
        if release is not None:
            try:
                if release.body.last_index > 0:
                    verify_point(c, chain_id, release.body.last_index, release.body.last_payword)
                final = max(known, release.body.last_index)
                c.execute(
                    "INSERT INTO releases (chain_id, released_by, released_to, last_index, wire) "
                    "VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING",
                    (
                        chain_id,
                        release.body.released_by,
                        "broker",
                        release.body.last_index,
                        json.dumps(release.to_wire()),
                    ),
                )
            except NetPayError as exc:
                log.warning("custodian release for %s does not verify: %s", chain_id, exc)
        if final is None:
            if chain["custodian"] is None:
                final = known
            else:
                since = chain["closing_since"] if chain["closing_since"] is not None else now
                if now - since >= self.core.settings.close_grace_s:
                    final = known
                elif chain["status"] != "closing":
                    c.execute(
                        "UPDATE chains SET status = 'closing', closing_since = ? WHERE chain_id = ?", (now, chain_id)
                    )
        if final is None:
            return
        refund = (int(chain["length"]) - final) * int(chain["coin_value"])
        c.execute(
            "UPDATE chains SET status = 'closed', final_index = ?, refund = ?, closed_at = ?, "
            "closing_since = COALESCE(closing_since, ?) WHERE chain_id = ?",
            (final, refund, now, now, chain_id),
        )
        if refund:
            ledger.post(
                c,
                now,
                "refund",
                chain_id,
                f"Returned {int(chain['length']) - final} unspent coins (chain {chain_id[:8]})",
                [Leg("coins_outstanding", refund), Leg("customer_funds", -refund, chain["account_id"])],
            )
        windows.close_window(c, chain_id, final)
        revoke(c, "chain", chain_id, "closed", now)

    def _answer(self, account_id: str, chain_id: str) -> dict[str, Any]:
        chain = self.core.db.one("SELECT status, final_index, refund FROM chains WHERE chain_id = ?", (chain_id,))
        assert chain is not None
        return {
            "chain_id": chain_id,
            "status": chain["status"],
            "final_index": chain["final_index"],
            "refund": self.core.money(chain["refund"] or 0).to_json(),
            "balance": self.accounts.balance(account_id).to_json(),
        }
