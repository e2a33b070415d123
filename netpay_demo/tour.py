"""The scripted tour: the whole system, driven the way a customer would, with every figure reconciled to the cent.

The wallet runs headless inside this process (its services, purchase coordinator and real local callback); the
tour plays the browser: it asks a vendor for a quote and hands it to the wallet's callback over HTTP with the
vendor page's Origin, exactly as the page script does. Prompts are answered by the tour. Broker and vendors are the
separate processes started by :class:`netpay_demo.system.DemoSystem`.
"""

from __future__ import annotations

import html
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from netpay.money import Money
from netpay_demo.processes import DemoError
from netpay_demo.system import CATALOGS, DEMO_CUSTOMER, TEST_CARD, DemoSystem, ShopSpec

__all__ = ["Tour", "TourFailed"]

TOUR_PASSPHRASE = "tour-passphrase-not-secret"


class TourFailed(DemoError):
    """A check of the tour did not hold."""


@dataclass
class Tour:
    """Runs the steps and collects the checks; :meth:`run` returns True only when every check holds."""

    system: DemoSystem
    say: Callable[[str], None] = print
    checks: list[tuple[str, bool]] = field(default_factory=list)
    spent: dict[str, Money] = field(default_factory=dict)  # vendor key -> paid there

    def check(self, what: str, ok: bool) -> None:
        self.checks.append((what, ok))
        self.say(f"   {'ok  ' if ok else 'FAIL'} {what}")

    # -- wallet ---------------------------------------------------------------------------------------------------
    def _start_wallet(self) -> None:
        from wallet_app.callback.coordinator import PurchaseCoordinator
        from wallet_app.callback.server import CallbackServer
        from wallet_app.callback.services_adapter import ServicesWalletPort
        from wallet_app.services import WalletEvents, WalletService

        cfg = self.system.config
        self.events = WalletEvents()
        self.wallet = WalletService(cfg.data_dir / "wallet-tour", events=self.events)
        passphrase = TOUR_PASSPHRASE if self.wallet.needs_passphrase() else None
        if self.wallet.state == "new":
            self.wallet.create(passphrase)
        else:
            self.wallet.unlock(passphrase)
        info = self.wallet.add_broker(cfg.broker_url)
        self.wallet.trust_broker(info.broker_id)
        self.broker_id = info.broker_id
        self.wallet.login(info.broker_id, DEMO_CUSTOMER["username"], DEMO_CUSTOMER["password"])
        self.coordinator = PurchaseCoordinator(ServicesWalletPort(self.wallet))
        self.callback = CallbackServer(self.coordinator, port=cfg.callback_port).start()
        self.auto_paid: list[Any] = []
        self.events.auto_payment_made.append(self.auto_paid.append)
        self.say(f"wallet     headless, vault in {cfg.data_dir / 'wallet-tour'}, callback {self.callback.url}")

    def _stop_wallet(self) -> None:
        if getattr(self, "callback", None) is not None:
            self.callback.stop()
        if getattr(self, "coordinator", None) is not None:
            self.coordinator.shutdown()
        if getattr(self, "wallet", None) is not None:
            self.wallet.close()

    # -- the browser's part ---------------------------------------------------------------------------------------
    def buy(
        self, shop: ShopSpec, item_id: str, *, expect_prompt: bool, allow_limit: Money | None = None
    ) -> dict[str, Any]:
        """Do what the page script does for one Buy click; answer the prompt if one opens."""
        offer = requests.post(f"{shop.url}/v1/quotes", json={"item_id": item_id}, timeout=10)
        if offer.status_code != 200:
            raise TourFailed(f"{shop.name} refused a quote for {item_id}: {offer.status_code} {offer.text[:200]}")
        quote = offer.json()["quote"]["body"]
        price = Money.from_json(quote["price"])
        headers = {"Origin": shop.url, "Content-Type": "application/json"}
        answer = requests.post(
            f"{self.callback.url}/v1/purchase", data=json.dumps(offer.json()), headers=headers, timeout=30
        )
        body = answer.json()
        if answer.status_code >= 300:
            raise TourFailed(f"the wallet refused {item_id}: {body}")
        prompted = body.get("status") == "pending"
        if prompted:
            prompt = self.coordinator.prompt(body["prompt_id"])
            self.say(
                f"   prompt: {prompt.vendor_name} ({prompt.origin}) asks {prompt.price.format()} for "
                f"“{prompt.item_title}” — approved"
                + (f", allowing up to {allow_limit.format()}" if allow_limit else "")
            )
            self.coordinator.approve(body["prompt_id"], allow_limit).result(timeout=30)
            poll = requests.get(
                f"{self.callback.url}/v1/purchase/{body['prompt_id']}",
                params={"token": body["poll_token"]},
                headers={"Origin": shop.url},
                timeout=10,
            )
            body = poll.json()
        else:
            self.say(f"   paid under the allowance, no prompt: “{quote['title']}” {price.format()}")
        self.check(
            f"{quote['title'][:48]}: {'prompted' if expect_prompt else 'no prompt'} and paid",
            body.get("status") == "paid" and prompted == expect_prompt,
        )
        token = body.get("access_token", "")
        page = requests.get(quote["item_url"], params={"access": token}, timeout=10)
        first_line = self._first_paragraph(shop, item_id)
        self.check(
            "   the access token opens the item", page.status_code == 200 and first_line in html.unescape(page.text)
        )
        self.spent[shop.key] = self.spent.get(shop.key, Money.zero(price.currency)) + price
        return body

    @staticmethod
    def _first_paragraph(shop: ShopSpec, item_id: str) -> str:
        catalog = json.loads((CATALOGS / shop.catalog).read_text())
        item = next(i for i in catalog["items"] if i["item_id"] == item_id)
        body = item.get("body") or item.get("message") or [item.get("title", "")]
        text = body[0] if isinstance(body, list) else str(body)
        return text[:40]

    # -- broker views ---------------------------------------------------------------------------------------------
    def _operator(self, path: str) -> Any:
        r = requests.get(
            f"{self.system.config.broker_url}{path}",
            timeout=10,
            headers={"X-Operator-Token": self.system.operator_token},
        )
        r.raise_for_status()
        return r.json()

    def _customer_token(self) -> str:
        """A broker session of the demo customer (the tour reads the account the way the customer would)."""
        r = requests.post(
            f"{self.system.config.broker_url}/v1/sessions",
            timeout=10,
            json={"username": DEMO_CUSTOMER["username"], "password": DEMO_CUSTOMER["password"]},
        )
        r.raise_for_status()
        token: str = r.json()["token"]
        return token

    def _custodian(self, chain_id: str) -> str | None:
        token = self._customer_token()
        chains = requests.get(
            f"{self.system.config.broker_url}/v1/account/chains",
            timeout=10,
            headers={"Authorization": f"Bearer {token}"},
        ).json()["chains"]
        for chain in chains:
            if chain["chain_id"] == chain_id:
                return chain.get("custodian")
        return None

    def _redeem(self, shop: ShopSpec) -> str:
        data = self.system.config.data_dir / f"vendor-{shop.key}"
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "vendor_stub.cli",
                "redeem",
                "--data-dir",
                str(data),
                "--broker",
                self.system.config.broker_url,
                *self.system.database_args(f"vendor-{shop.key}"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if out.returncode != 0:
            raise TourFailed(f"redeeming at {shop.name} failed: {out.stderr[-400:]}")
        return out.stdout.strip()

    # -- the tour -------------------------------------------------------------------------------------------------
    def run(self) -> bool:
        news, cards = self.system.config.shops()
        step = iter(range(1, 100))
        try:
            self._start_wallet()
            funds: Money = DEMO_CUSTOMER["funds"]
            self.say(f"\n{next(step)}. The wallet shows the broker account")
            start = self._account()
            self.say(f"   {start.username} at {start.broker_name}: {start.balance.format()}")
            self.check(f"the wallet shows the {funds.format()} on the account", start.balance == funds)

            self.say(f"\n{next(step)}. Buy 500 coins of 1 cent, paid from the account")
            chain = self.wallet.buy_coins(self.broker_id, 500, Money(1, "EUR"), card=TEST_CARD)
            self.say(
                f"   chain {chain.chain_id[:12]}… certified by {chain.broker_id}: {chain.length} coins of "
                f"{chain.coin_value.format()}"
            )
            self.check("the wallet holds €5.00 in coins", self._unspent() == Money(500, "EUR"))
            after_buy = self._account()
            kinds = [(e.kind, e.amount) for e in after_buy.entries]
            self.say(f"   account {after_buy.balance.format()}; statement: " + ", ".join(
                f"{k} {a.format()}" for k, a in kinds))  # fmt: skip
            self.check(
                "the account paid the €5.00, the card was not charged again",
                after_buy.balance == funds - Money(500, "EUR")
                and kinds == [("topup", funds), ("purchase", Money(-500, "EUR"))],
            )

            self.say(f"\n{next(step)}. Three articles at {news.name}: one by prompt, two under an allowance")
            self.buy(news, "harbour-bridge-reopens", expect_prompt=True, allow_limit=Money(10, "EUR"))
            self.buy(news, "night-market-returns", expect_prompt=False)
            self.buy(news, "observatory-finds-comet", expect_prompt=False)
            self.check("two payments were made under the allowance", len(self.auto_paid) == 2)
            holder = self._custodian(chain.chain_id)
            self.say(f"   the broker says {holder} holds the chain")
            self.check(f"{news.name} holds the chain", holder == self.system.vendor_ids["news"])

            self.say(f"\n{next(step)}. Two cards at {cards.name} with the same chain (custody hand-off)")
            self.buy(cards, "thank-you-sunrise", expect_prompt=True)
            holder = self._custodian(chain.chain_id)
            self.say(f"   custody moved: {self.system.vendor_ids['news']} released the chain, {holder} holds it now")
            self.check(f"{cards.name} took custody from {news.name}", holder == self.system.vendor_ids["cards"])
            self.buy(cards, "winter-greetings-snow", expect_prompt=True)

            self.say(f"\n{next(step)}. {news.name} goes down; {cards.name} keeps taking the chain")
            self.system.processes[f"vendor-{news.key}"].kill()
            self.check(f"{news.name} is down", not self._answers(news))
            self.buy(cards, "congratulations-gold", expect_prompt=True)

            self.say(f"\n{next(step)}. The vendors redeem their coins at the broker")
            for shop in (news, cards):
                self.say(f"   {shop.name}: {self._redeem(shop)}")

            self.say(f"\n{next(step)}. Return the rest of the chain")
            refund = self.wallet.return_chain(chain.chain_id)
            spent_total = sum((m for m in self.spent.values()), Money.zero("EUR"))
            self.say(f"   refund {refund.format()} for the {chain.length - spent_total.amount} unspent coins")
            self.check("refund = coins bought - coins spent", refund == Money(500, "EUR") - spent_total)
            refunds = [e for e in self.wallet.activity() if e.kind == "return"]
            self.check(
                f"Activity lists the refund of {refund.format()} from {self.broker_id}",
                [(e.amount, e.status, e.broker_id, e.ref) for e in refunds]
                == [(refund, "done", self.broker_id, chain.chain_id)],
            )
            self.check(
                "the wallet shows the refund on the account",
                self._account().balance == funds - Money(500, "EUR") + refund,
            )

            self.say(f"\n{next(step)}. Cash out €10.00 of the account to the test card")
            cashed = Money(1000, "EUR")
            left = self.wallet.cash_out(self.broker_id, cashed, TEST_CARD, "tour-cash-out")
            self.say(f"   paid back to the card ending 4242; the account keeps {left.format()}")
            outs = [e for e in self.wallet.activity() if e.kind == "cashout"]
            self.check(
                "Activity lists the cash-out once, for €10.00",
                [(e.amount, e.status) for e in outs] == [(cashed, "done")],
            )
            self.check(
                "the account after the cash-out = funds - spent - cashed out", left == funds - spent_total - cashed
            )

            self.say(f"\n{next(step)}. Reconciliation")
            return self._reconcile(spent_total, cashed)
        finally:
            self._stop_wallet()

    def _answers(self, shop: ShopSpec) -> bool:
        try:
            return requests.get(f"{shop.url}/v1/info", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def _unspent(self) -> Money:
        return sum((line.unspent for line in self.wallet.balance() if line.currency == "EUR"), Money.zero("EUR"))

    def _account(self) -> Any:
        """The demo customer's account as the wallet shows it, fetched again from the broker."""
        failed = self.wallet.refresh_accounts(self.broker_id)
        if failed:
            raise TourFailed(f"the wallet could not read the account: {failed[self.broker_id]}")
        return next(a for a in self.wallet.accounts() if a.broker_id == self.broker_id)

    def _reconcile(self, spent_total: Money, cashed: Money) -> bool:
        trial = self._operator("/v1/ledger/trial-balance")
        self.say("   broker trial balance:")
        for name, amount in sorted(trial["accounts"].items()):
            self.say(f"     {name:22} {Money(int(amount), 'EUR').format():>12}")
        self.check("the broker's ledger balances", bool(trial.get("balanced")))
        for shop in self.system.config.shops():
            vendor_id = self.system.vendor_ids[shop.key]
            account = self._operator(f"/v1/vendors/{vendor_id}/account")
            payable = Money.from_json(account["payable"]) if isinstance(account.get("payable"), dict) else None
            earned = self.spent.get(shop.key, Money.zero("EUR"))
            self.say(
                f"   {shop.name:20} earned {earned.format()}, broker owes it {payable.format() if payable else '?'}"
            )
            self.check(f"{shop.name} is paid exactly for its own coins", payable == earned)
        token = self._customer_token()
        account = requests.get(
            f"{self.system.config.broker_url}/v1/account", timeout=10, headers={"Authorization": f"Bearer {token}"}
        ).json()
        balance = Money.from_json(account["balance"])
        funds: Money = DEMO_CUSTOMER["funds"]
        self.say(
            f"   customer account at the broker {balance.format()} (funded {funds.format()}, spent "
            f"{spent_total.format()}, cashed out {cashed.format()}); coins left in the wallet "
            f"{self._unspent().format()}"
        )
        self.check("customer account = funds - spent - cashed out", balance == funds - spent_total - cashed)
        self.check("the wallet shows the same balance", self._account().balance == balance)
        clearing = Money(int(trial["accounts"]["card_clearing"]), "EUR")
        self.check("the card clearing holds the funds less the cash-out", clearing == funds - cashed)
        self.check("the wallet holds no coins after the return", self._unspent() == Money.zero("EUR"))
        payments = [a for a in self.wallet.activity() if a.kind == "payment" and a.status == "settled"]
        paid = sum((a.amount for a in payments), Money.zero("EUR"))
        self.check(
            f"the wallet's {len(payments)} settled payments with receipts add up to {paid.format()}",
            len(payments) == 6 and paid == spent_total and all(a.access_token for a in payments),
        )
        failed = [what for what, ok in self.checks if not ok]
        self.say(f"\n{len(self.checks) - len(failed)} passed, {len(failed)} failed")
        return not failed
