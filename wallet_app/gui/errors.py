"""Clear, translated sentences for the errors the wallet's services raise."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication

from netpay import errors

__all__ = ["describe"]


def _tr(text: str) -> str:
    return QCoreApplication.translate("Errors", text)


def describe(exc: BaseException) -> str:
    """One sentence for people: what went wrong and that nothing was left half done."""
    if isinstance(exc, errors.CardDeclined):
        return _tr("The card was declined. Nothing was charged and no coins were made.")
    if isinstance(exc, errors.InsufficientFunds):
        return _tr("The card has insufficient funds. Nothing was charged and no coins were made.")
    if isinstance(exc, errors.PeerUnavailable) or type(exc).__name__ in {"ConnectionError", "Timeout"}:
        return _tr("The server could not be reached. Check that it is running and try again; nothing was changed.")
    if isinstance(exc, errors.InvalidCredentials):
        return _tr("Wrong user name or password.")
    if isinstance(exc, errors.Conflict):
        return _tr("That already exists: ") + exc.message
    if isinstance(exc, errors.InsufficientCoins):
        if exc.details.get("reason"):  # the wallet's own words: what is missing and which coins to buy
            return exc.message
        return _tr("Not enough coins for this price. Buy coins first.")
    if isinstance(exc, errors.WalletLocked):
        return _tr("The wallet is locked. Unlock it and try again.")
    if isinstance(exc, errors.NetPayError):
        return exc.message[:1].upper() + exc.message[1:] + "."
    text = str(exc) or type(exc).__name__
    return text[:1].upper() + text[1:]
