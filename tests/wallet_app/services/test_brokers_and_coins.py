"""Buying, returning and revocations against a real broker; the data directory rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netpay.errors import PeerUnavailable, Revoked, UntrustedSigner
from netpay.money import Money
from tests.support.broker import TEST_CARD
from tests.support.wallet import funded_wallet as fund
from tests.support.wallet import quote_for
from wallet_app.paths import ENV_HOME, data_dir
from wallet_app.services import BuyProgress, WalletService


def test_buy_interrupted_by_broker_outage_completes_once(
    wallet: WalletService, broker_factory: Any, tmp_path: Path
) -> None:
    broker = broker_factory(data_dir=tmp_path / "b")
    broker_id = fund(wallet, broker.url, chains=0)
    port = broker.server.port
    broker.stop()
    stages: list[BuyProgress] = []
    with pytest.raises(PeerUnavailable):
        wallet.buy_coins(broker_id, 40, Money(2, "EUR"), card=TEST_CARD, progress=stages.append)
    assert [s.stage for s in stages] == ["generating", "sending"]
    (chain,) = wallet.list_chains()
    assert chain.status == "buying" and wallet.balance()[0].unspent == Money(0, "EUR")
    broker = broker_factory(data_dir=tmp_path / "b", port=port)
    wallet.recover_pending()
    (chain,) = wallet.list_chains()
    assert chain.status == "active" and chain.unspent == 40
    assert wallet.balance()[0].unspent == Money(80, "EUR")


def test_untrusted_broker_cannot_sell(wallet: WalletService, broker: Any) -> None:
    info = wallet.add_broker(broker.url)
    assert info.fingerprint == broker.public_key.fingerprint and not info.trusted
    with pytest.raises(UntrustedSigner):
        wallet.register(info.broker_id, "someone", "correct horse battery staple")


def test_returned_chain_is_revoked_and_never_spent(wallet: WalletService, broker: Any, vendor_factory: Any) -> None:
    fund(wallet, broker.url, chains=2, coins=10)
    vendor = vendor_factory()
    first, _second = wallet.list_chains()
    assert wallet.return_chain(first.chain_id) == Money(10, "EUR")
    wallet.refresh_revocations()
    assert first.chain_id in wallet.trust.revoked_chains
    q, c = quote_for(vendor.url, "harbour-bridge-reopens")
    checked = wallet.check_quote(q, c, None)
    paid = wallet.pay_quote(checked.quote, checked.vendor_certificate, None, "prompt")
    assert {s.chain_id.hex() for s in paid.receipt.body.segments} == {_second.chain_id}
    wallet.trust.revoked_vendors.add(vendor.vendor_id)
    q, c = quote_for(vendor.url, "harbour-bridge-reopens")
    with pytest.raises(Revoked):
        wallet.check_quote(q, c, None)


def test_data_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_HOME, str(tmp_path / "env"))
    assert data_dir(tmp_path / "cli") == tmp_path / "cli"
    assert data_dir() == tmp_path / "env" and (tmp_path / "env").is_dir()
    monkeypatch.delenv(ENV_HOME)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "NetPay"


@pytest.mark.parametrize("step", ["buy_after_journal", "buy_after_send"])
def test_buy_killed_midway_is_finished_and_charged_once(broker: Any, tmp_path: Path, step: str) -> None:
    import os
    import subprocess
    import sys

    from tests.support.test_keyring import FileKeyring
    from wallet_app.keys import FAST_TEST_KDF, KeyStore

    keyring_file, home = tmp_path / "keyring.json", tmp_path / "w"
    w = WalletService(home, key_store=KeyStore(FileKeyring(keyring_file), kdf=FAST_TEST_KDF))
    w.create()
    broker_id = fund(w, broker.url, chains=0)
    w.close()
    script = (
        "import sys; from pathlib import Path; from tests.support.test_keyring import FileKeyring;"
        "from wallet_app.keys import FAST_TEST_KDF, KeyStore; from wallet_app.services import WalletService;"
        "from netpay.money import Money; from tests.support.broker import TEST_CARD;"
        f"w = WalletService(Path({str(home)!r}), key_store=KeyStore(FileKeyring(Path({str(keyring_file)!r})),"
        " kdf=FAST_TEST_KDF)); w.unlock();"
        f"w.buy_coins({broker_id!r}, 30, Money(1, 'EUR'), card=TEST_CARD)"
    )
    env = {**os.environ, "NETPAY_WALLET_CRASH_AT": step}
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=Path(__file__).resolve().parents[3])
    assert proc.returncode == -9
    w = WalletService(home, key_store=KeyStore(FileKeyring(keyring_file), kdf=FAST_TEST_KDF))
    w.unlock()  # recovers the purchase with the same idempotency key and the same body
    (chain,) = w.list_chains()
    assert chain.status == "active" and chain.unspent == 30
    assert "4242" not in w.vault.dump()  # the card is not kept once the purchase is done
    statement = w.brokers_desk.call(
        broker_id, lambda c, t: c.request("GET", "/v1/account/statement", headers=c._auth(t))
    )
    purchases = [e for e in statement["entries"] if e["kind"] == "purchase"]
    assert [(e["ref"], e["amount"]["amount"]) for e in purchases] == [(chain.chain_id, -30)]  # charged once
    w.close()
