"""Wallet services: the API the GUI and the browser hand-off call. See ``docs/design/wallet-core.md``."""

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
from wallet_app.services.wallet import WalletService

__all__ = [
    "ActivityEntry",
    "AllowanceInfo",
    "BalanceLine",
    "BrokerInfo",
    "BuyProgress",
    "ChainSummary",
    "CheckedQuote",
    "PaidQuote",
    "PayVia",
    "WalletEvents",
    "WalletService",
]
