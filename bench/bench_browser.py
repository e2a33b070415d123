"""The purchase a person feels: ``paid_click_ratio`` in Debian's Chromium, driven by Playwright as the e2e tests do.

A real broker, a Daily Planet shop and the real wallet core behind its callback run on loopback, started for the run;
the shop is covered by an allowance. Per round, interleaved, on a fresh item page (cookies cleared, so nothing is
paid yet):

- **paid**: a click on Buy for an allowance-covered article, until that article's text is rendered (the page script
  asks the wallet and the shop, the wallet pays, the page hands the token to the shop in a POST that sets the
  item's cookie, ``/v1/access/cookie``, and opens ``item_url``);
- **free**: a click on a link to another article's page of the same shop (its free teaser page, same template), until
  that page's text is rendered;
- **fallback**: the same purchase when the browser blocks the page's request to the wallet (a page whose
  ``fetch`` to ``/v1/purchase`` rejects, as a blocked request does), so the page script navigates to the wallet's
  ``/v1/pay``; that path always prompts, and the prompt is approved at once by the benchmark (the customer's part
  is not timed: a person's reading time would swamp everything else).

How it is timed, in the page, the same way for every side: the click's ``event.timeStamp`` (recorded by a capturing
listener in the clicked page) to the ``renderTime`` of the Element Timing entry of the text (``elementtiming=
"item-text"`` on the article's first paragraph, or the teaser's), both as ``performance.timeOrigin +`` their value,
so both ends are Chromium's own clock and neither includes Playwright's round trips (its click actionability checks
come before the event, its polling after the paint). Both sides end with the same kind of same-origin navigation to
the same page template; the only difference is what the click starts. A round starts when the page has settled (the
page script's hello at load and the quote it then asks for have answered), as a reader who reads before clicking
finds it; the free page runs the same script at load, after its text is painted.

``paid_click_ratio`` = median(paid) / median(free), target ≤ 1.5 (the aim is 1.2); ``paid_click_fallback_ratio`` =
median(fallback) / median(free), a report. Also ``paid_click_ms``, ``free_click_ms``, ``paid_click_fallback_ms``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from netpay.money import Money
from tests.support.broker import start_broker
from tests.support.callback import ARGS, CHROMIUM
from tests.support.vendor import start_vendor
from tests.support.wallet import funded_wallet, new_wallet
from wallet_app.callback.coordinator import Offer, PurchaseCoordinator
from wallet_app.callback.limits import Limits
from wallet_app.callback.port import PaidResult
from wallet_app.callback.prompts import Prompt
from wallet_app.callback.server import CallbackServer
from wallet_app.callback.services_adapter import ServicesWalletPort

ROUNDS = 40
WARMUP = 3

#: Injected into every page: when a click happened and when this page's text was painted, on Chromium's clock.
TIMING_SCRIPT = """
(() => {
  // requests in flight, so a round starts on a settled page (the script's checks at load have answered)
  const realFetch = window.fetch;
  window.__npInflight = 0;
  window.__npQuotes = 0;
  window.fetch = function (url) {
    window.__npInflight++;
    const quote = String(url).endsWith("/v1/quotes");
    const done = () => { window.__npInflight--; if (quote) window.__npQuotes++; };
    const answer = realFetch.apply(this, arguments);
    answer.then(done, done);
    return answer;
  };
  document.addEventListener("click", (e) => {
    try { sessionStorage.setItem("npbench.click", String(performance.timeOrigin + e.timeStamp)); } catch (_) {}
  }, true);
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if (e.identifier === "item-text") window.__npText = performance.timeOrigin + (e.renderTime || e.loadTime);
      }
    }).observe({ type: "element", buffered: true });
  } catch (_) {}
})();
"""

#: The fallback page: the browser "blocks" the page's purchase request (fetch rejects, as a blocked request does).
BLOCK_SCRIPT = """
(() => {
  const realFetch = window.fetch;
  window.fetch = function (url, options) {
    if (String(url).endsWith("/v1/purchase")) return Promise.reject(new TypeError("Failed to fetch"));
    return realFetch.apply(this, arguments);
  };
})();
"""

#: Read in the page that shows the text: click to paint in milliseconds, or null while not painted yet.
_ELAPSED = """() => {
  if (window.__npText === undefined) return null;
  const click = Number(sessionStorage.getItem("npbench.click"));
  return click ? window.__npText - click : null;
}"""


def run() -> dict[str, float | int]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: scripts/install-system-deps.sh installs Debian's chromium")
    with tempfile.TemporaryDirectory(prefix="bench-browser-") as tmp:
        root = Path(tmp)
        broker = start_broker(root / "broker")
        vendor = start_vendor(broker, root / "vendor")
        wallet = new_wallet(root / "wallet")
        server: CallbackServer | None = None
        try:
            funded_wallet(wallet, broker.url, chains=1, coins=4000, coin_value=1)
            wallet.set_allowance(vendor.vendor_id, "Daily Planet", Money(100, "EUR"), Money(100_000, "EUR"))
            # A generous rate limit: the benchmark buys far faster than a person clicks.
            coordinator = PurchaseCoordinator(ServicesWalletPort(wallet), limits=Limits(burst=1000, per_second=1000.0))
            vias: list[str] = []
            coordinator.on_prompt = lambda prompt: _approve(coordinator, prompt)
            coordinator.on_paid = lambda offer, result, via: _count(vias, offer, result, via)
            server = CallbackServer(coordinator, port=0).start()
            return _measure(server.url, vendor.url, vias)
        finally:
            if server is not None:
                server.stop()
                server.coordinator.shutdown()
            wallet.close()
            vendor.stop()
            broker.stop()


def _approve(coordinator: PurchaseCoordinator, prompt: Prompt) -> None:
    coordinator.approve(prompt.prompt_id)  # the customer answers at once (the fallback always prompts)


def _count(vias: list[str], offer: Offer, result: PaidResult, via: str) -> None:
    vias.append(via)


def _measure(wallet_url: str, shop_url: str, vias: list[str]) -> dict[str, float | int]:
    from playwright.sync_api import sync_playwright

    paid_ms: list[float] = []
    free_ms: list[float] = []
    fallback_ms: list[float] = []
    config = f"window.netpayConfig = {{walletUrl: {wallet_url!r}}};"
    buy_item, free_items = "harbour-bridge-reopens", ["night-market-returns", "observatory-finds-comet"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            direct = browser.new_context(viewport={"width": 1280, "height": 800})
            direct.add_init_script(config + TIMING_SCRIPT)
            # bypass_csp: Playwright's polling runs on the wallet's pages too (their CSP forbids eval); no timing effect
            blocked = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
            blocked.add_init_script(config + TIMING_SCRIPT + BLOCK_SCRIPT)
            page, fallback_page = direct.new_page(), blocked.new_page()
            for i in range(ROUNDS + WARMUP):
                target = free_items[i % 2]
                paid = _paid_click(page, shop_url, buy_item)
                free = _free_click(page, shop_url, free_items[1 - i % 2], target)
                fallback = _paid_click(fallback_page, shop_url, buy_item)
                if i >= WARMUP:
                    paid_ms.append(paid)
                    free_ms.append(free)
                    fallback_ms.append(fallback)
        finally:
            browser.close()
    rounds = ROUNDS + WARMUP
    if vias.count("allowance") != rounds or vias.count("uri") != rounds:
        raise RuntimeError(f"purchases did not take the path they were meant to: {vias}")
    paid, free, fallback = (statistics.median(x) for x in (paid_ms, free_ms, fallback_ms))
    return {
        "paid_click_ratio": round(paid / free, 3),
        "paid_click_ms": round(paid, 1),
        "free_click_ms": round(free, 1),
        "paid_click_fallback_ratio": round(fallback / free, 3),
        "paid_click_fallback_ms": round(fallback, 1),
    }


def _ready(page: Any, shop_url: str, item: str) -> None:
    """Open an item page as a reader finds it: nothing paid, the page script bound and its wallet check done."""
    page.context.clear_cookies()
    page.goto(f"{shop_url}/items/{item}")
    page.wait_for_selector(".np-buy[data-netpay-bound]")
    # the script's own hello at load and the quote it then asks for, once the page is shown, have answered
    page.wait_for_function("window.__npQuotes > 0 && window.__npInflight === 0")
    page.evaluate("sessionStorage.removeItem('npbench.click')")


def _paid_click(page: Any, shop_url: str, item: str) -> float:
    _ready(page, shop_url, item)
    page.click(".np-buy")
    page.wait_for_function(f"document.querySelector('article.paid') && ({_ELAPSED})() !== null", timeout=30_000)
    return float(page.evaluate(_ELAPSED))


def _free_click(page: Any, shop_url: str, item: str, target: str) -> float:
    _ready(page, shop_url, item)
    page.click(f".more a[href='/items/{target}']")
    page.wait_for_function(f"location.pathname === '/items/{target}' && ({_ELAPSED})() !== null", timeout=30_000)
    return float(page.evaluate(_ELAPSED))


if __name__ == "__main__":
    print(run())
