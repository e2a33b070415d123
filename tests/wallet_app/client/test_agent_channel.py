"""Programs pay through the running wallet's agent channel (a user-only Unix socket with a token file), or open the
vault themselves when no wallet runs."""

from __future__ import annotations

import json
import socket
import stat
import threading
from typing import Any

import pytest

from netpay.errors import AuthenticationRequired, MalformedMessage, NetPayError
from netpay.money import Money
from tests.support.vendor import RunningVendor
from wallet_app.client import AgentChannel, ChannelPayer, OverBudget, SpendingRules, VaultPayer, connect
from wallet_app.client.channel import agent_paths
from wallet_app.services import WalletService


@pytest.fixture
def running(funded_wallet: WalletService):  # type: ignore[no-untyped-def]
    channel = AgentChannel(funded_wallet, funded_wallet.session.directory).start()
    yield channel
    channel.close()


def test_a_program_pays_through_the_running_wallet(
    funded_wallet: WalletService, vendor: RunningVendor, running: AgentChannel
) -> None:
    sock, token = agent_paths(funded_wallet.session.directory)
    assert stat.S_IMODE(token.stat().st_mode) == 0o600 and stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    with connect(funded_wallet.session.directory, SpendingRules.parse("EUR", per_request=1, daily=2)) as api:
        assert isinstance(api.payer, ChannelPayer)  # the vault stays with the running wallet
        for q in ("comet", "cup"):
            assert api.get(f"{vendor.url}/api/search", params={"q": q}, timeout=30).status_code == 200
        with pytest.raises(OverBudget):
            api.get(f"{vendor.url}/api/search", params={"q": "market"}, timeout=30)
    paid = [e for e in funded_wallet.activity() if e.kind == "payment"]
    assert [(e.via, e.status, e.amount.amount) for e in paid] == [("api", "settled", 1)] * 2
    # a later run counts today's payments, asked of the running wallet
    with (
        connect(funded_wallet.session.directory, SpendingRules.parse("EUR", daily=2)) as api,
        pytest.raises(OverBudget),
    ):
        api.get(f"{vendor.url}/api/search", params={"q": "bridge"}, timeout=30)


def test_two_threads_through_the_channel_cannot_overspend(
    funded_wallet: WalletService, vendor: RunningVendor, running: AgentChannel
) -> None:
    api = connect(funded_wallet.session.directory, SpendingRules.parse("EUR", per_host_daily=2))
    results: list[str] = []
    start = threading.Barrier(4)

    def worker(n: int) -> None:
        start.wait()
        try:
            results.append(str(api.get(f"{vendor.url}/api/search", params={"q": f"a {n}"}, timeout=60).status_code))
        except OverBudget:
            results.append("over")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert sorted(results) == ["200", "200", "over", "over"]
    assert sum(e.amount.amount for e in funded_wallet.activity() if e.kind == "payment") == 2


def test_wrong_token_wrong_price_and_garbage_are_refused(
    funded_wallet: WalletService, vendor: RunningVendor, running: AgentChannel
) -> None:
    sock, _ = agent_paths(funded_wallet.session.directory)
    challenge = vendor.session.get(f"{vendor.url}/api/items/harbour-bridge-reopens", timeout=10).json()
    with pytest.raises(AuthenticationRequired):
        ChannelPayer(sock, "guessed").pay(challenge, vendor.url, Money(5, "EUR"))
    payer = ChannelPayer.find(funded_wallet.session.directory)
    assert payer is not None
    with pytest.raises(MalformedMessage):  # the client's rules reserved 1 cent: the wallet will not pay 5
        payer.pay(challenge, vendor.url, Money(1, "EUR"))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(sock))
        s.sendall(b"not json\n")
        assert json.loads(s.recv(4096))["error"]["code"] == "malformed"
    assert [e for e in funded_wallet.activity() if e.kind == "payment"] == []


def test_without_a_running_wallet_the_library_opens_the_vault(
    wallet_factory,
    vendor: RunningVendor,
    broker,
    test_keyring,  # type: ignore[no-untyped-def]
) -> None:
    from tests.support.wallet import funded_wallet as fund
    from wallet_app.keys import FAST_TEST_KDF, KeyStore

    w = wallet_factory("solo")
    fund(w, broker.url, chains=1, coins=20)
    channel = AgentChannel(w, w.session.directory).start()
    channel.close()  # a wallet that ran and stopped: no socket, no token left
    directory = w.session.directory
    w.close()
    with connect(directory, SpendingRules.parse("EUR"), key_store=KeyStore(test_keyring, kdf=FAST_TEST_KDF)) as api:
        assert isinstance(api.payer, VaultPayer)
        assert api.get(f"{vendor.url}/api/search", params={"q": "comet"}, timeout=30).status_code == 200


def test_the_wallet_process_opens_the_channel_and_programs_reach_it(
    tmp_path,
    broker,
    vendor: RunningVendor,  # type: ignore[no-untyped-def]
) -> None:
    """The real entry point (headless) starts the agent channel; a program and ``netpay-wallet pay`` reach it,
    every other command refuses (the vault is the running wallet's); the channel is gone when the wallet stops."""
    import subprocess
    import sys
    from pathlib import Path

    from netpay.errors import InsufficientCoins
    from tests.support.test_keyring import wallet_process_env
    from wallet_app.cli import codes
    from wallet_app.cli import main as cli_main

    home = tmp_path / "w"
    cmd = [sys.executable, "-m", "wallet_app.main", "--headless", "--data-dir", str(home), "--no-callback",
           "--broker-url", broker.url]  # fmt: skip
    root = Path(__file__).resolve().parents[3]
    # stdin stays open while the test runs: the headless wallet ends at its end of input (with DEVNULL it ended at once,
    # and the test passed only when the channel answered before the wallet read that end: flaky)
    proc = subprocess.Popen(cmd, env=wallet_process_env(tmp_path), cwd=root, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline())["event"] == "ready"
        with connect(home, SpendingRules.parse("EUR", per_request=1)) as api:
            assert isinstance(api.payer, ChannelPayer)
            with pytest.raises(InsufficientCoins):  # the running wallet was asked, and it has no coins yet
                api.get(f"{vendor.url}/api/search", params={"q": "comet"}, timeout=30)
            assert api.budget.spent() == 0
        assert cli_main(["--data-dir", str(home), "balance"]) == codes.IN_USE
        assert cli_main(["--data-dir", str(home), "pay", f"{vendor.url}/api/search?q=x"]) == codes.WANTING
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # end of input: the headless wallet stops
        assert proc.wait(30) == 0
    assert ChannelPayer.find(home) is None


def test_a_program_pays_inside_its_own_request_through_the_running_wallet(
    funded_wallet: WalletService, vendor: RunningVendor, running: AgentChannel
) -> None:
    """The running wallet journals the payment (prepare) and settles the shop's answer (finish): a repeat call is one
    request to the shop, as with a vault the program opened itself."""
    from tests.wallet_app.client.test_pay_in_request import four_searches_each_paid_in_one_request, spends

    with connect(funded_wallet.session.directory, SpendingRules.parse("EUR", per_request=1, daily=10)) as api:
        assert isinstance(api.payer, ChannelPayer)
        four_searches_each_paid_in_one_request(api, vendor)
    assert spends(funded_wallet) == [("settled", None)] * 4
    assert {e.via for e in funded_wallet.activity() if e.kind == "payment"} == {"api"}


def test_a_prepared_payment_the_program_abandons_is_finished_by_the_wallet(
    funded_wallet: WalletService, vendor: RunningVendor, running: AgentChannel
) -> None:
    """A program that journals a payment and dies: the next prepare waits for it, the wallet sends it to the payment
    URL itself once the hold ends (paid once, settled), and the dead program's late finish changes nothing."""
    from tests.wallet_app.client.test_pay_in_request import spends

    running.hold_s = 0.5
    payer = ChannelPayer.find(funded_wallet.session.directory)
    assert payer is not None
    offers = [vendor.session.get(f"{vendor.url}/api/search", params={"q": q}, timeout=10).json() for q in ("a", "b")]
    first = payer.prepare(offers[0], vendor.url, Money(1, "EUR"))
    assert spends(funded_wallet) == [("pending", None)]  # journalled before it may leave the wallet
    second = payer.prepare(offers[1], vendor.url, Money(1, "EUR"))  # waits for the first to be finished
    assert spends(funded_wallet) == [("settled", None), ("pending", None)]  # sent to the payment URL by the wallet
    with pytest.raises(MalformedMessage):  # already finished by the wallet: the late finish is refused
        payer.finish(first, None, None)
    paid = payer.finish(second, None, None)  # no answer from the shop: the wallet sends it itself
    assert paid.payment_id == second.payment_id and paid.amount == Money(1, "EUR")
    assert spends(funded_wallet) == [("settled", None)] * 2
    assert sum(e.amount.amount for e in funded_wallet.activity() if e.kind == "payment") == 2


def test_hostile_finishes_change_nothing_and_free_the_wallet(
    funded_wallet: WalletService, vendor: RunningVendor, running: AgentChannel
) -> None:
    """A finish for an unknown or malformed id is refused. A program that got the item and then hands the wallet a
    forged receipt, or a refusal the shop never signed (to have its coins back as well), settles and releases
    nothing: the wallet verifies both, and those coins stay spent. The channel takes the next payment after each."""
    import base64

    from netpay.errors import BadSignature
    from tests.wallet_app.client.test_pay_in_request import spends

    sock, token = agent_paths(funded_wallet.session.directory)
    payer = ChannelPayer(sock, token.read_text().strip())
    for bad in ({"op": "finish", "payment_id": "nope"}, {"op": "finish", "payment_id": ["x"]}, {"op": "finish"}):
        with pytest.raises(MalformedMessage):
            payer.call(bad)
    url = f"{vendor.url}/api/search"

    def prepared_and_sent(q: str) -> Any:
        prepared = payer.prepare(vendor.session.get(url, params={"q": q}, timeout=10).json(), vendor.url,
                                 Money(1, "EUR"))  # fmt: skip
        value = base64.urlsafe_b64encode(prepared.wire.encoded).rstrip(b"=").decode()
        got = vendor.session.get(url, params={"q": q}, headers={"NetPay-Payment": value}, timeout=10)
        assert got.status_code == 200 and "NetPay-Receipt" in got.headers  # the program has what it paid for
        return prepared

    prepared = prepared_and_sent("x")
    forged = {"receipt": {"body": {"payment_id": prepared.payment_id}, "signature": "00" * 64}}
    with pytest.raises(NetPayError):
        payer.finish(prepared, forged, None)
    assert spends(funded_wallet) == [("burned", "bad_receipt")]  # never counted as settled with a forged receipt
    prepared = prepared_and_sent("y")  # the channel was freed by the failed finish
    unsigned = BadSignature("refused")
    unsigned.details = {"refusal": {"body": {"payment_id": prepared.payment_id}, "signature": "00" * 64}}
    with pytest.raises(NetPayError) as info:
        payer.finish(prepared, None, unsigned)
    assert not getattr(info.value, "released", False)  # an unsigned refusal gives no coins back
    assert [s for s, _ in spends(funded_wallet)] == ["burned", "burned"]
    offer = vendor.session.get(url, params={"q": "z"}, timeout=10).json()
    paid = payer.pay(offer, vendor.url, Money(1, "EUR"))  # the chain's next index: nothing was reused
    assert paid.amount == Money(1, "EUR") and spends(funded_wallet)[2] == ("settled", None)
