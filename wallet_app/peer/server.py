"""The peer server inside the wallet: quotes, payments, custody and redemption by ``vendor_stub`` (the same code a
shop runs), and ``GET /files/{item_id}`` for a paid file, with its SHA-256 and single-range (resumable) downloads.

Safety: files are looked up by id in the :class:`~wallet_app.peer.shares.ShareList`, never by a path; a download
needs the access token of a receipt for exactly that file; at most ``max_downloads`` run at once (more get
``rate_limited``); a range past the end is ``416``; :meth:`PeerServer.stop` stops every running download at the next
chunk and takes the listings off the CIS. The server binds its own host and port (off by default, see
:class:`PeerSettings`) and has no route to the vault or the loopback callback.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from netpay.errors import (
    Forbidden,
    NetPayError,
    PeerUnavailable,
    WalletLocked,
    error_from_body,
)
from netpay.keys import SigningKey
from netpay.messages import BusinessModel, VendorRequest
from netpay.peers import peer_id_for, registration_text
from netpay.signed import Signed
from wallet_app.peer.shares import ShareList
from wallet_app.peer.vaultdb import PeerVault, import_plain_records, new_secret, peer_sql

if TYPE_CHECKING:  # imported when sharing starts (wallet_app.peer.http_app): not at every wallet start
    from netpay_web.live import LiveServer
    from vendor_stub.catalog import Catalog
    from vendor_stub.service import Vendor

__all__ = ["PeerServer", "PeerSettings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PeerSettings:
    """Where the peer server listens and whom it tells. ``enabled`` is False by default: nothing is served until
    the user switches sharing on. ``host`` is the interface to bind (the wallet's callback stays on loopback).
    ``data_dir`` is only where wallets from before kept the peer's plain files (imported into the vault once); the
    peer keeps everything in the vault."""

    data_dir: Path
    broker_url: str
    broker_public_key: str
    display_name: str
    host: str = "127.0.0.1"
    port: int = 0
    public_url: str = ""
    enabled: bool = False
    max_downloads: int = 8
    heartbeat_s: float = 60.0
    redeem_interval_s: float = 3600.0
    tls_cert: str | None = None
    tls_key: str | None = None
    currency: str = "EUR"


class PeerServer:
    """One wallet's peer: ``start()`` certifies it at the CIS and serves; ``stop()`` switches everything off."""

    def __init__(self, settings: PeerSettings, session_token: Callable[[], str], records: PeerVault) -> None:
        self.settings = settings
        self._token = session_token
        self.records = records
        self.shares = ShareList(records, settings.currency)
        self._key: SigningKey | None = None
        self.stopped_because = ""  # why sharing stopped by itself (the vault locked), for the Sharing page
        records.session.before_lock(self.stop_for_lock)
        self.vendor: Vendor | None = None
        self.peer_id: str | None = None
        self._server: LiveServer | None = None
        self._serving = threading.Event()
        self.download_slots = threading.BoundedSemaphore(settings.max_downloads)  # downloads served at once
        self._stop_heartbeat = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self.port = settings.port
        self._http = requests.Session()
        self._life = threading.RLock()  # one start/stop/switch at a time
        self._locking = threading.Event()  # the vault is locking: stop as soon as the operation under way ends

    # -- lifecycle ----------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._serving.is_set()

    @property
    def base_url(self) -> str:
        s = self.settings
        scheme = "https" if s.tls_cert else "http"
        return (s.public_url or f"{scheme}://{s.host}:{self.port}").rstrip("/")

    @contextmanager
    def _op(self) -> Iterator[None]:
        """One start/stop/switch at a time. A vault lock that came meanwhile (:meth:`stop_for_lock` could not wait
        for the operation: it may need the wallet's lock the locking thread holds) is carried out on the way out."""
        try:
            with self._life:
                yield
        finally:
            self._settle_lock()

    def _settle_lock(self) -> None:
        if self._locking.is_set() and self._life.acquire(blocking=False):
            try:
                if self._locking.is_set():
                    self._locking.clear()
                    if self.running or self.vendor is not None or self._server is not None:
                        self._teardown(redeem=False)
                        self.stopped_because = "Sharing stopped because the wallet locked."
            finally:
                self._life.release()

    def start(self) -> str:
        """Bind the port, get certified at the CIS, publish the listings; returns the peer's base URL."""
        with self._op():
            if self.running:
                return self.base_url
            try:
                return self._start()
            except BaseException:
                self._teardown(redeem=False)  # nothing half started stays behind
                raise

    def _start(self) -> str:
        from vendor_stub.service import Vendor, VendorHost
        from vendor_stub.settings import VendorSettings
        from vendor_stub.storage import Store
        from wallet_app.peer.http_app import build_peer_app, peer_server

        if not self.settings.enabled:
            raise Forbidden("sharing is switched off in the settings", reason="sharing_off")
        if not self.records.session.unlocked:
            raise WalletLocked("the wallet is locked: unlock it to share files")
        self.import_plain_files()
        self.stopped_because = ""
        if not self.port:  # chosen once and kept, so a payment sent before a restart still finds this peer
            from netpay_web.live import free_port

            self.port = int(self.records.setting("sharing_port_chosen", 0)) or free_port(self.settings.host)
            self.records.set_setting("sharing_port_chosen", self.port)
        answer = self._broker("POST", "/v1/cis/peers", self._registration())
        self.peer_id = str(answer["peer_id"])
        vs = VendorSettings(
            name=self.settings.display_name, catalog=Path("/nonexistent"), data_dir=Path(self.settings.data_dir),
            broker_url=self.settings.broker_url, host=self.settings.host, port=self.port, vendor_id=self.peer_id,
            public_url=self.base_url, broker_public_key=self.settings.broker_public_key,
            redeem_interval_s=self.settings.redeem_interval_s, tls=bool(self.settings.tls_cert),
        )  # fmt: skip
        host = VendorHost(self.key, self.records.secret("access_secret", new_secret),
                          Store(self.records.path, connect=self.records.connect))  # fmt: skip
        self.vendor = Vendor(vs, self._catalog(), host)
        tls = {}
        if self.settings.tls_cert:
            tls = {"ssl_certfile": self.settings.tls_cert, "ssl_keyfile": self.settings.tls_key}
        app = build_peer_app(self, self.vendor)
        self._server = peer_server(app, self.settings.host, self.port, self.settings.max_downloads, tls)
        self._serving.set()
        self._server.start()
        self.publish()
        self._stop_heartbeat.clear()
        self._heartbeat = threading.Thread(target=self._beat, name="peer-heartbeat", daemon=True)
        self._heartbeat.start()
        return self.base_url

    def stop(self, redeem: bool = True) -> None:
        """Switch sharing off at once: running downloads end at their next chunk, the listings leave the CIS, the
        port closes. Payments already recorded stay recorded and are redeemed (now, best effort, unless
        ``redeem`` is False; else at the next start)."""
        with self._op():
            if self.running:
                self._teardown(redeem)

    def _teardown(self, redeem: bool) -> None:
        if not (self._serving.is_set() or self._server is not None or self.vendor is not None):
            return  # nothing was started
        self._serving.clear()
        self._stop_heartbeat.set()
        try:
            self._broker("POST", "/v1/cis/offline", None)
        except NetPayError as exc:
            log.info("could not take the listings off the CIS: %s", exc.message)
        if self._server is not None:
            self._server.stop()
        if self.vendor is not None:
            if redeem:
                try:
                    self.vendor.redeemer.redeem()
                except NetPayError as exc:
                    log.info("redemption postponed: %s", exc.message)
            self.vendor.close()
        self._server = self.vendor = None

    def switch_on(self) -> str:
        """The user starts sharing: start, and remember it so the wallet's next start resumes it."""
        with self._op():
            url = self.start()
            self.records.set_setting("sharing_on", True)
            return url

    def switch_off(self) -> None:
        """The user stops sharing: stop, and remember it (the next start stays off)."""
        with self._op():
            if self.records.session.unlocked:
                self.records.set_setting("sharing_on", False)
            self.stop()

    def resume(self) -> bool:
        """At the wallet's start (and after an unlock): share again if sharing was on when it last stopped and
        the setting ``sharing_at_login`` lets it (default on). True when sharing now runs."""
        with self._op():
            if self.running:
                return True
            if not self.records.setting("sharing_on", False) or not self.records.setting("sharing_at_login", True):
                return False
            self.start()
            return True

    def reconfigure(self, host: str, port: int) -> None:
        """Listen on ``host``:``port`` (0: a port chosen once and kept) from now on; a running server moves there
        at once (stopped and started again)."""
        with self._op():
            if (host, port) == (self.settings.host, self.settings.port):
                return
            was_running = self.running
            if was_running:
                self.stop(redeem=False)
            if host != self.settings.host and not port:
                self.records.set_setting("sharing_port_chosen", 0)  # the kept port was free on the old address
            self.settings = replace(self.settings, host=host, port=port)
            self.port = port
            if was_running:
                self.start()

    def stop_for_lock(self) -> None:
        """The vault is about to lock (or be re-keyed or restored): stop at once, its records are out of reach.
        Runs in the locking thread; when a start or stop is under way in another thread, that one stops on its
        way out (see :meth:`_op`) instead of this one waiting for it."""
        self._locking.set()
        self._settle_lock()
        self.shares.forget()
        self._key = None  # read again from the vault (a restored one may hold another)

    @property
    def key(self) -> SigningKey:
        """The peer's signing key, kept in the vault."""
        if self._key is None:
            self._key = SigningKey.from_seed(self.records.secret("signing_key", new_secret))
        return self._key

    def import_plain_files(self) -> dict[str, int] | None:
        """Move a wallet's plain peer files from before (``settings.data_dir``) into the vault, once."""
        counts = import_plain_records(self.records.session, Path(self.settings.data_dir))
        if counts is not None:
            self.shares.forget()
            self._key = None
            log.info("moved the peer's plain files into the vault: %s", counts)
        return counts

    def publish(self) -> dict[str, Any]:
        """Send the current share list to the CIS (and let the payment desk sell exactly these files)."""
        if self.vendor is not None:
            self.vendor.set_catalog(self._catalog())
        result: dict[str, Any] = self._broker("PUT", "/v1/cis/listings",
                                              {"listings": [s.listing() for s in self.shares.all()]})  # fmt: skip
        return result

    def redeem_now(self) -> dict[str, Any]:
        """Redeem every recorded payment now (otherwise the redeemer runs every ``redeem_interval_s``)."""
        if self.vendor is None:
            raise Forbidden("sharing is off", reason="sharing_off")
        return self.vendor.redeemer.redeem()

    def earnings(self) -> dict[str, int]:
        """What this wallet owns as a seller, from its records in the vault: ``downloads`` sold, cents ``earned``
        (every coin received), ``pending`` (received, not yet redeemed), ``redeemed`` (paid to the broker
        account) and ``rejected`` (refused by the broker at redemption)."""
        vault = self.records.vault
        return _earnings(lambda sql: vault.one(peer_sql(sql)))

    def broker_account(self) -> dict[str, Any]:
        """What the broker holds for this wallet as a seller: ``payable`` (redeemed, not yet paid out), ``paid_out``
        and ``redeemed`` (Money JSON), asked with a request signed by the peer's key (``GET /v1/vendors/{id}/
        account``, as a shop asks for its own)."""
        peer_id = self.peer_id or peer_id_for(str(self._broker("GET", "/v1/account", None)["account_id"]))
        request = VendorRequest(peer_id, "account", secrets.token_hex(12), int(time.time()))
        signed = json.dumps(Signed.sign(request, self.key).to_wire())
        url = f"{self.settings.broker_url.rstrip('/')}/v1/vendors/{peer_id}/account"
        try:
            resp = self._http.get(url, headers={"X-NetPay-Signed": signed}, timeout=10)
        except requests.RequestException as exc:
            raise PeerUnavailable(f"the broker could not be reached: {type(exc).__name__}") from None
        data = resp.json() if resp.content else None
        if resp.status_code == 404:  # never certified: nothing redeemed yet
            zero = {"amount": 0, "currency": self.settings.currency}
            return {"vendor_id": peer_id, "payable": zero, "paid_out": zero, "redeemed": zero}
        if resp.status_code >= 400:
            raise error_from_body(data, resp.status_code)
        result: dict[str, Any] = data
        return result

    def standing(self) -> dict[str, Any]:
        """The account's requested/supplied totals and whether the broker's supply policy lets it buy coins."""
        result: dict[str, Any] = self._broker("GET", "/v1/cis/standing", None)
        return result

    # -- internals ----------------------------------------------------------------------------------------------
    def _registration(self) -> dict[str, Any]:
        broker = self._broker("GET", "/v1/info", None, auth=False)
        account = self._broker("GET", "/v1/account", None)
        peer_id = peer_id_for(str(account["account_id"]))
        proof = self.key.sign(registration_text(str(broker["broker_id"]), peer_id, self.key.public.hex, self.base_url))
        return {"display_name": self.settings.display_name, "public_key": self.key.public.hex,
                "api_url": self.base_url, "proof": proof.hex()}  # fmt: skip

    def _broker(self, method: str, path: str, body: Any, auth: bool = True) -> Any:
        headers = {"Authorization": f"Bearer {self._token()}"} if auth else {}
        url = self.settings.broker_url.rstrip("/") + path
        try:
            resp = self._http.request(method, url, json=body, headers=headers, timeout=10)
        except requests.RequestException as exc:
            from netpay.errors import PeerUnavailable

            raise PeerUnavailable(f"the broker could not be reached: {type(exc).__name__}") from None
        data = resp.json() if resp.content else None
        if resp.status_code >= 400:
            raise error_from_body(data, resp.status_code)
        return data

    def _beat(self) -> None:
        while not self._stop_heartbeat.wait(self.settings.heartbeat_s):
            try:
                self._broker("POST", "/v1/cis/heartbeat", None)
            except NetPayError as exc:
                log.info("CIS heartbeat failed: %s", exc.message)

    def _catalog(self) -> Catalog:
        from vendor_stub.catalog import Catalog, Item

        one_off = BusinessModel.from_json({"kind": "one_off"}, "model")
        items = tuple(Item(s.item_id, s.title, s.money, one_off, s.description, ()) for s in self.shares.all())
        return Catalog(self.settings.display_name, "", "files", self.settings.currency, items)


def _earnings(one: Callable[[str], Any]) -> dict[str, int]:
    sold = one("SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM payments")
    by = one("SELECT COALESCE(SUM(CASE WHEN status IN ('pending', 'submitted') THEN amount END), 0), "
             "COALESCE(SUM(CASE WHEN status = 'redeemed' THEN amount END), 0), "
             "COALESCE(SUM(CASE WHEN status = 'rejected' THEN amount END), 0) FROM spends")  # fmt: skip
    return {"downloads": int(sold[0]), "earned": int(sold[1]), "pending": int(by[0]), "redeemed": int(by[1]),
            "rejected": int(by[2])}  # fmt: skip
