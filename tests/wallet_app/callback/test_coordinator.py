"""The purchase coordinator's decisions: prompt vs allowance, the GUI API, replay, crowding, cool-down, lock."""

from __future__ import annotations

from typing import Any

import pytest

from netpay.errors import (
    Conflict,
    Forbidden,
    MalformedMessage,
    NetPayError,
    QuoteAlreadyPaid,
    QuoteExpired,
    RateLimited,
    UntrustedSigner,
    WalletLocked,
)
from netpay.keys import SigningKey
from netpay.money import Money
from tests.support.callback import Shop, TestWallet, make_shop
from wallet_app.callback.coordinator import Offer, PurchaseCoordinator
from wallet_app.callback.limits import Limits
from wallet_app.callback.origins import OriginRegistry
from wallet_app.callback.prompts import Prompt

ORIGIN = "http://127.0.0.1:8201"


def coordinator(wallet: TestWallet, limits: Limits | None = None, clock: Any = None) -> PurchaseCoordinator:
    kw: dict[str, Any] = {"clock": clock} if clock else {}
    reg = OriginRegistry(wallet.trusted_broker_keys, discover=False, **kw)
    return PurchaseCoordinator(wallet, limits=limits, registry=reg, **kw)


def offer(shop: Shop, **kw: Any) -> Offer:
    return Offer.from_json(shop.offer(**kw))


def test_prompt_then_approve_pays_once_and_poll_reports_paid(shop: Shop, test_wallet: TestWallet) -> None:
    c = coordinator(test_wallet)
    seen: list[Prompt] = []
    c.on_prompt = seen.append
    answer = c.purchase(offer(shop, amount=7), ORIGIN)
    assert answer["status"] == "pending" and len(answer["poll_token"]) >= 24
    (prompt,) = c.pending_prompts()
    assert seen == [prompt]
    assert prompt.vendor_name == "The shop-1 Shop" and prompt.origin == ORIGIN
    assert prompt.price == Money(7, "EUR") and prompt.balance_after == Money(993, "EUR")
    assert c.poll(prompt.prompt_id, answer["poll_token"], ORIGIN)["status"] == "pending"
    assert test_wallet.paid == []
    done = c.approve(prompt.prompt_id).result(timeout=5)
    assert done.status == "paid"
    status = c.poll(prompt.prompt_id, answer["poll_token"], ORIGIN)
    assert status == {"status": "paid", "access_token": "tok-1", "item_url": f"{ORIGIN}/items/article-1",
                      "valid_until": None}  # fmt: skip
    assert len(test_wallet.paid) == 1 and c.pending_prompts() == []
    with pytest.raises(Conflict):
        c.approve(prompt.prompt_id)


def test_wrong_poll_token_or_origin_learns_nothing(shop: Shop, test_wallet: TestWallet) -> None:
    c = coordinator(test_wallet)
    answer = c.purchase(offer(shop), ORIGIN)
    with pytest.raises(NetPayError) as e:
        c.poll(answer["prompt_id"], "guess")
    assert e.value.code == "not_found"
    with pytest.raises(Forbidden):
        c.poll(answer["prompt_id"], answer["poll_token"], "http://127.0.0.1:9999")


def test_allowance_pays_without_prompt_and_approve_can_grant_one(shop: Shop, test_wallet: TestWallet) -> None:
    c = c2 = coordinator(test_wallet)
    first = c.purchase(offer(shop, amount=5), ORIGIN)
    c.approve(first["prompt_id"], allow_limit=Money(20, "EUR")).result(timeout=5)
    assert test_wallet.allowances == {"shop-1": Money(20, "EUR")}
    prompts: list[Prompt] = []
    c2.on_prompt = prompts.append
    second = c2.purchase(offer(shop, amount=5, item_id="article-2"), ORIGIN)
    assert second["status"] == "paid" and second["access_token"] == "tok-2"
    assert prompts == [] and len(test_wallet.paid) == 2
    # Over the remaining budget: prompts again.
    third = c2.purchase(offer(shop, amount=50, item_id="article-3"), ORIGIN)
    assert third["status"] == "pending" and len(prompts) == 1


def test_decline_pays_nothing_and_three_declines_cool_the_origin_down(shop: Shop, test_wallet: TestWallet) -> None:
    c = coordinator(test_wallet)
    for i in range(3):
        answer = c.purchase(offer(shop, item_id=f"a{i}"), ORIGIN)
        assert c.decline(answer["prompt_id"]).status == "declined"
        assert c.poll(answer["prompt_id"], answer["poll_token"])["status"] == "declined"
    with pytest.raises(RateLimited) as e:
        c.purchase(offer(shop, item_id="a4"), ORIGIN)
    assert e.value.details["reason"] == "cooldown"
    assert test_wallet.paid == [] and c.pending_prompts() == []


def test_one_open_prompt_per_origin(shop: Shop, test_wallet: TestWallet) -> None:
    c = coordinator(test_wallet)
    c.purchase(offer(shop, item_id="a"), ORIGIN)
    with pytest.raises(RateLimited) as e:
        c.purchase(offer(shop, item_id="b"), ORIGIN)
    assert e.value.details["reason"] == "prompt_open"
    assert len(c.pending_prompts()) == 1


def test_rate_limit_per_origin(shop: Shop, test_wallet: TestWallet) -> None:
    c = coordinator(test_wallet, Limits(burst=3, per_second=0.01))
    test_wallet.allowances["shop-1"] = Money(1000, "EUR")
    for i in range(3):
        assert c.purchase(offer(shop, item_id=f"a{i}"), ORIGIN)["status"] == "paid"
    with pytest.raises(RateLimited) as e:
        c.purchase(offer(shop, item_id="a9"), ORIGIN)
    assert e.value.details["reason"] == "rate" and len(test_wallet.paid) == 3


def test_same_quote_never_paid_twice(shop: Shop, test_wallet: TestWallet) -> None:
    c = coordinator(test_wallet)
    test_wallet.allowances["shop-1"] = Money(1000, "EUR")
    o = offer(shop)
    assert c.purchase(o, ORIGIN)["status"] == "paid"
    with pytest.raises(QuoteAlreadyPaid):
        c.purchase(o, ORIGIN)
    # A prompted quote cannot be handed over a second time either.
    test_wallet.allowances.clear()
    p = offer(shop, item_id="other")
    c.purchase(p, ORIGIN)
    with pytest.raises(Conflict):
        c.purchase(p, ORIGIN)
    assert len(test_wallet.paid) == 1


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda s, o: (o, None), Forbidden),  # missing Origin
        (lambda s, o: (o, "null"), Forbidden),
        (lambda s, o: (o, "http://127.0.0.1:9999"), Forbidden),  # forged / other origin
        (lambda s, o: (Offer.from_json(s.offer(signer=SigningKey.generate())), ORIGIN), UntrustedSigner),
        (lambda s, o: (Offer.from_json(s.offer(expires_in=-1)), ORIGIN), QuoteExpired),
        (lambda s, o: (Offer.from_json(make_shop().offer()), ORIGIN), UntrustedSigner),  # untrusted broker
        (lambda s, o: (Offer.from_json(s.offer(item_url="http://evil.example/x")), ORIGIN), Forbidden),
    ],
)
def test_refusals_change_nothing(shop: Shop, test_wallet: TestWallet, mutate: Any, error: type) -> None:
    c = coordinator(test_wallet)
    o, origin = mutate(shop, offer(shop))
    with pytest.raises(error):
        c.purchase(o, origin)
    assert c.pending_prompts() == [] and test_wallet.paid == []


def test_tampered_quote_fails_signature(shop: Shop) -> None:
    wire = shop.offer()
    wire["quote"]["body"]["price"]["amount"] = 1
    with pytest.raises(NetPayError) as e:
        Offer.from_json(wire)
    assert e.value.code == "bad_signature"
    with pytest.raises(MalformedMessage):
        Offer.from_json({**shop.offer(), "extra": 1})


def test_locked_wallet_answers_locked_and_asks_to_unlock(shop: Shop, test_wallet: TestWallet) -> None:
    c = coordinator(test_wallet)
    asked: list[bool] = []
    c.on_unlock_requested = lambda: asked.append(True)
    test_wallet.locked = True
    with pytest.raises(WalletLocked):
        c.purchase(offer(shop), ORIGIN)
    assert asked == [True] and c.pending_prompts() == []
    test_wallet.locked = False
    assert c.purchase(offer(shop), ORIGIN)["status"] == "pending"


def test_prompt_expires(shop: Shop, test_wallet: TestWallet) -> None:
    now = [1_000_000_000.0]
    import time as _time

    now[0] = _time.time()
    c = coordinator(test_wallet, Limits(prompt_timeout_s=60), clock=lambda: now[0])
    answer = c.purchase(offer(shop), ORIGIN)
    closed: list[Prompt] = []
    c.on_prompt_closed = closed.append
    now[0] += 61
    assert c.pending_prompts() == []
    assert c.poll(answer["prompt_id"], answer["poll_token"])["status"] == "expired"
    assert [p.status for p in closed] == ["expired"]
    with pytest.raises(Conflict):
        c.approve(answer["prompt_id"])


def test_navigation_purchase_always_prompts_even_with_allowance(shop: Shop, test_wallet: TestWallet) -> None:
    c = coordinator(test_wallet)
    test_wallet.allowances["shop-1"] = Money(1000, "EUR")
    answer = c.purchase(offer(shop), ORIGIN, navigation=True, return_url=f"{ORIGIN}/items/article-1")
    assert answer["status"] == "pending" and test_wallet.paid == []
    c.approve(answer["prompt_id"]).result(timeout=5)
    target = c.redirect_target(answer["prompt_id"], answer["poll_token"])
    assert target == f"{ORIGIN}/items/article-1"  # no shop here to give a one-time code: the plain URL
    with pytest.raises(Forbidden):
        c.purchase(offer(shop, item_id="z"), ORIGIN, navigation=True, return_url="http://evil.example/steal")


def test_waiting_page_state_is_held_until_the_purchase_moves_on(shop: Shop, test_wallet: TestWallet) -> None:
    """The navigation fallback's held reload returns as soon as the prompt is paid (with where to go), not when
    its hold runs out; a hold on an unanswered prompt runs out and reports it still pending."""
    import threading

    c = coordinator(test_wallet)
    ret = f"{ORIGIN}/items/article-1"
    answer = c.purchase(offer(shop), ORIGIN, navigation=True, return_url=ret)
    pid, token = answer["prompt_id"], answer["poll_token"]
    prompt, status, target = c.navigation_state(pid, token, hold_pending_s=0.05)
    assert prompt.status == "pending" and status["status"] == "pending" and target is None
    got: list[tuple[Prompt, dict[str, Any], str | None]] = []
    waiter = threading.Thread(
        target=lambda: got.append(c.navigation_state(pid, token, hold_pending_s=60, hold_paying_s=60))
    )
    waiter.start()
    c.approve(pid).result(timeout=5)
    waiter.join(timeout=30)
    assert not waiter.is_alive(), "the held request did not return when the prompt was paid"
    ((prompt, status, target),) = got
    assert prompt.status == "paid" and status["status"] == "paid" and target == ret


def test_held_waiting_page_state_needs_the_poll_token(shop: Shop, test_wallet: TestWallet) -> None:
    c = coordinator(test_wallet)
    answer = c.purchase(offer(shop), ORIGIN, navigation=True, return_url=f"{ORIGIN}/items/article-1")
    for token in ("", "x" * 32, answer["poll_token"][:-1] + "A"):
        with pytest.raises(NetPayError) as info:  # refused at once: nothing is held for a stranger
            c.navigation_state(answer["prompt_id"], token, hold_pending_s=60, hold_paying_s=60)
        assert info.value.code == "not_found"
    assert [p.prompt_id for p in c.pending_prompts()] == [answer["prompt_id"]]


def test_a_page_cannot_hold_more_than_two_waiting_requests(shop: Shop, test_wallet: TestWallet) -> None:
    """Held requests each take one of the callback's threads: past two per purchase, the answer comes at once."""
    import threading
    import time as _time

    from wallet_app.callback.coordinator import MAX_HELD

    c = coordinator(test_wallet)
    answer = c.purchase(offer(shop), ORIGIN, navigation=True, return_url=f"{ORIGIN}/items/article-1")
    pid, token = answer["prompt_id"], answer["poll_token"]
    held = [threading.Thread(target=c.navigation_state, args=(pid, token), kwargs={"hold_pending_s": 60})
            for _ in range(MAX_HELD)]  # fmt: skip
    for t in held:
        t.start()
    deadline = _time.monotonic() + 10
    while c._purchases[pid].holding < MAX_HELD and _time.monotonic() < deadline:
        _time.sleep(0.01)
    assert c._purchases[pid].holding == MAX_HELD
    _prompt, status, target = c.navigation_state(pid, token, hold_pending_s=60)  # not held: answered at once
    assert status["status"] == "pending" and target is None
    c.decline(pid)  # the held ones return as the purchase moves on
    for t in held:
        t.join(timeout=10)
        assert not t.is_alive()
    assert c._purchases[pid].holding == 0
