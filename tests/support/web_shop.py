"""A shop on the open web, for the browser tests: the Daily Planet served over HTTPS (a certificate from a test CA
made with ``trustme``) by ``netpay-vendor`` running in a test host's network namespace (:mod:`tests.support.netns`),
so the page's origin is a non-loopback address and the browser's secure-context and Local Network Access rules apply
as they do to a real shop. The broker stays on this machine; the shop reaches it across the veth pair.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from netpay.keys import load_or_create_key
from netpay_web.live import LiveServer, free_port
from tests.support.broker import RunningBroker
from tests.support.netns import TestHost, namespace_host
from tests.support.vendor import NEWSPAPER
from vendor_stub.service import key_path

__all__ = ["WebShop", "spki_hash", "web_shop"]


def spki_hash(cert_pem: bytes) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of a certificate: what ``--ignore-certificate-errors-spki-list`` takes."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@dataclass
class WebShop:
    """The shop at ``origin`` (``https://<namespace address>``); ``ca_file`` verifies its certificate."""

    host: TestHost
    origin: str
    vendor_id: str
    ca_file: Path
    leaf_spki: str
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def web_shop(broker: RunningBroker, tmp: Path) -> Iterator[WebShop]:
    """Namespace, certificates, the broker reachable from it, and the shop process; all gone afterwards."""
    with namespace_host() as host:
        ca = trustme.CA()
        leaf = ca.issue_cert(host.address)
        ca_file, cert, key = tmp / "test-ca.pem", tmp / "shop-cert.pem", tmp / "shop-key.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        leaf.private_key_pem.write_to_path(str(key))
        origin = f"https://{host.address}"
        # The same broker app, also listening on this machine's end of the veth pair.
        outside = LiveServer(broker.server.server.config.app, host=host.gateway, port=free_port(host.gateway)).start()
        data = tmp / "web-shop"
        vendor_id = "daily-planet"
        shop_key = load_or_create_key(key_path(data))
        broker.register_vendor(vendor_id, shop_key, api_url=origin, display_name="Daily Planet")
        log_path = tmp / "web-shop.log"
        argv = [sys.executable, "-m", "vendor_stub.cli", "serve", "--name", "Daily Planet", "--vendor-id", vendor_id,
                "--catalog", str(NEWSPAPER), "--host", host.address, "--port", "443", "--public-url", origin,
                "--broker", outside.url, "--broker-key", broker.public_key.hex, "--data-dir", str(data),
                "--tls-cert", str(cert), "--tls-key", str(key)]  # fmt: skip
        with log_path.open("wb") as log:
            proc = subprocess.Popen(host.command(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        shop = WebShop(host, origin, vendor_id, ca_file, spki_hash(leaf.cert_chain_pems[0].bytes()), log_path)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if requests.get(f"{origin}/v1/info", timeout=2, verify=str(ca_file)).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the web shop did not start:\n{shop.log_tail()}")
                time.sleep(0.1)
            yield shop
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            outside.stop()
