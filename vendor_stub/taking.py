"""Taking a payment: the one code path behind ``POST /v1/payments`` and a payment sent inside a paid API request.

A payment on a chain the shop already holds (and whose lock is free) is checked in the event loop and committed
inline or in the group-commit writer; anything that would wait (custody claim, a chain lock, a twin in flight) runs in
a worker thread. Every refusal that recorded nothing carries ``details.refusal`` (a signed ``PaymentRefusal``).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.concurrency import run_in_threadpool

from netpay.errors import NetPayError
from netpay.messages import Payment
from vendor_stub.batching import PaymentBatcher
from vendor_stub.payments import Binding
from vendor_stub.service import Vendor

__all__ = ["PaymentTaker"]


class PaymentTaker:
    """Takes payments for one vendor (one group-commit batcher shared by every route that takes them)."""

    def __init__(self, vendor: Vendor) -> None:
        self.desk = vendor.desk
        self.batcher = PaymentBatcher(vendor.desk, vendor.store.writer)

    def read(self, body: bytes) -> tuple[Any, Payment | None]:
        """Decode a payment body strictly; a refusal (with ``details.refusal``) when it cannot be read."""
        try:
            return self.desk.read(body)
        except NetPayError as exc:
            raise self.unread(exc) from None

    def unread(self, exc: NetPayError) -> NetPayError:
        """``exc`` with a signed refusal for a payment that could not even be read."""
        exc.details["refusal"] = self.desk.refusal_for(None, exc.code).to_wire()
        return exc

    async def take(self, data: Any, parsed: Payment | None) -> bytes:
        """Check and record the payment ``data`` (``parsed``: already built from it, or None); return the answer's
        JSON text ``{"receipt": Signed[Receipt]}`` (the same bytes for the same payment sent again)."""
        return (await self.take_bound(data, parsed, None))[0]

    async def take_bound(self, data: Any, parsed: Payment | None, bind: Binding | None) -> tuple[bytes, bool]:
        """:meth:`take`, and ``bind``: spend the receipt's token on a paid API resource in the payment's own
        transaction (see :class:`Binding`). Also says whether the payment was recorded by this very call (then
        with ``bind``, when the quote is for its item, the binding is certainly this one)."""
        desk = self.desk
        prepared = desk.pay_fast(data, parsed, bind)
        if prepared is None:
            answer = await run_in_threadpool(desk.pay, data, bind)
        elif isinstance(prepared, dict):
            answer = prepared
        else:
            # No shield needed: if this request is cancelled the commit still completes in the writer thread,
            # which also updates the chains and releases their locks.
            error = await self.batcher.commit(prepared)
            if isinstance(error, NetPayError) and (
                done := await run_in_threadpool(desk.recorded_elsewhere, prepared.payment, prepared.entry.digest)
            ):
                return _encode(done), False
            if isinstance(error, NetPayError):
                raise desk.refusal_error(error, prepared.payment.to_wire())
            if error is not None:
                raise error
            # the receipt's JSON text was made once for the database; send the same bytes
            return b'{"receipt":' + prepared.entry.receipt.encode() + b"}", True
        return _encode(answer), False


def _encode(answer: Any) -> bytes:
    """As a ``JSONResponse`` renders it."""
    return json.dumps(answer, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
