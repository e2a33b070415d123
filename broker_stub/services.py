"""All services of one broker instance, wired together (what the routers and the CLI use)."""

from __future__ import annotations

from broker_stub.accounts import AccountService
from broker_stub.cis import CisService
from broker_stub.closing import ClosingService
from broker_stub.core import BrokerCore
from broker_stub.custody import CustodyService
from broker_stub.hosted import HostedService
from broker_stub.issuing import IssuingService
from broker_stub.payouts import PayoutService
from broker_stub.redemption import RedemptionService
from broker_stub.refunds import RefundService
from broker_stub.revocation import RevocationService
from broker_stub.settings import BrokerSettings
from broker_stub.vendors import VendorService

__all__ = ["Broker"]


class Broker:
    """One broker: its core state and every service over it."""

    def __init__(self, settings: BrokerSettings) -> None:
        self.core = BrokerCore(settings)
        self.accounts = AccountService(self.core)
        self.issuing = IssuingService(self.core, self.accounts)
        self.vendors = VendorService(self.core)
        self.custody = CustodyService(self.core, self.vendors)
        self.redemption = RedemptionService(self.core, self.vendors)
        self.refunds = RefundService(self.core, self.vendors)
        self.revocations = RevocationService(self.core)
        self.closing = ClosingService(self.core, self.accounts)
        self.payouts = PayoutService(self.core, self.vendors)
        self.hosted = HostedService(self.core, self.issuing, self.vendors, self.closing)
        self.cis = CisService(self.core, self.vendors)
        self.issuing.may_buy = self.cis.check_may_buy

    def close(self) -> None:
        self.core.close()
