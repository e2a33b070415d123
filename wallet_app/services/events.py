"""Events the wallet engine reports, as plain callbacks (the GUI turns them into Qt signals).

Every callback is called on the thread that caused the event; a failing callback is logged and ignored so the
engine never breaks because of a listener.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["WalletEvents"]

log = logging.getLogger(__name__)


@dataclass
class WalletEvents:
    """Lists of listeners, one per event. Add with e.g. ``events.balance_changed.append(fn)``.

    - ``balance_changed()``: unspent coins changed (buy, pay, release, return, restore).
    - ``payment_settled(paid: PaidQuote)``: a receipt was stored.
    - ``auto_payment_made(paid: PaidQuote)``: a payment was made under an allowance without asking.
    - ``vault_locking()``: the vault is about to lock (still open: a last write, such as taking back a payment a
      program journalled ahead, can be made now).
    - ``vault_locked()``: the vault was locked (by the user or after the idle time).
    - ``vault_unlocked()``: the vault was opened.
    - ``payment_failed(payment_id: str, code: str, message: str)``: a payment was refused (released or burned).
    - ``subscription_renewed(sub)`` / ``subscription_stopped(sub)``: a pass renewed, or could not within its cap.
    - ``metered_changed(session)``: a metered session opened, paid a unit or ended.
    """

    balance_changed: list[Callable[[], None]] = field(default_factory=list)
    payment_settled: list[Callable[[Any], None]] = field(default_factory=list)
    auto_payment_made: list[Callable[[Any], None]] = field(default_factory=list)
    vault_locking: list[Callable[[], None]] = field(default_factory=list)
    vault_locked: list[Callable[[], None]] = field(default_factory=list)
    vault_unlocked: list[Callable[[], None]] = field(default_factory=list)
    payment_failed: list[Callable[[str, str, str], None]] = field(default_factory=list)
    subscription_renewed: list[Callable[[Any], None]] = field(default_factory=list)
    subscription_stopped: list[Callable[[Any], None]] = field(default_factory=list)
    metered_changed: list[Callable[[Any], None]] = field(default_factory=list)

    def emit(self, name: str, *args: Any) -> None:
        """Call every listener of ``name`` with ``args``."""
        for fn in list(getattr(self, name)):
            try:
                fn(*args)
            except Exception:  # a listener must never break the engine
                log.exception("listener of %s failed", name)
