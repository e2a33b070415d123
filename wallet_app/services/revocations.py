"""How fresh the wallet keeps each trusted broker's revocation list (docs/protocol.md §6, "Revocations").

- **Soft window, 10 minutes** (:data:`SOFT_S`). A quote checked or paid with a list older than this starts a refresh
  in the background and goes on with the list it has: no network round trip on the payment's path.
- **Hard limit, 1 hour** (:data:`HARD_S`). With a list older than this, or none at all, the wallet fetches the list
  before it checks the quote or picks coins (one round trip, at most once an hour per broker while it answers).
- **Broker down.** If that fetch fails, the wallet pays with the list it has (payments never need the broker) and
  does not block on that broker again for :data:`RETRY_S`; the background refresh keeps trying.
- **In the background** (:meth:`RevocationWatch.start`, started by the desktop app) every broker's list is refreshed
  every :data:`SOFT_S`, and at once after a vendor refused a chain as revoked.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from netpay.errors import NetPayError, WalletLocked
from wallet_app.services.brokers import BrokerDesk
from wallet_app.services.payments import TrustView

__all__ = ["HARD_S", "RETRY_S", "SOFT_S", "RevocationWatch"]

log = logging.getLogger(__name__)

SOFT_S = 600
HARD_S = 3600
RETRY_S = 60


class RevocationWatch:
    """Keeps the revocation lists of the trusted brokers fresh (see the module docstring for the policy)."""

    def __init__(self, desk: BrokerDesk, trust: TrustView, clock: Callable[[], float]) -> None:
        self.desk = desk
        self.trust = trust
        self.clock = clock
        self._failed_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._running = False  # a background refresh is under way
        self._stop: threading.Event | None = None
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def ensure_fresh(self, broker_id: str) -> bool:
        """Before a quote is checked or paid: block only past the hard limit; start a refresh past the soft one.
        True when the list was fetched just now (the caller checks again against it)."""
        now = self.clock()
        age = now - self.trust.fetched_at.get(broker_id, float("-inf"))
        if age <= SOFT_S:
            return False
        if age > HARD_S and now - self._failed_at.get(broker_id, float("-inf")) > RETRY_S:
            try:
                self.desk.refresh_revocations([broker_id])
                return True
            except NetPayError as exc:
                self._failed_at[broker_id] = now
                log.warning("revocation list of %s could not be fetched (%s); paying with the one held", broker_id,
                            exc.code)  # fmt: skip
        self.refresh_soon()
        return False

    def refresh_soon(self) -> None:
        """Refresh every trusted broker's list on a background thread (one at a time; a no-op while one runs)."""
        if self._stop is not None:
            self._wake.set()
            return
        with self._lock:
            if self._running:
                return
            self._running = True
        self._thread = threading.Thread(target=self._refresh_once, name="wallet-revocations", daemon=True)
        self._thread.start()

    def join(self, timeout: float = 30.0) -> None:
        """Wait for the last background refresh started by :meth:`refresh_soon` (tests, shutdown)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _refresh_once(self) -> None:
        try:
            self._refresh()
        finally:
            with self._lock:
                self._running = False

    def _refresh(self) -> None:
        try:
            self.desk.refresh_revocations()
            if self.desk.vault.one("SELECT 1 FROM chains WHERE needs_resync = 1"):
                self.desk.resync()  # a chain of ours newly revoked: closed elsewhere (refunded) or double-spent
        except WalletLocked:
            pass
        except NetPayError as exc:
            log.info("background revocation refresh: %s", exc.code)
        except Exception:  # a background thread must not die silently on a bug
            log.exception("background revocation refresh failed")

    def start(self, interval_s: float = SOFT_S) -> None:
        """Refresh every ``interval_s`` seconds, and whenever :meth:`refresh_soon` is called, until :meth:`stop`."""
        if self._stop is not None:
            return
        stop = self._stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                self._refresh()
                self._wake.wait(interval_s)
                self._wake.clear()

        threading.Thread(target=loop, name="wallet-revocation-watch", daemon=True).start()

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
            self._wake.set()
            self._stop = None
