"""After a restart the vendor still answers a re-sent payment with the same receipt (from its in-memory index of
recent payments, or from the database for old quotes) and continues each chain where it stopped."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from netpay.messages import Quote
from netpay.signed import Signed
from tests.support.broker import RunningBroker
from tests.support.vendor import RunningVendor, buy_known_chain, payment_of


def test_resend_after_restart_and_after_the_quote_expired(
    broker: RunningBroker, vendor_factory: Callable[..., RunningVendor], tmp_path: Path
) -> None:
    data = tmp_path / "planet"
    first = vendor_factory(data_dir=data)
    c = buy_known_chain(broker)
    paid = payment_of(first.quote("night-market-returns"), c.segment(0, 3))
    receipt = first.pay(paid).json()
    assert "receipt" in receipt
    other_quote = first.quote("harbour-bridge-reopens")
    first.stop()

    again = vendor_factory(data_dir=data, register=False)
    resent = again.pay(paid)
    assert resent.status_code == 200 and resent.json() == receipt
    # the chain goes on at index 3, the index recorded before the restart
    assert again.pay(payment_of(other_quote, c.segment(0, 5))).json()["error"]["code"] == "index_conflict"
    assert again.pay(payment_of(other_quote, c.segment(3, 8))).status_code == 200

    again.vendor.clock_offset = 2 * 3600  # the quote is long expired and out of the in-memory window
    assert again.pay(payment_of(again.quote("night-market-returns"), c.segment(8, 11))).status_code == 200
    assert not again.vendor.desk._recent.covers(Signed.from_wire(paid["quote"], Quote).body.issued_at)
    resent = again.pay(paid)
    assert resent.status_code == 200 and resent.json() == receipt
    twin = dict(paid, payment_id="another-payment")
    assert again.pay(twin).json()["error"]["code"] == "quote_paid"
