"""The wallet service: one object the GUI and the browser hand-off call for everything the wallet does.

It owns the vault (open, unlock, lock, auto-lock, backup, restore), the brokers the user trusts, the coins, the
payment engine with its journal, the allowances and the settings. All collaborators are passed in so tests can run
it against real servers on loopback with a test keyring.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from netpay.errors import Forbidden, InsufficientCoins, MalformedMessage, NetPayError, WalletLocked
from netpay.keys import VerifyKey
from netpay.messages import Quote, VendorCertificate
from netpay.money import Money
from netpay.signed import Signed
from wallet_app.clients.broker import BrokerClient
from wallet_app.clients.vendor import VendorClient
from wallet_app.keys import KeyStore
from wallet_app.services.accounts import AccountDesk, RecoveryOutcome
from wallet_app.services.allowances import AllowanceBook
from wallet_app.services.brokers import BrokerDesk
from wallet_app.services.chains import ChainBook
from wallet_app.services.events import WalletEvents
from wallet_app.services.metered import MeteredSession, MeteredSessions, UnitPaid
from wallet_app.services.payments import PaymentEngine, PreparedSpend, TrustView
from wallet_app.services.refunds import RefundRequests
from wallet_app.services.revocations import RevocationWatch
from wallet_app.services.signatures import SIGNATURES
from wallet_app.services.subscriptions import Subscription, Subscriptions
from wallet_app.services.types import (
    AccountView,
    ActivityEntry,
    AllowanceInfo,
    BalanceLine,
    BrokerInfo,
    BuyProgress,
    ChainSummary,
    CheckedQuote,
    PaidQuote,
    PayVia,
    RecoverableChain,
)
from wallet_app.vault.session import VaultSession

__all__ = ["DEFAULT_AUTO_LOCK_S", "WalletService"]

DEFAULT_AUTO_LOCK_S = 300


class WalletService:
    """Facade over vault, clients and payment engine. Thread-safe: every public method takes one lock.

    Life cycle: ``state`` is ``"new"`` (no vault yet: call :meth:`create`), ``"locked"`` (call :meth:`unlock`) or
    ``"unlocked"``. Methods that need the vault raise :class:`netpay.errors.WalletLocked` while locked.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        key_store: Any = None,
        broker_client_factory: Callable[[str], Any] | None = None,
        vendor_client_factory: Callable[[str], Any] | None = None,
        clock: Callable[[], float] = time.time,
        events: WalletEvents | None = None,
    ) -> None:
        """Build the service for ``data_dir``; nothing is opened until :meth:`create` or :meth:`unlock`."""
        self._lock = threading.RLock()
        self.clock = clock
        self.events = events or WalletEvents()
        self.session = VaultSession(Path(data_dir), key_store or KeyStore())
        self.vault = self.session.vault
        self.trust = TrustView()
        self.chains = ChainBook(self.vault)
        self.payments = PaymentEngine(
            self.vault, self.chains, self.trust, vendor_client_factory or VendorClient, clock, self.events, self._lock
        )
        self.brokers_desk = BrokerDesk(
            self.vault, self.chains, self.trust, broker_client_factory or BrokerClient, clock, self._lock
        )
        self.account_desk = AccountDesk(self.vault, self.brokers_desk, clock, self._lock)
        self.allowance_book = AllowanceBook(self.vault, clock)
        self.refund_requests = RefundRequests(self.vault, self.payments.vendor_client, clock, self._lock)
        self.subscriptions = Subscriptions(self.vault, clock, self._lock, self._renewal_quote, self._renewal_pay,
                                           self.events.emit)  # fmt: skip
        self.metered = MeteredSessions(self.vault, clock, self._lock, self.payments.vendor_client,
                                       self._metered_check, self.pay_quote, self.recover_pending, self.covers,
                                       self.events.emit)  # fmt: skip
        self.revocations = RevocationWatch(self.brokers_desk, self.trust, clock)
        self.trust.refresh_soon = self.revocations.refresh_soon
        self._last_activity = clock()
        self._idle_stop: threading.Event | None = None

    # ----- vault life cycle -------------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """``"new"``, ``"locked"`` or ``"unlocked"``."""
        return self.session.state

    def needs_passphrase(self) -> bool:
        """True when unlocking (or creating) needs a passphrase: no usable OS keyring, or the vault uses one."""
        return self.session.needs_passphrase()

    def create(self, passphrase: str | None = None) -> None:
        """Create a new vault: key in the OS keyring, or derived from ``passphrase`` when there is no keyring."""
        with self._lock:
            self.session.create(passphrase)
            self._opened()

    def unlock(self, passphrase: str | None = None, recover: bool = True) -> None:
        """Open the vault. Raises a :class:`wallet_app.vault.errors.VaultError` subclass (wrong key, damaged,
        too new, in use, keyring missing); the vault file is left unchanged. With ``recover`` it then finishes
        pending spends (network failures are ignored: they stay pending)."""
        with self._lock:
            self.session.unlock(passphrase)
            self._opened()
        if recover:
            with contextlib.suppress(NetPayError):
                self.recover_pending()

    def lock(self) -> None:
        """Close the vault and drop the key, seeds and traversal states. Emits ``vault_locked``. Open metered
        sessions end first (in the vault, so nothing more is paid for them after unlocking either), and
        ``vault_locking`` listeners make their last writes."""
        if self.session.unlocked:
            with contextlib.suppress(Exception):
                self.events.emit("vault_locking")
        ended: list[tuple[str, str, str]] = []
        with self._lock:
            if self.session.unlocked:
                with contextlib.suppress(Exception):
                    ended = self.metered.end_all("locked")
        if ended:
            threading.Thread(target=self._tell_shops_ended, args=(ended,), name="metered-end", daemon=True).start()
        with self._lock:
            was_open = self.session.unlocked
            self.session.lock()
            self.chains.forget()
            self.trust.keys, self.trust.revoked_chains, self.trust.revoked_vendors = {}, set(), set()
            self.trust.fetched_at = {}
            SIGNATURES.clear()  # the quotes seen tell what was bought: not kept while locked
        if was_open:
            self.events.emit("vault_locked")

    def close(self) -> None:
        """Lock and release the process lock on the data directory."""
        if self._idle_stop is not None:
            self._idle_stop.set()
        self.revocations.stop()
        self.lock()
        with self._lock:
            self.session.close()

    def touch(self) -> None:
        """Note user activity (resets the idle timer)."""
        self._last_activity = self.clock()

    def check_idle(self) -> bool:
        """Lock if idle longer than the ``auto_lock_s`` setting; return True if it locked. Call from a timer."""
        if not self.session.unlocked:
            return False
        limit = self.get_setting("auto_lock_s", DEFAULT_AUTO_LOCK_S)
        if limit and self.clock() - self._last_activity >= limit:
            self.lock()
            return True
        return False

    def change_passphrase(self, new_passphrase: str | None, old_passphrase: str | None = None) -> None:
        """Re-key the vault: to a new passphrase, or (``new_passphrase=None``) to a fresh key in the OS keyring."""
        with self._lock:
            self._require()
            self.session.rekey(new_passphrase, old_passphrase)

    def backup(self, path: Path, passphrase: str) -> None:
        """Write the whole vault to one file encrypted with ``passphrase``."""
        with self._lock:
            self._require()
            self.session.backup(Path(path), passphrase)

    def restore(self, path: Path, passphrase: str) -> None:
        """Replace the vault by a backup. Wrong passphrase / damaged file: typed error, current vault untouched.
        Afterwards every chain needs resync with its broker before it is spent again."""
        with self._lock:
            self._require()
            self.session.restore(Path(path), passphrase)
            self.chains.forget()
            self.brokers_desk.load_trust()
            with self.vault.tx() as c:
                c.execute(
                    "INSERT INTO audit (at, kind, detail_json) VALUES (?, 'restore', ?)",
                    (int(self.clock()), json.dumps({"from": str(path)})),
                )
        self.events.emit("balance_changed")
        with contextlib.suppress(NetPayError):  # chains stay marked; they are resynced before being spent
            self.resync_chains()

    # ----- brokers and accounts ---------------------------------------------------------------------------------
    def add_broker(self, url: str) -> BrokerInfo:
        """Fetch ``GET {url}/v1/info`` and store the broker as *not yet trusted*; show the fingerprint to the user."""
        self._require()
        return self.brokers_desk.add(url)

    def trust_broker(self, broker_id: str) -> None:
        """Mark a broker trusted (after the user compared the fingerprint)."""
        self._require()
        self.brokers_desk.trust_broker(broker_id)

    def brokers(self) -> list[BrokerInfo]:
        """Every known broker."""
        self._require()
        return self.brokers_desk.list()

    def trusted_broker_keys(self) -> tuple[VerifyKey, ...]:
        """The keys of the trusted brokers (held in memory while unlocked; raises ``WalletLocked`` otherwise)."""
        self._require()
        return tuple(self.trust.keys.values())

    def register(self, broker_id: str, username: str, password: str) -> None:
        """Open an account at the broker and log in."""
        self._require()
        self.brokers_desk.register(broker_id, username, password)
        self._account_moved(broker_id)

    def login(self, broker_id: str, username: str, password: str) -> None:
        """Log in at the broker (the session token and credentials are kept in the vault)."""
        self._require()
        self.brokers_desk.login(broker_id, username, password)
        self._account_moved(broker_id)

    # ----- broker accounts --------------------------------------------------------------------------------------
    def accounts(self) -> list[AccountView]:
        """Each broker account's balance and statement as last fetched (fast: read from the vault)."""
        self._require()
        return self.account_desk.accounts()

    def account_balance(self, broker_id: str) -> Money | None:
        """The account balance at ``broker_id`` as last fetched, or None if never fetched."""
        self._require()
        return self.account_desk.balance(broker_id)

    def refresh_accounts(self, broker_id: str | None = None) -> dict[str, NetPayError]:
        """Fetch every account's balance, statement and chains from its broker (HTTP: call from a worker); returns
        the brokers that could not be reached or refused, with the error. Emits ``balance_changed``."""
        self._require()
        failed = self.account_desk.refresh(broker_id)
        self.events.emit("balance_changed")
        return failed

    def top_up(self, broker_id: str, amount: Money, card: dict[str, Any], idempotency_key: str) -> Money:
        """Add money to the broker account with the test card; returns the new balance."""
        self._require()
        self.touch()
        balance = self.account_desk.top_up(broker_id, amount, card, idempotency_key)
        self._account_moved(broker_id)
        return balance

    def cash_out(self, broker_id: str, amount: Money, card: dict[str, Any], idempotency_key: str) -> Money:
        """Pay ``amount`` of the broker account back to ``card`` (a card that paid in); returns the new balance."""
        self._require()
        self.touch()
        balance = self.account_desk.cash_out(broker_id, amount, card, idempotency_key)
        self._account_moved(broker_id)
        return balance

    def buy_hosted(self, broker_id: str, amount: Money, idempotency_key: str) -> Money:
        """Move ``amount`` from the broker account into the hosted e-wallet; returns the new hosted balance."""
        self._require()
        self.touch()
        hosted = self.account_desk.buy_hosted(broker_id, amount, idempotency_key)
        self._account_moved(broker_id)
        return hosted

    def return_hosted(self, broker_id: str) -> Money:
        """Return the hosted e-wallet's chains to the broker account; returns the amount refunded."""
        self._require()
        self.touch()
        refund = self.account_desk.return_hosted(broker_id)
        self._account_moved(broker_id)
        return refund

    def recoverable_chains(self, broker_id: str | None = None, refresh: bool = True) -> list[RecoverableChain]:
        """Chains bought on the account(s) that this wallet does not hold (lost wallet, older backup) and that the
        broker has not closed; with ``refresh`` asks the broker first (HTTP)."""
        self._require()
        if refresh:
            self.account_desk.refresh(broker_id)
        return self.account_desk.recoverable(broker_id)

    def recover_chains(self, broker_id: str, chain_ids: list[str] | None = None) -> list[RecoveryOutcome]:
        """Return every recoverable chain of ``broker_id`` (or those listed) through the broker's close flow; the
        unspent value lands on the account. A chain whose custodian is down stays ``closing`` until the broker's
        grace period has passed; :meth:`refresh_accounts` then shows its refund."""
        self._require()
        self.touch()
        try:
            return self.account_desk.recover(broker_id, chain_ids)
        finally:
            self.events.emit("balance_changed")

    def _account_moved(self, broker_id: str) -> None:
        """Re-read the account after an action that moved it (best effort: the window shows the last known)."""
        with contextlib.suppress(NetPayError):
            self.account_desk.refresh(broker_id)
        self.events.emit("balance_changed")

    # ----- coins ------------------------------------------------------------------------------------------------
    def balance(self) -> list[BalanceLine]:
        """Unspent coins per broker and currency."""
        self._require()
        lines: dict[tuple[str, str], list[int]] = {}
        for s in self.list_chains():
            if s.status not in ("active", "buying") or s.revoked:
                continue
            acc = lines.setdefault((s.broker_id, s.coin_value.currency), [0, 0, 0])
            if s.status == "active":
                acc[0] += s.unspent * s.coin_value.amount
            acc[1] += s.pending * s.coin_value.amount
            acc[2] += 1
        return [BalanceLine(b, cur, Money(u, cur), Money(p, cur), n) for (b, cur), (u, p, n) in sorted(lines.items())]

    def buy_coins(
        self,
        broker_id: str,
        coins: int,
        coin_value: Money,
        card: dict[str, Any] | None = None,
        progress: Callable[[BuyProgress], None] | None = None,
    ) -> ChainSummary:
        """Make a chain of ``coins`` paywords locally, have the broker certify it (charging the account, or
        ``card`` = ``{number, exp_month, exp_year, cvc}``), store certificate, seed and traversal state."""
        self._require()
        self.touch()
        summary = self.brokers_desk.buy(broker_id, coins, coin_value, card, progress)
        self._account_moved(broker_id)
        return summary

    def list_chains(self) -> list[ChainSummary]:
        """Every chain the vault holds."""
        self._require()
        with self._lock:
            chains, vendors = self.trust.revoked_chains, self.trust.revoked_vendors
            return [
                dataclasses.replace(s, revoked=s.chain_id in chains, holder_revoked=s.holder in vendors)
                if s.chain_id in chains or s.holder in vendors
                else s
                for s in self.chains.summaries()
            ]

    def return_chain(self, chain_id: str) -> Money:
        """Hand a chain back to its broker (``POST /v1/chains/{id}/close``); return the refund."""
        self._require()
        refund = self.brokers_desk.return_chain(chain_id)
        with self._lock:
            row = self.vault.one("SELECT broker_id FROM chains WHERE chain_id = ?", (chain_id,))
        self._account_moved(row[0])
        return refund

    def refresh_revocations(self) -> None:
        """Fetch each trusted broker's signed revocation list and store it (raises the first broker's error after
        trying them all). Runs by itself too: see :mod:`wallet_app.services.revocations`."""
        self._require()
        try:
            self.brokers_desk.refresh_revocations()
        finally:
            if self.vault.one("SELECT 1 FROM chains WHERE needs_resync = 1"):
                with contextlib.suppress(NetPayError):  # stays marked: resynced before it is spent
                    self.brokers_desk.resync()
            self.events.emit("balance_changed")

    def start_revocation_watch(self) -> None:
        """Refresh the revocation lists in the background while the wallet runs (the desktop app calls this)."""
        self.revocations.start()

    def resync_chains(self) -> int:
        """Move chains marked ``needs_resync`` to the index the broker reports; return how many were resynced."""
        self._require()
        done = self.brokers_desk.resync()
        if done:
            self.events.emit("balance_changed")
        return done

    # ----- payments ---------------------------------------------------------------------------------------------
    def check_quote(self, quote_wire: Any, cert_wire: Any, origin: str | None) -> CheckedQuote:
        """Check a quote from a vendor page: the vendor certificate is signed by a trusted broker, unexpired and
        not revoked; ``origin`` (when given) is one of its origins; the quote is signed by the certified key,
        names this vendor, is unexpired and not already paid. Raises the matching :mod:`netpay.errors` error."""
        self._require()
        quote, cert = self.payments.check(quote_wire, cert_wire, origin)
        if self.revocations.ensure_fresh(cert.body.broker_id):  # fetched just now: check against the new list
            quote, cert = self.payments.check(quote_wire, cert_wire, origin)
        q, vc = quote.body, cert.body
        with self._lock:
            unspent = self.chains.unspent(vc.broker_id, q.price.currency, self.trust.revoked_chains)
            covered = self.allowance_book.covers(vc.vendor_id, q.price)
            no_change = None
            if not covered and unspent >= q.price:  # a prompt: tell the customer now if no coins make the price
                try:
                    self.chains.pick(vc.broker_id, q.price, vc.vendor_id, int(self.clock()), self.trust.revoked_chains)
                except InsufficientCoins as exc:
                    no_change = exc
        return CheckedQuote(
            quote=quote,
            vendor_certificate=cert,
            broker_id=vc.broker_id,
            vendor_name=vc.display_name,
            origin=origin or "",
            price=q.price,
            affordable=unspent >= q.price and no_change is None,
            remaining_after=unspent - q.price if unspent >= q.price else Money.zero(q.price.currency),
            covered_by_allowance=covered,
            change_advice=no_change.message if no_change is not None else None,
        )

    def pay_quote(
        self, quote: Signed[Quote], vendor_cert: Signed[VendorCertificate], origin: str | None, via: PayVia
    ) -> PaidQuote:
        """Pay a checked quote: journal the spend, send it, store the receipt. Raises ``InsufficientCoins``,
        ``PeerUnavailable`` (the spend stays pending and :meth:`recover_pending` finishes it) or the vendor's
        refusal as a :mod:`netpay.errors` error."""
        quote, cert = self._paying(quote, vendor_cert, origin, via)
        paid = self.payments.pay(quote, cert, origin, via)
        model = quote.body.model
        if model.is_metered and model.session_id is None:  # the approved first unit opens the session
            self.metered.opened(paid, quote, cert, origin or "", cert.body.api_url)
        return paid

    def prepare_payment(
        self,
        quote: Any,
        vendor_cert: Any,
        origin: str | None,
        via: PayVia,
        price: Money | None = None,
        undoable: bool = False,
    ) -> PreparedSpend:
        """Like :meth:`pay_quote` up to the journal (every check of :meth:`check_quote` too; ``price``: refuse any
        other price): the payment, durably journalled, for the caller to send inside its own request (a paid API
        call); hand the shop's answer to :meth:`finish_payment`. Until then the spend is pending (and
        :meth:`recover_pending` would send it to the payment URL). ``undoable``: a payment prepared before the
        program asks for it, which :meth:`cancel_payment` can take back while it has not left the process."""
        checked, cert = self._paying(quote, vendor_cert, origin, via)
        if price is not None and checked.body.price != price:
            raise MalformedMessage(f"the quote's price is {checked.body.price}, not {price}", field="price")
        if checked.body.model.is_metered:
            raise MalformedMessage("a metered quote is paid unit by unit in a metered session", field="model")
        # a program pays call after call: its spend reaches the tables in the journal's own commit (one commit, not
        # a second one at the start of its next call)
        return self.payments.prepare(checked, cert, origin, via, at_once=True, undoable=undoable)

    def cancel_payment(self, prepared: PreparedSpend) -> bool:
        """Take back a payment prepared with ``undoable`` that was never sent (see :meth:`PaymentEngine.cancel`);
        False when it stays pending (then finish it with :meth:`finish_payment`)."""
        self._require()
        return self.payments.cancel(prepared)

    def finish_payment(self, prepared: PreparedSpend, answer: Any, error: NetPayError | None) -> PaidQuote:
        """Settle, release or finish sending a prepared payment (see :meth:`PaymentEngine.finish`)."""
        self._require()
        return self.payments.finish(prepared, answer, error)

    def _paying(
        self, quote: Signed[Quote], vendor_cert: Signed[VendorCertificate], origin: str | None, via: PayVia
    ) -> tuple[Signed[Quote], Signed[VendorCertificate]]:
        self._require()
        self.touch()
        checked_quote, cert = self.payments.check(quote, vendor_cert, origin, paying=True)
        if self.revocations.ensure_fresh(cert.body.broker_id):
            checked_quote, cert = self.payments.check(quote, vendor_cert, origin, paying=True)
        if via == "allowance" and not self.covers(cert.body.vendor_id, checked_quote.body.price):
            raise Forbidden("the vendor's allowance does not cover this price")
        if self.vault.one("SELECT 1 FROM chains WHERE needs_resync = 1 AND broker_id = ?", (cert.body.broker_id,)):
            self.resync_chains()
        return checked_quote, cert

    def _tell_shops_ended(self, ended: list[tuple[str, str, str]]) -> None:
        for api_url, session_id, token in ended:
            with contextlib.suppress(NetPayError):
                self.payments.vendor_client(api_url).metered_end(session_id, token)

    # ----- metered sessions (pay per unit used) -----------------------------------------------------------------
    def open_metered(self, paid: PaidQuote, quote: Signed[Quote], vendor_cert: Signed[VendorCertificate],
                     origin: str | None) -> MeteredSession:  # fmt: skip
        """Record the session the approved first unit of a metered quote opened (see :meth:`pay_quote`)."""
        self._require()
        return self.metered.opened(paid, quote, vendor_cert, origin or "", vendor_cert.body.api_url)

    def pay_metered_unit(self, session_id: str, unit_no: int, origin: str | None) -> UnitPaid:
        """Pay unit ``unit_no`` of an open metered session without a prompt (a paid unit is answered, not paid
        again). Raises ``session_ended``, ``unit_out_of_order``, ``locked`` or the shop's refusal."""
        self._require()
        self.touch()
        return self.metered.pay_unit(session_id, unit_no, origin)

    def end_metered(self, session_id: str, reason: str = "user") -> MeteredSession:
        """End a metered session (the tray's "End", the page stopping): nothing more is paid for it."""
        self._require()
        return self.metered.end(session_id, reason)

    def metered_sessions(self, open_only: bool = False) -> list[MeteredSession]:
        self._require()
        with self._lock:
            return self.metered.list(open_only)

    def _metered_check(self, quote_wire: Any, cert_wire: Any, origin: str | None
                       ) -> tuple[Signed[Quote], Signed[VendorCertificate]]:  # fmt: skip
        # the engine's checks alone: a unit needs no prompt, so no balance or allowance figures for one
        quote, cert = self.payments.check(quote_wire, cert_wire, origin)
        if self.revocations.ensure_fresh(cert.body.broker_id):
            quote, cert = self.payments.check(quote_wire, cert_wire, origin)
        return quote, cert

    def recover_pending(self) -> int:
        """Finish every pending spend by re-sending the same payment (idempotent at the vendor); return how many
        were finished. Called by :meth:`unlock` too."""
        self._require()
        self.brokers_desk.recover_buys()
        if self.vault.one("SELECT 1 FROM chains WHERE needs_resync = 1"):
            with contextlib.suppress(NetPayError):
                self.resync_chains()
        finished, _left = self.payments.recover()
        return finished

    def receipt_for(self, quote_id: str, vendor_id: str) -> PaidQuote | None:
        """The stored receipt of a paid quote, if any."""
        self._require()
        with self._lock:
            return self.payments.receipt_for(vendor_id, quote_id)

    def payment_receipt(self, payment_id: str) -> PaidQuote | None:
        """The receipt (access token, item URL) of payment ``payment_id`` as stored now: None until it is settled.
        Read at the moment the user opens the item, not from an earlier history snapshot (which may predate it)."""
        self._require()
        with self._lock:
            return self.payments.receipt_of(payment_id)

    def activity(self, limit: int = 200) -> list[ActivityEntry]:
        """History, newest first."""
        self._require()
        with self._lock:
            entries = (self.payments.activity(limit) + self.account_desk.activity() + self.refund_requests.activity()
                       + self.metered.activity())  # fmt: skip
        entries.sort(key=lambda e: e.at, reverse=True)
        return entries[:limit]

    def ask_refund(self, payment_id: str, reason: str) -> dict[str, Any]:
        """Ask the shop to refund a settled purchase (see :mod:`wallet_app.services.refunds`). Not under the
        service lock while the shop answers."""
        self._require()
        answer = self.refund_requests.ask(payment_id, reason)
        if answer.get("credit") == "credited":
            self._refresh_account_quietly()
        return answer

    def refresh_refunds(self) -> int:
        """Ask the shops again about undecided or uncredited refunds; the account too when one was credited."""
        self._require()
        changed = self.refund_requests.refresh()
        if changed:
            self._refresh_account_quietly()
        return changed

    def refund_request(self, payment_id: str) -> dict[str, Any] | None:
        self._require()
        with self._lock:
            return self.refund_requests.request_for(payment_id)

    def item_link(self, payment_id: str) -> str | None:
        """A link that opens a settled purchase's item in the browser: its URL with a one-time code the shop
        exchanges for the item's cookie (the access token never goes into a URL). A token lost (a restored
        wallet) is issued again from the receipt first. None while the payment is not settled."""
        self._require()
        with self._lock:
            paid = self.payments.receipt_of(payment_id)
            row = self.vault.one("SELECT api_url_json FROM spends WHERE payment_id = ?", (payment_id,))
        if paid is None or row is None:
            return None
        token = paid.access_token or str(self.redeliver(payment_id))
        code = self.payments.vendor_client(json.loads(row["api_url_json"])).access_code(token)
        sep = "&" if "?" in paid.item_url else "?"
        return f"{paid.item_url}{sep}code={urllib.parse.quote(code, safe='')}"

    def redeliver(self, payment_id: str) -> str:
        """A new access token for a settled purchase from its receipt alone."""
        self._require()
        return self.refund_requests.redeliver(payment_id)

    # ----- subscriptions (renewing time passes) -----------------------------------------------------------------
    def subscribe(self, payment_id: str, max_price: Money) -> Subscription:
        """Renew the time pass bought by ``payment_id`` before it ends, for at most ``max_price`` each time."""
        self._require()
        return self.subscriptions.subscribe(payment_id, max_price)

    def cancel_subscription(self, subscription_id: str) -> Subscription:
        self._require()
        return self.subscriptions.cancel(subscription_id)

    def list_subscriptions(self) -> list[Subscription]:
        self._require()
        with self._lock:
            return self.subscriptions.list()

    def renew_subscriptions(self) -> list[Subscription]:
        """Renew the passes that end soon (called periodically while unlocked)."""
        self._require()
        return self.subscriptions.renew_due()

    def subscription_of(self, payment_id: str) -> tuple[int | None, Subscription | None]:
        """``(pass end, subscription)`` of a purchase: ``(None, None)`` for anything but a time pass."""
        self._require()
        with self._lock:
            return self.subscriptions.pass_until(payment_id), self.subscriptions.of_purchase(payment_id)

    def _renewal_quote(self, api_url: str, item_id: str) -> tuple[Any, Any]:
        answer = self.payments.vendor_client(api_url).quote(item_id)
        return answer["quote"], answer["vendor_certificate"]

    def _renewal_pay(self, quote_wire: Any, cert_wire: Any) -> PaidQuote:
        checked = self.check_quote(quote_wire, cert_wire, None)
        return self.pay_quote(checked.quote, checked.vendor_certificate, None, "subscription")

    def _refresh_account_quietly(self) -> None:
        with contextlib.suppress(NetPayError):
            self.refresh_accounts()

    # ----- allowances -------------------------------------------------------------------------------------------
    def set_allowance(self, vendor_id: str, vendor_name: str, max_price: Money, daily_budget: Money) -> None:
        """Let ``vendor_id`` be paid without asking up to ``max_price`` per purchase and ``daily_budget`` per day."""
        self._require()
        with self._lock:
            self.allowance_book.set(vendor_id, vendor_name, max_price, daily_budget)

    def allowances(self) -> list[AllowanceInfo]:
        """Every allowance with what was spent under it today."""
        self._require()
        with self._lock:
            return self.allowance_book.list()

    def revoke_allowance(self, vendor_id: str) -> None:
        """Remove a vendor's allowance."""
        self._require()
        with self._lock:
            self.allowance_book.revoke(vendor_id)

    def covers(self, vendor_id: str, price: Money) -> bool:
        """True if the vendor's allowance covers ``price`` now (per-purchase maximum and today's budget)."""
        self._require()
        with self._lock:
            return self.allowance_book.covers(vendor_id, price)

    # ----- settings ---------------------------------------------------------------------------------------------
    def get_setting(self, key: str, default: Any = None) -> Any:
        """A setting (JSON value) stored in the vault, e.g. ``auto_lock_s``."""
        self._require()
        with self._lock:
            row = self.vault.one("SELECT value_json FROM settings WHERE key = ?", (key,))
        return json.loads(row[0]) if row else default

    def set_setting(self, key: str, value: Any) -> None:
        """Store a setting (any JSON value)."""
        self._require()
        with self._lock, self.vault.tx() as c:
            c.execute(
                "INSERT INTO settings VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value_json = excluded.value_json",
                (key, json.dumps(value)),
            )

    # ----- internals --------------------------------------------------------------------------------------------
    def _require(self) -> None:
        if not self.session.unlocked:
            raise WalletLocked()

    def _opened(self) -> None:
        self.brokers_desk.load_trust()
        self._last_activity = self.clock()
        self.events.emit("vault_unlocked")

    def start_idle_watch(self, interval_s: float = 5.0) -> None:
        """Run :meth:`check_idle` every ``interval_s`` seconds in a daemon thread until :meth:`close`."""
        if self._idle_stop is not None:
            return
        stop = self._idle_stop = threading.Event()

        def loop() -> None:
            turns = 0
            while not stop.wait(interval_s):
                turns += 1
                with contextlib.suppress(WalletLocked):
                    self.check_idle()
                with contextlib.suppress(NetPayError):
                    self._require()
                    self.metered.end_idle()
                with contextlib.suppress(NetPayError):  # a shop that is down: tried again at the next turn
                    self.renew_subscriptions()
                    if turns % 12 == 0 and self.refresh_refunds():  # about once a minute: decisions, credits
                        self.events.emit("balance_changed")

        threading.Thread(target=loop, name="wallet-idle-watch", daemon=True).start()
