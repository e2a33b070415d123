"""The ``netpay-broker`` command (register-vendor, operator-token, audit) and restart persistence of key and data."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from broker_stub.cli import main
from broker_stub.services import Broker
from netpay.keys import SigningKey
from netpay.messages import VendorCertificate
from netpay.signed import Signed
from tests.support.broker import broker_settings, start_broker
from tests.support.postgres import database_url_for, postgres_enabled


def test_register_vendor_and_operator_token_commands(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    key = SigningKey.generate()
    rc = main(
        [
            "register-vendor",
            "--data-dir",
            str(tmp_path),
            "--vendor-id",
            "shop",
            "--name",
            "Shop",
            "--public-key",
            key.public.hex,
            "--origin",
            "http://127.0.0.1:8201",
            "--api-url",
            "http://127.0.0.1:8201",
            "--payment-url",
            "http://127.0.0.1:8201/v1/payments",
        ]
    )
    assert rc == 0
    cert = Signed.from_wire(json.loads(capsys.readouterr().out), VendorCertificate)
    assert cert.body.vendor_id == "shop" and cert.body.public_key == key.public
    assert main(["operator-token", "--data-dir", str(tmp_path)]) == 0
    token = capsys.readouterr().out.strip()
    assert token == (tmp_path / "operator_token").read_text().strip()
    assert stat.S_IMODE((tmp_path / "broker.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "operator_token").stat().st_mode) == 0o600
    rc = main(
        [
            "register-vendor",
            "--data-dir",
            str(tmp_path),
            "--vendor-id",
            "shop",
            "--name",
            "Shop",
            "--public-key",
            "00",
            "--origin",
            "http://x.org",
            "--api-url",
            "http://x.org",
            "--payment-url",
            "http://x.org/p",
        ]
    )
    assert rc == 2


def test_audit_exits_nonzero_when_the_ledger_does_not_balance(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    running = start_broker(tmp_path)
    running.new_customer(topup=500)
    running.stop()
    db = ["--database", database_url_for(tmp_path)] if postgres_enabled() else []
    assert main(["audit", "--data-dir", str(tmp_path), *db]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["balanced"] and report["accounts"]["customer_funds"] == -500
    broker = Broker(broker_settings(tmp_path))
    with broker.core.db.tx() as c:  # simulate corruption: one leg of a transaction lost
        c.execute("DELETE FROM ledger_entries WHERE account = 'card_clearing'")
    broker.close()
    assert main(["audit", "--data-dir", str(tmp_path), *db]) == 1
    assert json.loads(capsys.readouterr().out)["checks"]["ledger_balanced"] is False


def test_key_broker_id_and_data_survive_restart(tmp_path: Path) -> None:
    first = start_broker(tmp_path, broker_id="demo-broker")
    token = first.new_customer(username="alice", topup=300)
    key, broker_id = first.public_key, first.broker_id
    first.stop()
    second = start_broker(tmp_path)
    try:
        assert second.public_key == key and second.broker_id == broker_id == "demo-broker"
        me = second.session.get(f"{second.url}/v1/account", headers={"Authorization": f"Bearer {token}"}).json()
        assert me["username"] == "alice" and me["balance"]["amount"] == 300
    finally:
        second.stop()


def test_revoke_vendor_command(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["revoke-vendor", "--data-dir", str(tmp_path), "--vendor-id", "nobody"]) == 2
    key = SigningKey.generate()
    main(
        [
            "register-vendor",
            "--data-dir",
            str(tmp_path),
            "--vendor-id",
            "shop",
            "--name",
            "Shop",
            "--public-key",
            key.public.hex,
            "--origin",
            "http://127.0.0.1:8201",
            "--api-url",
            "http://127.0.0.1:8201",
            "--payment-url",
            "http://127.0.0.1:8201/v1/payments",
        ]
    )
    capsys.readouterr()
    assert main(["revoke-vendor", "--data-dir", str(tmp_path), "--vendor-id", "shop"]) == 0
    assert json.loads(capsys.readouterr().out) == {"vendor_id": "shop", "revoked": True, "serial": 1}


def test_audit_catches_a_coin_paid_twice_and_an_overdrawn_chain(tmp_path: Path) -> None:
    from broker_stub.audit import audit_report
    from tests.support.broker import TestVendor

    running = start_broker(tmp_path)
    vendor = TestVendor("shop")
    running.register_vendor("shop", vendor.key)
    token = running.new_customer(topup=100)
    cert, traversal = running.buy_chain(token, length=10)
    cid = cert.body.chain_id
    running.session.post(f"{running.url}/v1/custody/claims", json=vendor.claim(cid))
    i, w = traversal.advance(6)
    running.session.post(f"{running.url}/v1/redemptions", json=vendor.batch([(cid, 0, i, w)]))
    core = running.broker.core
    assert audit_report(core)["balanced"]
    with core.db.tx() as c:  # forge a second payment for coins 4..6 behind the ledger's back
        c.execute(
            "INSERT INTO redeemed (chain_id, from_index, to_index, vendor_id, batch_id, amount, at) "
            "VALUES (?, 3, 10, 'other', 'forged', 0, 0)",
            (cid.hex(),),
        )
    report = audit_report(core)
    running.stop()
    assert not report["balanced"]
    assert not report["checks"]["no_coin_paid_twice"] and not report["checks"]["no_chain_overdrawn"]
