"""Crash safety: SIGKILL the broker process in the middle of a stream of purchases and redemptions, restart it, and
find every acknowledged operation there and the books balanced (``netpay-broker audit``)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from netpay.messages import CoinCertificate
from netpay.signed import Signed
from netpay.traversal import create_chain
from netpay_web.live import free_port
from tests.support.broker import TEST_CARD, TestVendor

ROOT = Path(__file__).resolve().parents[2]


def _serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "broker_stub.cli",
            "serve",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--close-grace",
            "0",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/v1/info", timeout=1).status_code == 200:
                return proc
        except requests.RequestException:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"broker did not start: {proc.stderr.read() if proc.stderr else ''!r}")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "broker_stub.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.mark.slow
def test_sigkill_mid_stream_loses_no_acknowledged_operation(tmp_path: Path) -> None:
    data = tmp_path / "broker"
    vendor = TestVendor("shop")
    reg = _cli(
        "register-vendor",
        "--data-dir",
        str(data),
        "--vendor-id",
        "shop",
        "--name",
        "Shop",
        "--public-key",
        vendor.key.public.hex,
        "--origin",
        "http://127.0.0.1:9",
        "--api-url",
        "http://127.0.0.1:9",
        "--payment-url",
        "http://127.0.0.1:9/v1/payments",
    )
    assert reg.returncode == 0, reg.stderr
    port = free_port()
    proc = _serve(data, port)
    url = f"http://127.0.0.1:{port}"
    http = requests.Session()
    assert http.post(f"{url}/v1/accounts", json={"username": "alice", "password": "long password"}).status_code == 201
    token = http.post(f"{url}/v1/sessions", json={"username": "alice", "password": "long password"}).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert (
        http.post(
            f"{url}/v1/account/topups",
            json={"amount": {"amount": 900_000, "currency": "EUR"}, "card": TEST_CARD},
            headers={**auth, "Idempotency-Key": "top"},
        ).status_code
        == 201
    )

    bought: dict[str, dict[str, Any]] = {}
    redeemed: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    stop = threading.Event()
    failures: list[BaseException] = []

    def stream() -> None:
        s = requests.Session()
        try:
            while not stop.is_set():
                chain_id = secrets.token_bytes(16)
                touchstone, traversal = create_chain(chain_id, 50)
                r = s.post(
                    f"{url}/v1/chains",
                    json={
                        "chain_id": chain_id.hex(),
                        "touchstone": touchstone.hex(),
                        "length": 50,
                        "coin_value": {"amount": 1, "currency": "EUR"},
                    },
                    headers={**auth, "Idempotency-Key": chain_id.hex()},
                    timeout=10,
                )
                assert r.status_code == 201, r.text
                bought[chain_id.hex()] = r.json()["certificate"]
                assert s.post(f"{url}/v1/custody/claims", json=vendor.claim(chain_id), timeout=10).status_code == 200
                index, payword = traversal.advance(1 + len(bought) % 40)
                batch = vendor.batch([(chain_id, 0, index, payword)])
                r = s.post(f"{url}/v1/redemptions", json=batch, timeout=10)
                assert r.status_code == 200, r.text
                redeemed[batch["body"]["batch_id"]] = (batch, r.json())
        except requests.RequestException:
            return  # the broker died under us
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=stream) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(redeemed) < 15 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    stop.set()
    for t in threads:
        t.join(timeout=20)
    assert not failures, failures
    assert len(redeemed) >= 15

    proc = _serve(data, port)
    try:
        chains = {c["chain_id"]: c for c in http.get(f"{url}/v1/account/chains", headers=auth).json()["chains"]}
        for chain_id, cert in bought.items():
            assert chains[chain_id]["certificate"] == cert
            Signed.from_wire(cert, CoinCertificate)
        for batch, answer in redeemed.values():  # each acknowledged batch is stored: a retry gets the same answer
            again = http.post(f"{url}/v1/redemptions", json=batch)
            assert again.status_code == 200 and again.json() == answer
        payable = http.get(
            f"{url}/v1/vendors/shop/account",
            headers={"X-Operator-Token": (data / "operator_token").read_text().strip()},
        ).json()
        acknowledged = sum(a["body"]["results"][0]["amount"]["amount"] for _, a in redeemed.values())
        assert payable["payable"]["amount"] >= acknowledged
        audit = _cli("audit", "--data-dir", str(data))
        assert audit.returncode == 0, audit.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
