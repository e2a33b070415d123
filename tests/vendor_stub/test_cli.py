"""``netpay-vendor``: public-key creates a private key file once; serve flags come from the environment too."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from netpay.keys import VerifyKey
from netpay_web.live import free_port
from tests.support.broker import RunningBroker
from tests.support.vendor import CARDS
from vendor_stub.cli import main


def test_public_key_creates_the_key_once_with_mode_0600(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["public-key", "--data-dir", str(tmp_path)]) == 0
    first = capsys.readouterr().out.strip()
    VerifyKey.from_hex(first)
    assert os.stat(tmp_path / "vendor_key").st_mode & 0o777 == 0o600
    assert main(["public-key", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == first


def test_redeem_without_a_database_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["redeem", "--data-dir", str(tmp_path)]) == 2
    assert "no vendor database" in capsys.readouterr().err


def test_serve_in_a_subprocess_with_environment_variables(broker: RunningBroker, tmp_path: Path) -> None:
    from netpay.keys import load_or_create_key

    port = free_port()
    key = load_or_create_key(tmp_path / "vendor_key")
    broker.register_vendor("cards", key, api_url=f"http://127.0.0.1:{port}", display_name="Paper Lantern Cards")
    env = dict(
        os.environ,
        NETPAY_VENDOR_PORT=str(port),
        NETPAY_VENDOR_DATA_DIR=str(tmp_path),
        NETPAY_VENDOR_BROKER=broker.url,
        NETPAY_VENDOR_CATALOG=str(CARDS),
        NETPAY_VENDOR_VENDOR_ID="cards",
        NETPAY_VENDOR_QUOTE_TTL="45",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "vendor_stub.cli", "serve", "--name", "Paper Lantern Cards"], env=env
    )
    try:
        deadline = time.monotonic() + 20
        info = None
        while time.monotonic() < deadline:
            try:
                info = requests.get(f"http://127.0.0.1:{port}/v1/info", timeout=2).json()
                break
            except requests.RequestException:
                time.sleep(0.1)
        assert info is not None and info["vendor_id"] == "cards" and info["public_key"] == key.public.hex
        assert "Paper Lantern Cards" in requests.get(f"http://127.0.0.1:{port}/", timeout=5).text
        quote = requests.post(f"http://127.0.0.1:{port}/v1/quotes", json={"item_id": "thank-you-sunrise"}, timeout=5)
        body = quote.json()["quote"]["body"]
        assert body["expires_at"] - body["issued_at"] == 45
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_quote_lifetime_is_a_flag_with_its_default_in_help(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--quote-ttl SECONDS" in text and "NETPAY_VENDOR_QUOTE_TTL" in text and "default: 300" in text
    for bad in ("29", "86401", "soon"):
        with pytest.raises(SystemExit) as exit_:
            main(["serve", "--quote-ttl", bad])
        assert exit_.value.code == 2
        assert "--quote-ttl: must be whole seconds from 30 to 86400" in capsys.readouterr().err
    monkeypatch.setenv("NETPAY_VENDOR_QUOTE_TTL", "20")
    with pytest.raises(SystemExit):
        main(["serve"])
    assert "--quote-ttl" in capsys.readouterr().err
