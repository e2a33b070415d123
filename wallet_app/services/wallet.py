"""The wallet service: one object the GUI and the browser hand-off call for everything the wallet does.

It owns the vault (open, unlock, lock, auto-lock, backup, restore), the brokers the user trusts, the coins, the
payment engine with its journal, the allowances and the settings. All collaborators are passed in so tests can run
it against real servers on loopback with a test keyring.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from netpay.messages import Quote, VendorCertificate
from netpay.money import Money
from netpay.signed import Signed
from wallet_app.services.events import WalletEvents
from wallet_app.services.types import (
    ActivityEntry,
    AllowanceInfo,
    BalanceLine,
    BrokerInfo,
    BuyProgress,
    ChainSummary,
    CheckedQuote,
    PaidQuote,
    PayVia,
)

__all__ = ["WalletService"]


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
        raise NotImplementedError

    # ----- vault life cycle -------------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """``"new"``, ``"locked"`` or ``"unlocked"``."""
        raise NotImplementedError

    def needs_passphrase(self) -> bool:
        """True when unlocking (or creating) needs a passphrase: no usable OS keyring, or the vault uses one."""
        raise NotImplementedError

    def create(self, passphrase: str | None = None) -> None:
        """Create a new vault: key in the OS keyring, or derived from ``passphrase`` when there is no keyring."""
        raise NotImplementedError

    def unlock(self, passphrase: str | None = None) -> None:
        """Open the vault. Raises a :class:`wallet_app.vault.errors.VaultError` subclass (wrong key, damaged,
        too new, in use, keyring missing); the vault file is left unchanged."""
        raise NotImplementedError

    def lock(self) -> None:
        """Close the vault and drop the key, seeds and traversal states. Emits ``vault_locked``."""
        raise NotImplementedError

    def close(self) -> None:
        """Lock and release the process lock on the data directory."""
        raise NotImplementedError

    def touch(self) -> None:
        """Note user activity (resets the idle timer)."""
        raise NotImplementedError

    def check_idle(self) -> bool:
        """Lock if idle longer than the ``auto_lock_s`` setting; return True if it locked. Call from a timer."""
        raise NotImplementedError

    def change_passphrase(self, new_passphrase: str | None, old_passphrase: str | None = None) -> None:
        """Re-key the vault: to a new passphrase, or (``new_passphrase=None``) to a fresh key in the OS keyring."""
        raise NotImplementedError

    def backup(self, path: Path, passphrase: str) -> None:
        """Write the whole vault to one file encrypted with ``passphrase``."""
        raise NotImplementedError

    def restore(self, path: Path, passphrase: str) -> None:
        """Replace the vault by a backup. Wrong passphrase / damaged file: typed error, current vault untouched.
        Afterwards every chain needs resync with its broker before it is spent again."""
        raise NotImplementedError

    # ----- brokers and accounts ---------------------------------------------------------------------------------
    def add_broker(self, url: str) -> BrokerInfo:
        """Fetch ``GET {url}/v1/info`` and store the broker as *not yet trusted*; show the fingerprint to the user."""
        raise NotImplementedError

    def trust_broker(self, broker_id: str) -> None:
        """Mark a broker trusted (after the user compared the fingerprint)."""
        raise NotImplementedError

    def brokers(self) -> list[BrokerInfo]:
        """Every known broker."""
        raise NotImplementedError

    def register(self, broker_id: str, username: str, password: str) -> None:
        """Open an account at the broker and log in."""
        raise NotImplementedError

    def login(self, broker_id: str, username: str, password: str) -> None:
        """Log in at the broker (the session token and credentials are kept in the vault)."""
        raise NotImplementedError

    # ----- coins ------------------------------------------------------------------------------------------------
    def balance(self) -> list[BalanceLine]:
        """Unspent coins per broker and currency."""
        raise NotImplementedError

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
        raise NotImplementedError

    def list_chains(self) -> list[ChainSummary]:
        """Every chain the vault holds."""
        raise NotImplementedError

    def return_chain(self, chain_id: str) -> Money:
        """Hand a chain back to its broker (``POST /v1/chains/{id}/close``); return the refund."""
        raise NotImplementedError

    def refresh_revocations(self) -> None:
        """Fetch each trusted broker's signed revocation list and store it."""
        raise NotImplementedError

    def resync_chains(self) -> int:
        """Move chains marked ``needs_resync`` to the index the broker reports; return how many were resynced."""
        raise NotImplementedError

    # ----- payments ---------------------------------------------------------------------------------------------
    def check_quote(self, quote_wire: Any, cert_wire: Any, origin: str | None) -> CheckedQuote:
        """Check a quote from a vendor page: the vendor certificate is signed by a trusted broker, unexpired and
        not revoked; ``origin`` (when given) is one of its origins; the quote is signed by the certified key,
        names this vendor, is unexpired and not already paid. Raises the matching :mod:`netpay.errors` error."""
        raise NotImplementedError

    def pay_quote(
        self, quote: Signed[Quote], vendor_cert: Signed[VendorCertificate], origin: str | None, via: PayVia
    ) -> PaidQuote:
        """Pay a checked quote: journal the spend, send it, store the receipt. Raises ``InsufficientCoins``,
        ``PeerUnavailable`` (the spend stays pending and :meth:`recover_pending` finishes it) or the vendor's
        refusal as a :mod:`netpay.errors` error."""
        raise NotImplementedError

    def recover_pending(self) -> int:
        """Finish every pending spend by re-sending the same payment (idempotent at the vendor); return how many
        were finished. Called by :meth:`unlock` too."""
        raise NotImplementedError

    def receipt_for(self, quote_id: str, vendor_id: str) -> PaidQuote | None:
        """The stored receipt of a paid quote, if any."""
        raise NotImplementedError

    def activity(self, limit: int = 200) -> list[ActivityEntry]:
        """History, newest first."""
        raise NotImplementedError

    # ----- allowances -------------------------------------------------------------------------------------------
    def set_allowance(self, vendor_id: str, vendor_name: str, max_price: Money, daily_budget: Money) -> None:
        """Let ``vendor_id`` be paid without asking up to ``max_price`` per purchase and ``daily_budget`` per day."""
        raise NotImplementedError

    def allowances(self) -> list[AllowanceInfo]:
        """Every allowance with what was spent under it today."""
        raise NotImplementedError

    def revoke_allowance(self, vendor_id: str) -> None:
        """Remove a vendor's allowance."""
        raise NotImplementedError

    def covers(self, vendor_id: str, price: Money) -> bool:
        """True if the vendor's allowance covers ``price`` now (per-purchase maximum and today's budget)."""
        raise NotImplementedError

    # ----- settings ---------------------------------------------------------------------------------------------
    def get_setting(self, key: str, default: Any = None) -> Any:
        """A setting (JSON value) stored in the vault, e.g. ``auto_lock_s``."""
        raise NotImplementedError

    def set_setting(self, key: str, value: Any) -> None:
        """Store a setting (any JSON value)."""
        raise NotImplementedError
