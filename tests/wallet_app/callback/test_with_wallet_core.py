"""The callback in front of the real wallet core (vault, payment engine) and a real vendor and broker on loopback."""

from __future__ import annotations

from typing import Any

import requests

from netpay.money import Money
from tests.support.vendor import RunningVendor
from tests.support.wallet import full_disk_for_spends, quote_for
from wallet_app.callback.prompts import Prompt
from wallet_app.callback.server import CallbackServer
from wallet_app.services import WalletService

ITEM = "harbour-bridge-reopens"


def offer(vendor: RunningVendor, item: str = ITEM) -> dict[str, Any]:
    q, c = quote_for(vendor.url, item)
    return {"quote": q, "vendor_certificate": c}


def post(srv: CallbackServer, body: Any, origin: str) -> requests.Response:
    return requests.post(f"{srv.url}/v1/purchase", json=body, headers={"Origin": origin}, timeout=20)


def spends(wallet: WalletService) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in wallet.vault.query("SELECT payment_id, status, via FROM spends ORDER BY payment_id")]


def test_prompt_shows_certified_vendor_and_real_balance_then_pays(
    handoff: CallbackServer, vendor: RunningVendor, funded_wallet: WalletService
) -> None:
    resp = post(handoff, offer(vendor), vendor.url)
    assert resp.status_code == 200 and resp.json()["status"] == "pending"
    (prompt,) = handoff.coordinator.pending_prompts()
    assert prompt.vendor_name == "Daily Planet" and prompt.vendor_id == vendor.vendor_id
    assert prompt.balance == Money(200, "EUR") and prompt.balance_after == prompt.balance - prompt.price
    assert spends(funded_wallet) == []
    assert handoff.coordinator.approve(prompt.prompt_id).result(timeout=15).status == "paid"
    poll = requests.get(f"{handoff.url}/v1/purchase/{prompt.prompt_id}", params={"token": resp.json()["poll_token"]},
                        timeout=10).json()  # fmt: skip
    assert poll["status"] == "paid" and poll["item_url"].startswith(f"{vendor.url}/items/{ITEM}")
    access = requests.get(f"{vendor.url}/v1/access/{ITEM}", params={"token": poll["access_token"]}, timeout=10)
    assert access.json()["valid"] is True
    assert [s[1:] for s in spends(funded_wallet)] == [("settled", "prompt")]


def test_allowance_payment_is_listed_as_auto_payment(
    handoff: CallbackServer, vendor: RunningVendor, funded_wallet: WalletService
) -> None:
    funded_wallet.set_allowance(vendor.vendor_id, "Daily Planet", Money(10, "EUR"), Money(10, "EUR"))
    seen: list[Prompt] = []
    handoff.coordinator.on_prompt = seen.append
    first = post(handoff, offer(vendor), vendor.url).json()
    assert first["status"] == "paid" and seen == []
    assert [s[1:] for s in spends(funded_wallet)] == [("settled", "allowance")]
    # The day's budget (10 cents) cannot pay 2 more 5-cent articles: the third purchase prompts.
    items = [i["item_id"] for i in requests.get(f"{vendor.url}/v1/catalog", timeout=10).json()["items"]]
    second = post(handoff, offer(vendor, items[1]), vendor.url).json()
    third = post(handoff, offer(vendor, items[2]), vendor.url).json()
    statuses = [second["status"], third["status"]]
    assert "pending" in statuses and len(seen) == 1


def test_locked_wallet_answers_423_asks_to_unlock_and_changes_nothing(
    handoff: CallbackServer, vendor: RunningVendor, funded_wallet: WalletService
) -> None:
    body = offer(vendor)
    handoff.coordinator.wallet.trusted_broker_keys()  # as after any unlocked use: the trusted keys are known
    asked: list[bool] = []
    handoff.coordinator.on_unlock_requested = lambda: asked.append(True)
    funded_wallet.lock()
    resp = post(handoff, body, vendor.url)
    assert resp.status_code == 423 and resp.json()["error"]["code"] == "locked"
    assert resp.headers["Access-Control-Allow-Origin"] == vendor.url and asked == [True]
    # An uncertified page gets no unlock request out of a locked wallet.
    assert post(handoff, body, "http://127.0.0.1:9").status_code == 403 and asked == [True]
    funded_wallet.unlock()
    assert spends(funded_wallet) == [] and handoff.coordinator.pending_prompts() == []
    assert post(handoff, body, vendor.url).json()["status"] == "pending"


def test_not_enough_coins_prompts_with_negative_balance_and_fails_cleanly(
    handoff: CallbackServer, vendor: RunningVendor, wallet_factory: Any
) -> None:
    empty = wallet_factory("empty")
    info = empty.add_broker(handoff.coordinator.wallet.service.brokers()[0].url)
    empty.trust_broker(info.broker_id)
    from wallet_app.callback.coordinator import PurchaseCoordinator
    from wallet_app.callback.server import CallbackServer as Server
    from wallet_app.callback.services_adapter import ServicesWalletPort

    srv = Server(PurchaseCoordinator(ServicesWalletPort(empty)), port=0).start()
    try:
        resp = post(srv, offer(vendor), vendor.url)
        (prompt,) = srv.coordinator.pending_prompts()
        assert not prompt.affordable and prompt.balance == Money(0, "EUR")
        assert srv.coordinator.failure(prompt.prompt_id) is None  # still pending
        assert srv.coordinator.approve(prompt.prompt_id).result(timeout=15).status == "failed"
        assert srv.coordinator.failure(prompt.prompt_id).code == "insufficient_coins"
        token = resp.json()["poll_token"]
        poll = requests.get(f"{srv.url}/v1/purchase/{prompt.prompt_id}", params={"token": token}, timeout=10).json()
        assert poll == {
            "status": "failed",
            "error": {"code": "insufficient_coins", "message": poll["error"]["message"]},
        }
        assert spends(empty) == []
    finally:
        srv.stop()
        srv.coordinator.shutdown()


def test_a_payment_the_vault_cannot_finish_recording_answers_503_and_sends_nothing_more(
    handoff: CallbackServer, vendor: RunningVendor, funded_wallet: WalletService
) -> None:
    """After an allowance payment whose spend cannot be applied to the vault's tables (a full disk: injected), the
    page's next purchase gets a clear 503 it can read, and nothing more reaches the vendor until the disk has room."""
    w = funded_wallet
    w.set_allowance(vendor.vendor_id, "Daily Planet", Money(20, "EUR"), Money(20, "EUR"))
    disk = full_disk_for_spends(w)
    items = [i["item_id"] for i in requests.get(f"{vendor.url}/v1/catalog", timeout=10).json()["items"]]
    assert post(handoff, offer(vendor, items[0]), vendor.url).json()["status"] == "paid"
    resp = post(handoff, offer(vendor, items[1]), vendor.url)
    assert resp.status_code == 503 and resp.json()["error"]["code"] == "vault_write_failed"
    assert "disk" in resp.json()["error"]["message"]
    assert resp.headers["Access-Control-Allow-Origin"] == vendor.url
    assert vendor.vendor.store.one("SELECT COUNT(*) FROM payments")[0] == 1
    disk.full = False
    assert post(handoff, offer(vendor, items[1]), vendor.url).json()["status"] == "paid"
    assert [s[1:] for s in spends(w)] == [("settled", "allowance"), ("settled", "allowance")]


def test_no_exact_change_says_what_to_buy_and_reveals_no_balance(
    wallet: WalletService, broker: Any, vendor: RunningVendor, callback_for: Any
) -> None:
    """EUR 0.20 in 2-cent coins cannot make 5 cents: the allowance payment answers 402 `insufficient_coins` with
    what to buy; the prompt says it and keeps Pay off. The page learns no amount the wallet holds."""
    from tests.support.wallet import funded_wallet as fund
    from wallet_app.callback.services_adapter import ServicesWalletPort

    fund(wallet, broker.url, chains=1, coins=10, coin_value=2)
    srv = callback_for(ServicesWalletPort(wallet))
    wallet.set_allowance(vendor.vendor_id, "Daily Planet", Money(10, "EUR"), Money(50, "EUR"))
    resp = post(srv, offer(vendor), vendor.url)
    assert resp.status_code == 402
    err = resp.json()["error"]
    assert err["code"] == "insufficient_coins" and "buy coins of €0.01" in err["message"]
    assert err["details"]["reason"] == "no_exact_change" and err["details"]["buy"] == {"amount": 1, "currency": "EUR"}
    assert "0.20" not in resp.text and "0.18" not in resp.text  # nothing about the balance
    wallet.revoke_allowance(vendor.vendor_id)
    pending = post(srv, offer(vendor), vendor.url).json()
    (prompt,) = srv.coordinator.pending_prompts()
    assert prompt.advice is not None and "buy coins of €0.01" in prompt.advice and not prompt.affordable
    assert srv.coordinator.approve(prompt.prompt_id).result(timeout=15).status == "failed"
    poll = requests.get(f"{srv.url}/v1/purchase/{prompt.prompt_id}", params={"token": pending["poll_token"]},
                        timeout=10).json()  # fmt: skip
    assert poll["status"] == "failed" and poll["error"]["code"] == "insufficient_coins"
    assert "buy coins of €0.01" in poll["error"]["message"]
    assert spends(wallet) == []


def test_an_allowance_purchase_is_checked_as_fully_as_a_prompted_one(
    handoff: CallbackServer, vendor: RunningVendor, funded_wallet: WalletService
) -> None:
    """A purchase an allowance covers goes straight to paying, without the prompt's separate quote check; paying
    makes those checks itself. A quote the vault already paid (the callback restarted and does not remember it)
    and a vendor the broker has since revoked are both refused with their own codes, and nothing more is paid."""
    funded_wallet.set_allowance(vendor.vendor_id, "Daily Planet", Money(10, "EUR"), Money(100, "EUR"))
    body = offer(vendor)
    assert post(handoff, body, vendor.url).json()["status"] == "paid"
    handoff.coordinator._quotes.clear()  # as after a restart of the callback: only the vault remembers the quote
    again = post(handoff, body, vendor.url)
    assert again.status_code == 409 and again.json()["error"]["code"] == "quote_paid"
    assert [s[1:] for s in spends(funded_wallet)] == [("settled", "allowance")]
    funded_wallet.trust.revoked_vendors.add(vendor.vendor_id)  # the broker's list, as the wallet last fetched it
    revoked = post(handoff, offer(vendor, "night-market-returns"), vendor.url)
    assert revoked.json()["error"]["code"] == "revoked"
    assert [s[1:] for s in spends(funded_wallet)] == [("settled", "allowance")]
