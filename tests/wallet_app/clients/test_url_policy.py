"""The wallet's URL policy and TLS trust: plain HTTP only to this computer, certificates always verified (default
bundle, or the CA file the user names); the broker's CLI serves HTTPS with --tls-cert/--tls-key."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from netpay.errors import Forbidden, MalformedMessage, PeerUnavailable
from netpay.keys import load_or_create_key
from netpay.messages import Quote, VendorCertificate
from netpay.signed import Signed
from netpay_web.live import free_port
from tests.support.broker import RunningBroker
from tests.support.vendor import start_vendor
from tests.support.wallet import quote_for
from vendor_stub.service import key_path
from wallet_app.clients import BrokerClient, VendorClient
from wallet_app.clients.http import set_ca_file, shared_session
from wallet_app.clients.policy import is_loopback_host, require_secure_url


@pytest.mark.parametrize(
    "url", ["http://10.0.0.5:8100", "http://broker.example", "http://[fe80::1]:80", "http://127.0.0.1.nip.io"]
)
def test_plain_http_across_the_network_is_refused_before_anything_is_sent(url: str) -> None:
    with pytest.raises(Forbidden) as err:
        BrokerClient(url)
    assert err.value.details["reason"] == "insecure_url" and "https://" in err.value.message


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8100", "http://127.9.9.9", "http://localhost:1", "http://[::1]:5", "https://broker.example"],
)
def test_https_anywhere_and_http_on_this_computer_are_accepted(url: str) -> None:
    assert BrokerClient(url).base_url == url
    assert require_secure_url(url) == url


def test_other_schemes_are_malformed_and_a_payment_url_is_checked_too() -> None:
    for url in ("ftp://broker.example", "file:///etc/passwd", "broker.example"):
        with pytest.raises(MalformedMessage):
            require_secure_url(url)
    vendor = VendorClient("https://shop.example")
    with pytest.raises(Forbidden):  # a quote naming a plain-HTTP payment URL elsewhere: refused, nothing sent
        vendor.pay({"quote": {}}, payment_url="http://shop.example/v1/payments")
    assert not is_loopback_host("") and is_loopback_host("LOCALHOST") and not is_loopback_host("10.1.2.3")


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[str, trustme.CA]]:
    """``netpay-broker serve`` over HTTPS on loopback with a certificate from a test CA."""
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    leaf.private_key_and_cert_chain_pem.write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "broker_stub.cli", "serve", "--port", str(port), "--data-dir", str(tmp_path / "b"),
         "--tls-cert", str(cert), "--tls-key", str(key), "--log-level", "info"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"on https://127.0.0.1:{port}" in first, first
        yield f"https://127.0.0.1:{port}", ca
    finally:
        proc.terminate()
        proc.wait(10)


def test_certificates_are_verified_against_the_named_ca_file(
    tls_broker: tuple[str, trustme.CA], tmp_path: Path
) -> None:
    url, ca = tls_broker
    client = BrokerClient(url)
    try:
        # the default bundle does not know the test CA: a clear refusal, not an answer
        import time

        deadline = time.monotonic() + 20
        while True:
            try:
                client.info()
                raise AssertionError("an unknown CA was trusted")
            except PeerUnavailable as exc:
                if exc.details.get("reason") == "tls":
                    assert "NETPAY_WALLET_CA_FILE" in exc.message and "could not be verified" in exc.message
                    break
                assert time.monotonic() < deadline, exc.message  # the broker is still starting
                time.sleep(0.1)
        pem = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(pem))
        set_ca_file(str(pem))
        assert shared_session().verify == str(pem)
        assert client.info()["broker_id"]
        other = trustme.CA()  # a certificate from another CA is refused even with a CA file set
        other_pem = tmp_path / "other.pem"
        other.cert_pem.write_to_path(str(other_pem))
        set_ca_file(str(other_pem))
        with pytest.raises(PeerUnavailable) as err:
            client.info()
        assert err.value.details["reason"] == "tls"
    finally:
        set_ca_file(None)
    assert shared_session().verify is True


def test_server_clis_refuse_half_a_tls_pair(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    cert = tmp_path / "cert.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    env = {**os.environ, "NETPAY_VENDOR_DATA_DIR": str(tmp_path / "v")}
    for cmd in (
        [sys.executable, "-m", "broker_stub.cli", "serve", "--data-dir", str(tmp_path / "b"), "--tls-cert", str(cert)],
        [sys.executable, "-m", "vendor_stub.cli", "serve", "--tls-cert", str(cert), "--tls-key", str(tmp_path / "no")],
        [sys.executable, "-m", "vendor_stub.cli", "serve", "--tls-cert", str(cert), "--tls-key", str(cert)],
        [sys.executable, "-m", "vendor_stub.cli", "serve", "--publisher-token", "short"],
    ):
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
        assert out.returncode == 2, out.stderr
        assert ("tls" in out.stderr.lower() or "publisher-token" in out.stderr) and "Traceback" not in out.stderr


def test_a_certified_vendor_on_plain_http_elsewhere_is_refused_before_any_coin_moves(
    funded_wallet: Any, broker: RunningBroker, tmp_path: Path
) -> None:
    """A trusted broker certified a shop at http://shop.example: the wallet refuses its quote at the check, so no
    spend is journalled and no payword is sent over an unencrypted network path."""
    data = tmp_path / "plain-shop"
    broker.register_vendor("plain-shop", load_or_create_key(key_path(data)), api_url="http://shop.example")
    shop = start_vendor(broker, data, vendor_id="plain-shop", register=False, public_url="http://shop.example")
    try:
        before = funded_wallet.balance()
        quote, cert = quote_for(shop.url, "harbour-bridge-reopens")
        with pytest.raises(Forbidden) as err:
            funded_wallet.check_quote(quote, cert, None)
        assert err.value.details["reason"] == "insecure_url"
        with pytest.raises(Forbidden):
            funded_wallet.pay_quote(Signed.from_wire(quote, Quote), Signed.from_wire(cert, VendorCertificate), None,
                                    "prompt")  # fmt: skip
        assert funded_wallet.balance() == before and shop.vendor.store.one("SELECT COUNT(*) AS n FROM spends")["n"] == 0
    finally:
        shop.stop()
