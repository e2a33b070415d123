"""Pay for HTTP APIs from programs: a ``requests`` session that answers ``402 Payment Required`` from a NetPay shop
by paying from the wallet under spending rules and retrying with the access token (``docs/protocol.md`` §5.8).

    from wallet_app.client import PayingSession, SpendingRules, open_wallet
    wallet = open_wallet("~/.local/share/netpay-wallet", passphrase)
    api = PayingSession(wallet, SpendingRules.parse(per_request=2, per_host_daily=50, daily=100, currency="EUR"))
    print(api.get("https://planet.example/api/search", params={"q": "comet"}).json())
"""

from wallet_app.client.rules import Budget, OverBudget, SpendingRules
from wallet_app.client.session import PayingSession, open_wallet

__all__ = ["Budget", "OverBudget", "PayingSession", "SpendingRules", "open_wallet"]
