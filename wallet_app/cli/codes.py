"""Exit codes of ``netpay-wallet`` subcommands: each says what failed (table in the README).

| code | meaning |
|---|---|
| 0 | done |
| 1 | unexpected failure (a bug: the message says what) |
| 2 | usage: bad arguments or bad input (amount, URL, file) |
| 3 | the vault is in use: a wallet window (or another command) has it open |
| 4 | the vault could not be opened: wrong or missing passphrase, no keyring, damaged, too new |
| 5 | no vault yet (run ``init``), or ``init`` on an existing vault |
| 6 | a broker or shop could not be reached (a payment may stay pending: ``unlock`` finishes it) |
| 7 | a broker or shop refused (its error code is in the message / JSON) |
| 8 | not enough coins or money (buy coins, top up) |
| 9 | the spending rules forbid the payment: nothing was paid |
| 10 | the resource still answers 402 after paying |
"""

from __future__ import annotations

from netpay.errors import InsufficientCoins, InsufficientFunds, MalformedMessage, NetPayError, PeerUnavailable
from wallet_app.client.rules import OverBudget
from wallet_app.vault.errors import VaultError, VaultExists, VaultInUse, VaultMissing

__all__ = [
    "BUG",
    "IN_USE",
    "NO_VAULT",
    "OK",
    "OVER_RULES",
    "REFUSED",
    "STILL_402",
    "UNREACHABLE",
    "USAGE",
    "VAULT",
    "WANTING",
    "code_for",
]

OK, BUG, USAGE, IN_USE, VAULT, NO_VAULT, UNREACHABLE, REFUSED, WANTING, OVER_RULES, STILL_402 = range(11)


def code_for(exc: BaseException) -> int:
    """The exit code for an error raised by a command."""
    if isinstance(exc, VaultInUse):
        return IN_USE
    if isinstance(exc, VaultMissing | VaultExists):
        return NO_VAULT
    if isinstance(exc, VaultError):
        return VAULT
    if isinstance(exc, OverBudget):
        return OVER_RULES
    if isinstance(exc, InsufficientCoins | InsufficientFunds):
        return WANTING
    if isinstance(exc, PeerUnavailable):
        return UNREACHABLE
    if isinstance(exc, MalformedMessage | ValueError):
        return USAGE
    if isinstance(exc, NetPayError):
        return REFUSED
    return BUG
