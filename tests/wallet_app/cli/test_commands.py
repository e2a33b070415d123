"""``netpay-wallet`` subcommands against a real broker and shop on loopback, on a real vault: each command, its
JSON output and its exit code; secrets only through file descriptors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.broker import TEST_CARD, RunningBroker
from tests.support.test_keyring import MemoryKeyring
from tests.support.vendor import RunningVendor
from wallet_app.cli import codes
from wallet_app.cli import main as cli_main
from wallet_app.keys import FAST_TEST_KDF, KeyStore
from wallet_app.services import WalletService

PASS = "a long vault passphrase"


class Cli:
    """Runs commands in this process on one data directory; secrets are written into pipes."""

    def __init__(self, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.home, self.capsys = home, capsys
        self.store = KeyStore(MemoryKeyring(), kdf=FAST_TEST_KDF)

    def __call__(self, *argv: str, passphrase: str | None = PASS, **fds: str) -> tuple[int, Any, str]:
        opened: list[int] = []

        def pipe(text: str) -> str:
            r, w = os.pipe()
            os.write(w, (text + "\n").encode())
            os.close(w)
            opened.append(r)
            return str(r)

        args = ["--data-dir", str(self.home), "--json"]
        if passphrase is not None:
            args += ["--passphrase-fd", pipe(passphrase)]
        extra = [x for name, text in fds.items() for x in (f"--{name.replace('_', '-')}", pipe(text))]
        self.capsys.readouterr()
        try:
            code = cli_main([*args, *argv, *extra], key_store=self.store)
        finally:
            for fd in opened:
                os.close(fd)
        out, err = self.capsys.readouterr()
        return code, json.loads(out) if out.strip() else None, err


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(tmp_path / "wallet", capsys)


def ready(cli: Cli, broker: RunningBroker, coins: int = 50) -> str:
    """init, trust the broker, register, top up, buy: returns the chain id."""
    assert cli("init")[0] == codes.OK
    code, info, _ = cli("brokers", "add", broker.url, "--trust")
    assert code == codes.OK and info["trusted"] is True
    assert cli("login", "--register", "--username", "cli_user", password_fd="correct horse battery")[0] == codes.OK
    code, top, _ = cli("topup", "500", card_fd=json.dumps(TEST_CARD))
    assert code == codes.OK and top["balance"]["amount"] == 500
    code, chain, _ = cli("buy", "--coins", str(coins), "--value", "1")
    assert code == codes.OK, chain
    return str(chain["chain_id"])


def test_every_subcommand_end_to_end(cli: Cli, broker: RunningBroker, vendor: RunningVendor, tmp_path: Path) -> None:
    chain_id = ready(cli, broker)
    code, bal, _ = cli("balance")
    assert code == codes.OK and bal["coins"][0]["unspent"]["amount"] == 50
    assert bal["accounts"][0]["balance"]["amount"] == 450
    code, chains, _ = cli("coins")
    assert [c["chain_id"] for c in chains] == [chain_id]
    assert cli("unlock")[1] == {"state": "unlocked", "pending": 0}

    code, paid, _ = cli("pay", f"{vendor.url}/api/search?q=comet")
    assert code == codes.OK and paid["status"] == 200 and len(paid["paid"]) == 1
    assert json.loads(paid["body"])["results"][0]["item_id"] == "observatory-finds-comet"
    code, over, err = cli("pay", f"{vendor.url}/api/items/harbour-bridge-reopens", "--max-price", "4")
    assert code == codes.OVER_RULES and over is None and json.loads(err)["error"]["details"]["rule"] == "per_request"

    code, history, _ = cli("history")
    payments = [h for h in history if h["kind"] == "payment"]
    assert [(p["via"], p["amount"], p["status"]) for p in payments] == [("api", 1, "settled")]
    code, _, _ = cli("history", "--csv")  # --json wins: the CSV is for people and spreadsheets
    assert code == codes.OK
    assert cli("allowances")[1] == []

    backup = tmp_path / "wallet.backup"
    assert cli("backup", str(backup), backup_passphrase_fd="backup words")[0] == codes.OK
    code, _, err = cli("restore", str(backup), backup_passphrase_fd="not the words")
    assert code == codes.VAULT and json.loads(err)["error"]["code"] == "backup_wrong_passphrase"
    assert cli("restore", str(backup), backup_passphrase_fd="backup words")[0] == codes.OK

    code, refund, _ = cli("return", chain_id)
    assert code == codes.OK and refund["refund"]["amount"] == 49
    code, bal, _ = cli("balance")
    assert bal["coins"] == [] and bal["accounts"][0]["balance"]["amount"] == 499


def test_history_csv(cli: Cli, broker: RunningBroker, capsys: pytest.CaptureFixture[str]) -> None:
    ready(cli, broker, coins=10)
    r, w = os.pipe()
    os.write(w, (PASS + "\n").encode())
    os.close(w)
    capsys.readouterr()
    try:
        code = cli_main(
            ["--data-dir", str(cli.home), "--passphrase-fd", str(r), "history", "--csv"], key_store=cli.store
        )
    finally:
        os.close(r)
    lines = capsys.readouterr().out.splitlines()
    assert code == codes.OK and lines[0] == "at,kind,status,amount,currency,vendor_name,title,via,ref,item_url"
    assert lines[1].split(",")[1:5] == ["buy", "active", "10", "EUR"]


def test_exit_codes_say_what_failed(cli: Cli, broker: RunningBroker, vendor: RunningVendor) -> None:
    assert cli("balance")[0] == codes.NO_VAULT
    assert cli("init")[0] == codes.OK
    assert cli("init")[0] == codes.NO_VAULT  # never over an existing vault
    assert cli("balance", passphrase="wrong")[0] == codes.VAULT
    assert cli("brokers", "add", broker.url, "--trust", "--fingerprint", "00 11")[0] == codes.USAGE
    assert cli("brokers", "list")[1][0]["trusted"] is False
    assert cli("brokers", "add", broker.url, "--trust")[0] == codes.OK
    code, _, err = cli("login", "--username", "nobody_here", password_fd="wrong password")
    assert code == codes.REFUSED and json.loads(err)["error"]["code"] == "invalid_credentials"
    assert cli("login", "--register", "--username", "poor_user", password_fd="correct horse battery")[0] == 0
    assert cli("buy", "--coins", "10")[0] == codes.WANTING  # the account has no money
    assert cli("buy", "--coins", "0")[0] == codes.USAGE
    assert cli("pay", f"{vendor.url}/api/search?q=x")[0] == codes.WANTING  # no coins
    vendor.stop()
    assert cli("pay", f"{vendor.url}/api/search?q=x")[0] == codes.UNREACHABLE
    assert cli("nonsense")[0] == codes.USAGE


def test_refuses_to_run_beside_a_running_wallet(cli: Cli) -> None:
    assert cli("init")[0] == codes.OK
    running = WalletService(cli.home, key_store=cli.store)
    running.unlock(PASS)  # the window holds the vault's process lock
    try:
        code, _, err = cli("balance", passphrase=None)  # refused before any passphrase is asked
        assert code == codes.IN_USE and json.loads(err)["error"]["code"] == "vault_in_use"
    finally:
        running.close()
    assert cli("balance")[0] == codes.OK


def test_the_entry_point_takes_secrets_from_a_descriptor_only(tmp_path: Path) -> None:
    r, w = os.pipe()
    os.write(w, b"entry point passphrase\n")
    os.close(w)
    home = tmp_path / "w"
    env = {**os.environ, "NETPAY_WALLET_HOME": str(home)}
    proc = subprocess.run([sys.executable, "-m", "wallet_app.main", "--passphrase-fd", str(r), "init", "--json"],
                          pass_fds=(r,), capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    os.close(r)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"data_dir": str(home)}
    # without a terminal and without --passphrase-fd, nothing is guessed: a clear usage error
    proc = subprocess.run([sys.executable, "-m", "wallet_app.main", "coins"], capture_output=True, text=True,
                          env=env, stdin=subprocess.DEVNULL, timeout=120)  # fmt: skip
    assert proc.returncode == codes.USAGE and "--*-fd" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_pay_goes_through_a_running_wallet(cli: Cli, broker: RunningBroker, vendor: RunningVendor) -> None:
    from wallet_app.client import AgentChannel

    ready(cli, broker, coins=10)
    running = WalletService(cli.home, key_store=cli.store)
    running.unlock(PASS)
    channel = AgentChannel(running, cli.home).start()
    try:
        assert cli("balance", passphrase=None)[0] == codes.IN_USE  # the vault is the running wallet's
        code, paid, _ = cli("pay", f"{vendor.url}/api/search?q=cup", passphrase=None)  # no passphrase needed
        assert code == codes.OK and paid["status"] == 200 and paid["paid"][0]["amount"]["amount"] == 1
        assert [e.via for e in running.activity() if e.kind == "payment"] == ["api"]
    finally:
        channel.close()
        running.close()


def test_allowances_list_and_revoke(cli: Cli) -> None:
    from netpay.money import Money

    assert cli("init")[0] == codes.OK
    window = WalletService(cli.home, key_store=cli.store)
    window.unlock(PASS)
    window.set_allowance("vendor-a", "Daily Planet", Money(5, "EUR"), Money(50, "EUR"))
    window.close()
    code, listed, _ = cli("allowances")
    assert code == codes.OK and [(a["vendor_id"], a["max_price"]["amount"]) for a in listed] == [("vendor-a", 5)]
    assert cli("allowances", "--revoke", "vendor-a")[1] == []
