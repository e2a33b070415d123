"""The vendor as one object: key, database, trust, custody book, payment desk and background workers."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from netpay.errors import NetPayError
from netpay.keys import SigningKey, load_or_create_key
from vendor_stub.access import AccessTokens, load_or_create_secret
from vendor_stub.background import Redeemer, SpendReporter
from vendor_stub.broker_client import BrokerClient
from vendor_stub.catalog import Catalog
from vendor_stub.custody import ChainBook
from vendor_stub.handover import TokenHandover
from vendor_stub.metered import MeteredDesk
from vendor_stub.payments import PaymentDesk
from vendor_stub.refunds import RefundDesk
from vendor_stub.settings import VendorSettings
from vendor_stub.storage import Store
from vendor_stub.trust import Trust

__all__ = ["Vendor", "VendorHost", "key_path"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class VendorHost:
    """What a program that hosts a vendor desk supplies instead of the vendor's own files (the wallet's peer keeps
    these in its encrypted vault): the signing key, the access-token secret and the store."""

    key: SigningKey
    access_secret: bytes
    store: Store


def key_path(data_dir: Path) -> Path:
    return Path(data_dir) / "vendor_key"


class Vendor:
    """Everything one running vendor owns. ``start()`` launches the background workers, ``close()`` stops them."""

    def __init__(self, settings: VendorSettings, catalog: Catalog | None = None, host: VendorHost | None = None,
                 ) -> None:  # fmt: skip
        self.settings = settings
        self.vendor_id = settings.id
        if host is None:
            data = Path(settings.data_dir)
            data.mkdir(parents=True, exist_ok=True)
            self.key: SigningKey = load_or_create_key(key_path(data))
            self.tokens = AccessTokens(load_or_create_secret(data / "access_secret"))
            self.store = Store(settings.database)
        else:
            self.key, self.tokens, self.store = host.key, AccessTokens(host.access_secret), host.store
        self.catalog = catalog or Catalog.load(settings.catalog)
        self.tokens.bundles = {b.item_id: frozenset(b.model.items) for b in self.catalog.bundles}
        self.store.set_meta("vendor_id", self.vendor_id)
        self.store.set_meta("broker_url", settings.broker_url)
        self.broker = BrokerClient(settings.broker_url)
        self.trust = Trust(self.store, self.broker, self.key, self.vendor_id, settings.broker_public_key)
        self.clock_offset = 0
        self.book = ChainBook(self.store, self.trust, self.broker, self.key, self.vendor_id, self.now,
                              settings.release_timeout_s)  # fmt: skip
        self.reporter = SpendReporter(self.store, self.broker, self.key, self.vendor_id, self.now,
                                      settings.report_delay_s)  # fmt: skip
        self.redeemer = Redeemer(self.store, self.broker, self.trust, self.key, self.vendor_id, self.now,
                                 settings.redeem_interval_s)  # fmt: skip
        self.handover = TokenHandover(self.store, self.tokens, self.now)
        self.metered = MeteredDesk(self.store, self.catalog, self.tokens, self.now)
        self.desk = PaymentDesk(self.store, self.trust, self.book, self.key, self.vendor_id, self.catalog,
                                self.tokens, self.now, self.reporter.poke, metered=self.metered)  # fmt: skip
        self.refunds = RefundDesk(self.store, self.key, self.vendor_id, self.broker, self.tokens, self.now,
                                  settings.refund_window_s)  # fmt: skip
        self.redeemer.after_round = self.refunds.settle
        self._started = False
        self._stop = threading.Event()
        self._revocations: threading.Thread | None = None

    def set_catalog(self, catalog: Catalog) -> None:
        """Replace what this vendor sells while it runs (a host that supplies its own catalog, e.g. a wallet's
        shared files): the catalog page and the payment desk both use the new one at once."""
        self.catalog = catalog
        self.tokens.bundles = {b.item_id: frozenset(b.model.items) for b in catalog.bundles}
        self.desk.set_catalog(catalog)

    def now(self) -> int:
        """Seconds since the epoch (plus a test offset, to exercise expiry)."""
        return int(time.time()) + self.clock_offset

    def start(self) -> None:
        """Contact the broker (best effort) and start the background workers."""
        if self._started:
            return
        self._started = True
        try:
            self.trust.certificate()
            self.trust.refresh_revocations()
        except NetPayError as exc:
            log.warning("broker not ready at start (%s: %s); will retry on demand", exc.code, exc.message)
        if self.settings.background and self.settings.settlement:
            self.reporter.start()
            self.redeemer.start()
        if self.settings.background:
            self._revocations = threading.Thread(target=self._refresh_revocations, name="vendor-revocations",
                                                 daemon=True)  # fmt: skip
            self._revocations.start()

    def _refresh_revocations(self) -> None:
        every = self.settings.revocation_refresh_s
        while not self._stop.wait(every):
            self.trust.maybe_refresh_revocations(every)

    def close(self) -> None:
        self._stop.set()
        if self._revocations is not None:
            self._revocations.join(timeout=10)
        self.reporter.stop()
        self.redeemer.stop()
        self.store.close()
