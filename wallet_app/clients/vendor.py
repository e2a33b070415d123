"""Client of a NetPay vendor's API (endpoints in ``docs/protocol.md`` §5)."""

from __future__ import annotations

from typing import Any

from wallet_app.clients.http import JsonClient

__all__ = ["VendorClient"]


class VendorClient(JsonClient):
    """One vendor, addressed by its ``api_url``. Payments are idempotent (same payment → same receipt)."""

    def info(self) -> dict[str, Any]:
        return dict(self.request("GET", "/v1/info"))

    def catalog(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/v1/catalog")["items"])

    def quote(self, item_id: str) -> dict[str, Any]:
        return dict(self.request("POST", "/v1/quotes", {"item_id": item_id}))

    def pay(self, payment_wire: dict[str, Any], payment_url: str | None = None) -> dict[str, Any]:
        """``POST`` the payment to the quote's ``payment_url`` (retried: the vendor answers idempotently)."""
        return dict(self.request("POST", payment_url or "/v1/payments", payment_wire, idempotent=True))

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
