"""Client of a NetPay vendor's API (endpoints in ``docs/protocol.md`` §5)."""

from __future__ import annotations

from typing import Any

from wallet_app.clients.http import JsonClient, PreparedCall

__all__ = ["VendorClient"]


class VendorClient(JsonClient):
    """One vendor, addressed by its ``api_url``. Payments are idempotent (same payment → same receipt)."""

    _ready: tuple[dict[str, Any], str | None, PreparedCall] | None = None

    def info(self) -> dict[str, Any]:
        return dict(self.request("GET", "/v1/info"))

    def catalog(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/v1/catalog")["items"])

    def quote(self, item_id: str) -> dict[str, Any]:
        return dict(self.request("POST", "/v1/quotes", {"item_id": item_id}))

    def pay(self, payment_wire: dict[str, Any], payment_url: str | None = None) -> dict[str, Any]:
        """``POST`` the payment to the quote's ``payment_url`` (retried: the vendor answers idempotently). Sends the
        request :meth:`prepare_pay` built for this very payment object, if it did."""
        ready, self._ready = self._ready, None
        if ready is not None and ready[0] is payment_wire and ready[1] == payment_url:
            return dict(self.send_call(ready[2]))
        return dict(self.request("POST", payment_url or "/v1/payments", payment_wire, idempotent=True))

    def prepare_pay(self, payment_wire: dict[str, Any], payment_url: str | None = None) -> None:
        """Build the request :meth:`pay` will send for ``payment_wire`` (the same object, never changed since:
        an :class:`~wallet_app.clients.http.EncodedJson`) without sending it (done while the journal's fsync runs)."""
        call = self.prepare_call("POST", payment_url or "/v1/payments", payment_wire, idempotent=True)
        self._ready = (payment_wire, payment_url, call)

    def payment(self, payment_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/v1/payments/{payment_id}"))

    def access_code(self, token: str) -> str:
        """A one-time code that opens the token's item page once (``/items/{id}?code=``): the token stays out of
        the URL."""
        return str(self.request("POST", "/v1/access/codes", {"token": token}, idempotent=True)["code"])

    def metered_quote(self, session_id: str, token: str) -> dict[str, Any]:
        """The signed quote for a metered session's next unit (the session's token in ``Authorization``)."""
        return dict(self.request("POST", f"/v1/metered/{session_id}/quote",
                                 headers={"Authorization": f"NetPay {token}"}, idempotent=True))  # fmt: skip

    def metered_end(self, session_id: str, token: str) -> dict[str, Any]:
        """End a metered session at the shop (idempotent)."""
        return dict(self.request("POST", f"/v1/metered/{session_id}/end",
                                 headers={"Authorization": f"NetPay {token}"}, idempotent=True))  # fmt: skip

    def echo(self, body: Any) -> Any:
        return self.request("POST", "/v1/echo", body)
