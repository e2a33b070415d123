"""The payment engine against a real broker and real vendors on loopback."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from netpay.errors import (
    BadSignature,
    CardDeclined,
    CertificateExpired,
    Forbidden,
    InsufficientCoins,
    PeerUnavailable,
    QuoteAlreadyPaid,
    QuoteExpired,
    UntrustedSigner,
)
from netpay.money import Money
from tests.support.broker import TEST_CARD, RunningBroker
from tests.support.vendor import CARDS, RunningVendor
from tests.support.wallet import WalletOnDisk, full_disk_for_spends, quote_for
from tests.support.wallet import funded_wallet as fund
from wallet_app.services import WalletService
from wallet_app.vault import VaultWriteFailed

ITEM = "harbour-bridge-reopens"  # 5 cents at the Daily Planet


def _pay(wallet: WalletService, vendor: RunningVendor, item: str = ITEM, via: Any = "prompt") -> Any:
    q, c = quote_for(vendor.url, item)
    checked = wallet.check_quote(q, c, vendor.url)
    return wallet.pay_quote(checked.quote, checked.vendor_certificate, vendor.url, via)


def _eur(cents: int) -> Money:
    return Money(cents, "EUR")


def test_pay_stores_receipt_and_moves_balance(funded_wallet: WalletService, vendor: RunningVendor) -> None:
    w = funded_wallet
    seen: list[str] = []
    w.events.payment_settled.append(lambda paid: seen.append(paid.payment_id))
    w.events.balance_changed.append(lambda: seen.append("balance"))
    q, c = quote_for(vendor.url, ITEM)
    checked = w.check_quote(q, c, vendor.url)
    assert checked.price == _eur(5) and checked.affordable and checked.remaining_after == _eur(195)
    assert checked.vendor_name == "Daily Planet" and not checked.covered_by_allowance
    paid = w.pay_quote(checked.quote, checked.vendor_certificate, vendor.url, "prompt")
    assert paid.amount == _eur(5) and paid.access_token
    assert paid.receipt.body.quote_digest.hex() == checked.quote.digest
    assert paid.payment_id in seen and "balance" in seen
    (line,) = w.balance()
    assert line.unspent == _eur(195) and line.pending == _eur(0)
    (chain,) = w.list_chains()
    assert (chain.settled, chain.pending, chain.burned, chain.holder) == (5, 0, 0, "daily-planet")
    assert w.receipt_for(checked.quote.body.quote_id, "daily-planet") == paid
    assert [e.status for e in w.activity() if e.kind == "payment"] == ["settled"]
    with pytest.raises(QuoteAlreadyPaid):
        w.check_quote(q, c, vendor.url)
    with pytest.raises(QuoteAlreadyPaid):
        w.pay_quote(checked.quote, checked.vendor_certificate, vendor.url, "prompt")
    # The vendor agrees: the access token opens the item.
    resp = vendor.session.get(f"{vendor.url}/v1/access/{ITEM}", params={"token": paid.access_token}, timeout=10)
    assert resp.json()["valid"] is True


def test_pays_from_two_chains_when_one_runs_short(wallet: WalletService, broker: RunningBroker, vendor: Any) -> None:
    fund(wallet, broker.url, chains=2, coins=3)
    paid = _pay(wallet, vendor)  # 5 cents from two chains of 3
    assert sorted(s.to_index - s.from_index for s in paid.receipt.body.segments) == [2, 3]
    assert wallet.balance()[0].unspent == _eur(1)
    with pytest.raises(InsufficientCoins):
        _pay(wallet, vendor)


def test_prefers_the_chain_the_vendor_holds(wallet: WalletService, broker: RunningBroker, vendor_factory: Any) -> None:
    news, cards = vendor_factory(), vendor_factory(catalog=CARDS, name="Paper Lantern Cards")
    fund(wallet, broker.url, chains=2, coins=100)
    first = _pay(wallet, news).receipt.body.segments[0].chain_id
    second = _pay(wallet, cards, "thank-you-sunrise").receipt.body.segments[0].chain_id
    assert first != second  # the cards shop got the chain nobody held
    assert _pay(wallet, news).receipt.body.segments[0].chain_id == first
    assert _pay(wallet, cards, "thank-you-sunrise").receipt.body.segments[0].chain_id == second
    holders = {c.chain_id: c.holder for c in wallet.list_chains()}
    assert holders == {first.hex(): news.vendor_id, second.hex(): cards.vendor_id}


def test_insufficient_coins_journals_nothing(funded_wallet: WalletService, vendor: RunningVendor) -> None:
    w = funded_wallet
    q, c = quote_for(vendor.url, "day-pass")  # 50 cents: fine
    w.pay_quote(*_checked(w, q, c, vendor), vendor.url, "prompt")
    for _ in range(29):
        _pay(w, vendor)  # 150 more
    before = w.vault.dump()
    q, c = quote_for(vendor.url, "day-pass")
    with pytest.raises(InsufficientCoins):
        w.pay_quote(*_checked(w, q, c, vendor), vendor.url, "prompt")
    assert w.vault.dump() == before


def _checked(w: WalletService, q: Any, c: Any, vendor: RunningVendor) -> tuple[Any, Any]:
    checked = w.check_quote(q, c, vendor.url)
    return checked.quote, checked.vendor_certificate


def test_check_quote_refusals(funded_wallet: WalletService, vendor: RunningVendor, wallet_factory: Any) -> None:
    w = funded_wallet
    q, c = quote_for(vendor.url, ITEM)
    with pytest.raises(Forbidden, match="origin"):
        w.check_quote(q, c, "http://evil.example")
    tampered = {**q, "body": {**q["body"], "price": {"amount": 1, "currency": "EUR"}}}
    with pytest.raises(BadSignature):
        w.check_quote(tampered, c, vendor.url)
    stranger = wallet_factory("stranger")  # trusts no broker
    with pytest.raises(UntrustedSigner):
        stranger.check_quote(q, c, vendor.url)
    w.clock = w.payments.clock = lambda: q["body"]["expires_at"] + 1  # type: ignore[method-assign]
    with pytest.raises((QuoteExpired, CertificateExpired)):
        w.check_quote(q, c, vendor.url)


def test_allowance_pays_without_prompt_within_budget(funded_wallet: WalletService, vendor: RunningVendor) -> None:
    w = funded_wallet
    auto: list[Any] = []
    w.events.auto_payment_made.append(auto.append)
    assert not w.covers("daily-planet", _eur(5))
    w.set_allowance("daily-planet", "Daily Planet", max_price=_eur(5), daily_budget=_eur(10))
    assert w.covers("daily-planet", _eur(5)) and not w.covers("daily-planet", _eur(6))
    _pay(w, vendor, via="allowance")
    _pay(w, vendor, via="allowance")
    assert len(auto) == 2
    (info,) = w.allowances()
    assert info.spent_today == _eur(10)
    assert not w.covers("daily-planet", _eur(5))
    with pytest.raises(Forbidden):
        _pay(w, vendor, via="allowance")
    _pay(w, vendor, via="prompt")  # the user can still pay when asked
    w.revoke_allowance("daily-planet")
    assert w.allowances() == []


def test_declined_card_keeps_nothing(wallet: WalletService, broker: RunningBroker) -> None:
    broker_id = fund(wallet, broker.url, chains=0)
    with pytest.raises(CardDeclined):
        wallet.buy_coins(broker_id, 10, _eur(1), card={**TEST_CARD, "number": "4000 0000 0000 0002"})
    assert wallet.list_chains() == []


def test_return_chain_refunds_unspent(funded_wallet: WalletService, vendor: RunningVendor) -> None:
    w = funded_wallet
    _pay(w, vendor)
    (chain,) = w.list_chains()
    refund = w.return_chain(chain.chain_id)
    assert refund == _eur(195)
    (chain,) = w.list_chains()
    assert chain.status in ("returned", "closing") and chain.unspent == 0
    assert w.balance() == [] or w.balance()[0].unspent == _eur(0)


def test_vendor_down_leaves_spend_pending_then_recovers(
    wallet: WalletService, broker: RunningBroker, vendor_factory: Any, tmp_path: Path
) -> None:
    fund(wallet, broker.url, chains=1, coins=50)
    news = vendor_factory(data_dir=tmp_path / "news")
    q, c = quote_for(news.url, ITEM)
    checked = wallet.check_quote(q, c, news.url)
    port = news.server.port
    news.stop()
    with pytest.raises(PeerUnavailable):
        wallet.pay_quote(checked.quote, checked.vendor_certificate, news.url, "prompt")
    (chain,) = wallet.list_chains()
    assert chain.pending == 5 and wallet.balance()[0].pending == _eur(5)
    with pytest.raises(QuoteAlreadyPaid):  # never paid twice, even while the first try is pending
        wallet.pay_quote(checked.quote, checked.vendor_certificate, news.url, "prompt")
    with pytest.raises(InsufficientCoins):  # the chain with a pending spend is not used meanwhile
        wallet.chains.pick(chain.broker_id, _eur(1), "another-vendor", int(wallet.clock()))
    vendor_factory(data_dir=tmp_path / "news", port=port, register=False)
    assert wallet.recover_pending() == 1
    (chain,) = wallet.list_chains()
    assert (chain.settled, chain.pending, chain.unspent) == (5, 0, 45)
    assert wallet.receipt_for(q["body"]["quote_id"], news.vendor_id) is not None


@pytest.mark.parametrize("reported", [True, False], ids=["broker-knows", "only-vendor-knows"])
def test_backup_restore_resyncs_chains_before_spending(
    funded_wallet: WalletService, vendor_factory: Any, tmp_path: Path, reported: bool
) -> None:
    """After a restore the chain is moved on before it is spent: from the broker's reported index when the vendor
    has reported its spends, else from the ``held`` index in the vendor's signed ``index_conflict`` refusal."""
    w = funded_wallet
    vendor = vendor_factory(background=reported)
    _pay(w, vendor)
    backup = tmp_path / "wallet.backup"
    w.backup(backup, "backup words")
    _pay(w, vendor)
    _pay(w, vendor)  # these 10 coins are unknown to the backup
    if reported:
        vendor.vendor.reporter.flush()  # the spends reach the broker now instead of in 0.2 s
    failures: list[str] = []
    w.events.payment_failed.append(lambda pid, code, msg: failures.append(code))
    w.restore(backup, "backup words")
    (chain,) = w.list_chains()
    assert chain.position == (15 if reported else 5)
    paid = _pay(w, vendor)  # must start at index 15, not at 5
    (seg,) = paid.receipt.body.segments
    assert seg.from_index == 15 and seg.to_index == 20
    (chain,) = w.list_chains()
    assert not chain.needs_resync and chain.position == 20
    assert failures == ([] if reported else ["index_conflict"])


def test_signed_refusal_releases_coins_forged_one_burns_them(
    wallet: WalletService, broker: RunningBroker, vendor_factory: Any, tmp_path: Path
) -> None:
    import time

    from netpay.errors import QuoteExpired
    from netpay.keys import SigningKey
    from netpay.messages import PaymentRefusal
    from netpay.signed import Signed

    fund(wallet, broker.url, chains=1, coins=50)
    hasty = vendor_factory(quote_ttl_s=1, data_dir=tmp_path / "hasty")
    q, c = quote_for(hasty.url, ITEM)
    time.sleep(2.2)  # expired for the vendor; the wallet's clock is set back so it still sends it
    issued = q["body"]["issued_at"]
    wallet.clock = wallet.payments.clock = lambda: issued  # type: ignore[method-assign]
    checked = wallet.check_quote(q, c, hasty.url)
    failed: list[str] = []
    wallet.events.payment_failed.append(lambda pid, code, msg: failed.append(code))
    with pytest.raises(QuoteExpired) as info:
        wallet.pay_quote(checked.quote, checked.vendor_certificate, hasty.url, "prompt")
    refusal = Signed.from_wire(info.value.details["refusal"], PaymentRefusal)
    assert failed == ["quote_expired"]
    (chain,) = wallet.list_chains()
    assert (chain.position, chain.burned, chain.unspent) == (0, 0, 50)  # released: the coins are back
    assert [e.status for e in wallet.activity() if e.kind == "payment"] == ["released"]

    # A refusal not signed by the certified vendor key proves nothing: the indexes stay burned.
    hasty.stop()
    wallet.clock = wallet.payments.clock = time.time  # type: ignore[method-assign]
    q2, c2 = quote_for(vendor_factory(data_dir=tmp_path / "other", name="Second Planet").url, ITEM)
    checked = wallet.check_quote(q2, c2, None)
    wallet.payments.vendor_client = lambda url: _Refuser(refusal, SigningKey.generate())  # type: ignore[assignment]
    with pytest.raises(QuoteExpired):
        wallet.pay_quote(checked.quote, checked.vendor_certificate, None, "prompt")
    (chain,) = wallet.list_chains()
    assert (chain.position, chain.burned, chain.unspent) == (5, 5, 45)
    assert wallet.balance()[0].unspent == _eur(45)


class _Refuser:
    """A vendor stand-in answering every payment with a refusal signed by the wrong key."""

    def __init__(self, template: Any, key: Any) -> None:
        self.template, self.key = template, key

    def pay(self, wire: dict[str, Any], url: str | None = None) -> dict[str, Any]:
        import dataclasses

        from netpay.errors import QuoteExpired
        from netpay.signed import Signed

        body = dataclasses.replace(
            self.template.body, payment_id=wire["payment_id"], vendor_id=wire["quote"]["body"]["vendor_id"]
        )
        raise QuoteExpired(refusal=Signed.sign(body, self.key).to_wire())


def test_same_quote_paid_from_two_threads_is_paid_once(funded_wallet: WalletService, vendor: RunningVendor) -> None:
    import threading

    w = funded_wallet
    q, c = quote_for(vendor.url, ITEM)
    checked = w.check_quote(q, c, vendor.url)
    outcomes: list[str] = []
    gate = threading.Barrier(4)

    def pay() -> None:
        gate.wait()
        try:
            w.pay_quote(checked.quote, checked.vendor_certificate, vendor.url, "prompt")
            outcomes.append("paid")
        except QuoteAlreadyPaid:
            outcomes.append("refused")

    threads = [threading.Thread(target=pay) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["paid", "refused", "refused", "refused"]
    (chain,) = w.list_chains()
    assert (chain.settled, chain.burned, chain.unspent) == (5, 0, 195)


def test_quote_must_come_from_the_certified_vendor(
    funded_wallet: WalletService, vendor_factory: Any, tmp_path: Path
) -> None:
    import dataclasses

    from netpay.keys import load_or_create_key
    from netpay.messages import Quote
    from netpay.signed import Signed
    from vendor_stub.service import key_path

    news = vendor_factory(data_dir=tmp_path / "news")
    cards = vendor_factory(catalog=CARDS, name="Paper Lantern Cards")
    q, c = quote_for(news.url, ITEM)
    _, cards_cert = quote_for(cards.url, "thank-you-sunrise")
    with pytest.raises(UntrustedSigner):  # a quote of one shop under another shop's certificate
        funded_wallet.check_quote(q, cards_cert, None)
    key = load_or_create_key(key_path(tmp_path / "news"))
    body = Signed.from_wire(q, Quote).body
    elsewhere = Signed.sign(dataclasses.replace(body, payment_url="http://127.0.0.1:9/v1/payments"), key)
    with pytest.raises(Forbidden, match="payment URL"):  # signed by the vendor, but pays somewhere else
        funded_wallet.check_quote(elsewhere.to_wire(), c, None)
    assert funded_wallet.check_quote(Signed.sign(body, key).to_wire(), c, None).price == _eur(5)


@pytest.mark.parametrize("death", ["after_answer", "after_journal"])
def test_killed_before_the_spend_reached_its_tables_recovers_it(
    broker: RunningBroker, vendor: RunningVendor, tmp_path: Path, death: str
) -> None:
    """The spend is journalled as one fsync'd intent; the spend's rows and the receipt are written after (on the
    vault's worker, or by the next use of the vault). A process that dies after the vendor answered, or right after
    the journal write before anything was sent, leaves an intent; the next unlock applies it (the spend is pending,
    its coins reserved), re-sends the payment and stores the vendor's receipt."""
    import os
    import subprocess
    import sys

    disk = WalletOnDisk.funded(tmp_path, broker.url, coins=50)
    service = disk.service
    script = (
        "import os, sys; import wallet_app.vault.store as store;"
        "store.WORKER_DELAY_S = 600;"  # the worker will not get to it: only the next use of the vault would
        "from tests.support.wallet import quote_for;"
        + disk.opener()
        + f"q, c = quote_for({vendor.url!r}, {ITEM!r}); ch = w.check_quote(q, c, None);"
        "paid = w.pay_quote(ch.quote, ch.vendor_certificate, None, 'prompt');"
        "print(paid.access_token, flush=True); os._exit(0)"  # dies before anyone uses the vault again
    )
    env = {**os.environ, "NETPAY_WALLET_CRASH_AT": death}  # after_answer is no crash point: os._exit does it
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[3],
        env=env, timeout=60,
    )  # fmt: skip
    assert proc.returncode == (0 if death == "after_answer" else -9), proc.stderr
    token = proc.stdout.strip()
    w = service()
    w.unlock(recover=False)
    (row,) = w.vault.query("SELECT status, access_token FROM spends")
    assert (row["status"], row["access_token"]) == ("pending", None)
    (chain,) = w.list_chains()
    assert (chain.position, chain.pending, chain.unspent) == (5, 5, 45)
    assert w.recover_pending() == 1
    (row,) = w.vault.query("SELECT status, access_token FROM spends")
    assert row["status"] == "settled"
    if death == "after_answer":  # the vendor answers the re-sent payment with the same receipt
        assert row["access_token"] == token
    else:  # nothing had been sent: the re-send is the first payment the vendor sees
        assert token == "" and row["access_token"]
    assert w.vault.one("SELECT COUNT(*) FROM intents")[0] == 0
    (chain,) = w.list_chains()
    assert (chain.settled, chain.pending, chain.burned, chain.unspent) == (5, 0, 0, 45)
    w.close()


def arrivals(app: Any, events: list[str]) -> Any:
    """The shop's app, noting the path of each request as it reaches the shop, before it is handled."""

    async def noting(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            events.append(scope["path"])
        await app(scope, receive, send)

    return noting


def slow_fsync(monkeypatch: pytest.MonkeyPatch, events: list[str], fail: bool = False) -> None:
    """The vault's fsync takes 0.2 s (and then raises, with ``fail``); its end is noted in ``events``."""
    import os

    import wallet_app.vault.store as store

    real = os.fsync

    def fsync(fd: int) -> None:
        time.sleep(0.2)
        events.append("fsync")
        if fail:
            raise OSError(5, "Input/output error")
        real(fd)

    monkeypatch.setattr(store.os, "fsync", fsync)


def test_the_journal_is_fsynced_before_the_payment_leaves(
    funded_wallet: WalletService, vendor_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spend's intent is committed to the log and then the log is fsync'd; the shop sees the payment only after
    the fsync ended, even when the fsync is slow (watched at the shop's door, not at the wallet's client)."""
    events: list[str] = []
    vendor = vendor_factory(wrap=lambda app: arrivals(app, events))
    slow_fsync(monkeypatch, events)
    paid = _pay(funded_wallet, vendor)
    assert paid.access_token
    assert [e for e in events if e != "/v1/quotes"][:2] == ["fsync", "/v1/payments"]


def test_a_failed_journal_fsync_sends_nothing(
    funded_wallet: WalletService, vendor_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fsync of the journal fails (an I/O error): the shop never sees the payment, and the wallet says so; the
    spend it committed does not stay pending (recovery would send it later, a payment the user was told failed), and
    its coins are the chain's next ones again: the same quote is then paid once, from the same index."""
    events: list[str] = []
    vendor = vendor_factory(wrap=lambda app: arrivals(app, events))
    q, c = quote_for(vendor.url, ITEM)
    checked = funded_wallet.check_quote(q, c, vendor.url)
    (chain,) = funded_wallet.list_chains()
    with monkeypatch.context() as m:
        slow_fsync(m, events, fail=True)
        with pytest.raises(OSError):
            funded_wallet.pay_quote(checked.quote, checked.vendor_certificate, vendor.url, "prompt")
    assert "/v1/payments" not in events
    assert funded_wallet.vault.query("SELECT * FROM spends") == []
    assert funded_wallet.list_chains() == [chain]
    assert funded_wallet.recover_pending() == 0
    paid = funded_wallet.pay_quote(checked.quote, checked.vendor_certificate, vendor.url, "prompt")
    assert paid.amount == checked.price and "/v1/payments" in events
    (row,) = funded_wallet.vault.query("SELECT status FROM spends")
    assert row[0] == "settled"


def test_a_twin_spend_applied_at_once_is_refused_whole(funded_wallet: WalletService, vendor: RunningVendor) -> None:
    """A program's spend reaches its tables in the journal's own commit. A second spend of the same quote there
    (the twin check before it bypassed) is refused with nothing written, rather than journalled as burned: nothing
    of it was sent."""
    from netpay.errors import QuoteAlreadyPaid
    from wallet_app.services.payments import SPEND_INTENT

    w = funded_wallet
    q, c = quote_for(vendor.url, ITEM)
    prepared = w.prepare_payment(q, c, vendor.url, "api")
    assert w.vault.one("SELECT status FROM spends WHERE payment_id = ?", (prepared.payment_id,))[0] == "pending"
    assert w.vault.one("SELECT COUNT(*) FROM intents")[0] == 0  # applied in the journal's commit
    columns = ("payment_id, quote_id, quote_digest, vendor_id, vendor_name, vendor_key, payment_url, item_url, title, "
               "amount, currency, via, origin, payment_json, created_at, api_url_json")  # fmt: skip
    row = list(w.vault.one(f"SELECT {columns} FROM spends WHERE payment_id = ?", (prepared.payment_id,)))
    row[0] = "f" * 32  # another payment of the same quote
    before = w.vault.dump()
    with pytest.raises(QuoteAlreadyPaid):
        w.vault.journal(SPEND_INTENT, {"spend": row, "segments": [], "chains": []}, at_once=True)
    assert w.vault.dump() == before


def test_a_spend_the_vault_cannot_apply_stops_payments_until_it_can(
    funded_wallet: WalletService, vendor: RunningVendor
) -> None:
    """The spend's intent is durable, but applying it to the tables fails (a full disk: injected, as no test disk
    fills on demand). The paid purchase stands; the next payment is refused before anything is sent, since its
    coins would be chosen from tables that lack the first spend; once the disk has room both go through, with no
    index used twice."""
    w = funded_wallet
    disk = full_disk_for_spends(w)
    q, c = quote_for(vendor.url, ITEM)
    second = w.check_quote(q, c, vendor.url)
    first = _pay(w, vendor)  # journalled and fsync'd, sent, the receipt verified
    assert first.access_token
    with pytest.raises(VaultWriteFailed):
        w.pay_quote(second.quote, second.vendor_certificate, vendor.url, "prompt")
    with pytest.raises(VaultWriteFailed):
        w.balance()
    assert vendor.vendor.store.one("SELECT COUNT(*) FROM payments")[0] == 1  # the refused one never left
    disk.full = False
    (line,) = w.balance()
    assert line.unspent == _eur(195) and line.pending == _eur(0)  # the first spend, and its receipt after it
    paid = w.pay_quote(second.quote, second.vendor_certificate, vendor.url, "prompt")
    segments = [(s.from_index, s.to_index) for s in paid.receipt.body.segments]
    assert [(s.from_index, s.to_index) for s in first.receipt.body.segments] == [(0, 5)] and segments == [(5, 10)]
    (chain,) = w.list_chains()
    assert (chain.settled, chain.pending, chain.burned, chain.unspent) == (10, 0, 0, 190)
    assert [e.status for e in w.activity() if e.kind == "payment"] == ["settled", "settled"]
