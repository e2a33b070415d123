"""Pay for HTTP APIs from programs: a ``requests`` session that answers ``402 Payment Required`` from a NetPay shop
by paying from the wallet under spending rules and retrying with the access token (``docs/protocol.md`` §5.8).

    from wallet_app.client import SpendingRules, connect
    rules = SpendingRules.parse("EUR", per_request=2, per_host_daily=50, daily=100)
    with connect("~/.local/share/netpay-wallet", rules, passphrase) as api:  # the running wallet, or the vault
        print(api.get("https://planet.example/api/search", params={"q": "comet"}).json())
"""

from wallet_app.client.channel import AgentChannel, ChannelPayer, PaidInfo
from wallet_app.client.rules import Budget, OverBudget, SpendingRules
from wallet_app.client.session import PayingSession, VaultPayer, connect, open_wallet

__all__ = [
    "AgentChannel",
    "Budget",
    "ChannelPayer",
    "OverBudget",
    "PaidInfo",
    "PayingSession",
    "SpendingRules",
    "VaultPayer",
    "connect",
    "open_wallet",
]
