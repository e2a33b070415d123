"""Take the shop screenshots for the docs with headless Chromium: item page (teaser), paid page, earnings.

Usage: ``.venv/bin/python -m tests.vendor_stub.screenshots [OUT_DIR]`` (default ``docs/screenshots``). A real broker
and vendor run on loopback; the purchases are real. For the earnings chart, earlier purchases are moved back by a
few days in the vendor's database so the chart shows a week (the broker has no notion of past days to buy on).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.support.broker import start_broker
from tests.support.vendor import buy_chain, pay, start_vendor
from vendor_stub.publisher import load_or_create_publisher_token

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip
ARTICLES = ["harbour-bridge-reopens", "night-market-returns", "observatory-finds-comet", "council-budget-explained",
            "metropolis-fc-cup-run"]  # fmt: skip


def take(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="shop-shots-") as tmp:
        root = Path(tmp)
        broker = start_broker(root / "broker")
        vendor = start_vendor(broker, root / "vendor", background=False)
        try:
            cert, traversal = buy_chain(broker, n=2000, coin_value=1)
            token = pay(vendor, "harbour-bridge-reopens", cert, traversal).json()["receipt"]["body"]["access_token"]
            # a week of sales for the earnings chart: real payments, then dated back day by day
            for day in range(1, 8):
                for k in range((day * 7) % 5 + 2):
                    assert pay(vendor, ARTICLES[(day + k) % len(ARTICLES)], cert, traversal).status_code == 200
                vendor.vendor.store.write(
                    lambda c, d=day: c.execute(
                        "UPDATE spends SET created_at = created_at - ? WHERE created_at > ? - 3600",
                        (d * 86400, vendor.vendor.now()),
                    )
                )
            vendor.vendor.redeemer.redeem()
            for k in range(3):  # today's sales, not yet redeemed
                pay(vendor, ARTICLES[k], cert, traversal)
            # two refund requests: one for an opened article (the publisher decides), one never opened (granted)
            for item, opened, reason in ((ARTICLES[3], True, "The article ends mid-sentence"),
                                         (ARTICLES[4], False, "Bought it twice by mistake")):  # fmt: skip
                receipt = pay(vendor, item, cert, traversal).json()["receipt"]
                if opened:
                    vendor.vendor.refunds.mark_opened(receipt["body"]["receipt_id"])
                vendor.session.post(f"{vendor.url}/v1/refunds", json={"receipt": receipt, "reason": reason}, timeout=30)
            shots = []
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(f"{vendor.url}/earnings")  # the publisher logs in (the earnings page is theirs only)
                page.fill("#token", load_or_create_publisher_token(vendor.settings.data_dir))
                page.click(".login-form button")
                page.wait_for_selector(".earnings")
                for name, url in (
                    ("shop-item.png", f"{vendor.url}/items/night-market-returns"),
                    ("shop-paid.png", f"{vendor.url}/items/harbour-bridge-reopens?access={token}"),
                    ("shop-earnings.png", f"{vendor.url}/earnings?days=10"),
                    ("shop-refunds.png", f"{vendor.url}/earnings?days=10#refunds"),
                ):
                    page.goto(url)
                    page.wait_for_timeout(2500)  # let netpay.js look for a wallet (none here: it shows the hint)
                    if name == "shop-refunds.png":
                        page.locator("#refunds").scroll_into_view_if_needed()
                    path = out_dir / name
                    page.screenshot(path=str(path))
                    shots.append(path)
                browser.close()
            return shots
        finally:
            vendor.stop()
            broker.stop()


if __name__ == "__main__":
    for shot in take(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/screenshots")):
        print(shot, shot.stat().st_size)
