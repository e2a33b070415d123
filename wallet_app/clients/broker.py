"""Client of a NetPay broker (endpoints in ``docs/protocol.md`` §4)."""

from __future__ import annotations

from typing import Any

from wallet_app.clients.http import JsonClient

__all__ = ["BrokerClient"]


class BrokerClient(JsonClient):
    """One broker. Methods return the decoded JSON answers; refusals raise :mod:`netpay.errors` exceptions."""

    @staticmethod
    def _auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def info(self) -> dict[str, Any]:
        return dict(self.request("GET", "/v1/info"))

    def create_account(self, username: str, password: str) -> dict[str, Any]:
        return dict(self.request("POST", "/v1/accounts", {"username": username, "password": password}))

    def login(self, username: str, password: str) -> dict[str, Any]:
        return dict(self.request("POST", "/v1/sessions", {"username": username, "password": password}))

    def account(self, token: str) -> dict[str, Any]:
        return dict(self.request("GET", "/v1/account", headers=self._auth(token)))

    def statement(self, token: str) -> dict[str, Any]:
        return dict(self.request("GET", "/v1/account/statement", headers=self._auth(token)))

    def cashout(self, token: str, idempotency_key: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/account/cashouts``; safe to retry with the same key and body (paid out once)."""
        headers = {**self._auth(token), "Idempotency-Key": idempotency_key}
        return dict(self.request("POST", "/v1/account/cashouts", body, headers=headers, idempotent=True))

    def topup(self, token: str, idempotency_key: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {**self._auth(token), "Idempotency-Key": idempotency_key}
        return dict(self.request("POST", "/v1/account/topups", body, headers=headers, idempotent=True))

    def create_chain(self, token: str, idempotency_key: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/chains``; safe to retry: the same key and body return the same certificate, charged once."""
        headers = {**self._auth(token), "Idempotency-Key": idempotency_key}
        return dict(self.request("POST", "/v1/chains", body, headers=headers, idempotent=True))

    def account_chains(self, token: str) -> list[dict[str, Any]]:
        return list(self.request("GET", "/v1/account/chains", headers=self._auth(token))["chains"])

    def close_chain(self, token: str, chain_id: str) -> dict[str, Any]:
        return dict(self.request("POST", f"/v1/chains/{chain_id}/close", {}, headers=self._auth(token)))

    def hosted(self, token: str) -> dict[str, Any]:
        """``GET /v1/account/hosted``: the hosted e-wallet (balance, grants, chains)."""
        return dict(self.request("GET", "/v1/account/hosted", headers=self._auth(token)))

    def buy_hosted(self, token: str, idempotency_key: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/account/hosted/chains``; safe to retry with the same key and body (bought once)."""
        headers = {**self._auth(token), "Idempotency-Key": idempotency_key}
        return dict(self.request("POST", "/v1/account/hosted/chains", body, headers=headers, idempotent=True))

    def return_hosted(self, token: str, chain_id: str) -> dict[str, Any]:
        return dict(self.request("POST", f"/v1/account/hosted/chains/{chain_id}/return", {}, headers=self._auth(token)))

    def revocations(self) -> Any:
        return self.request("GET", "/v1/revocations")

    def vendor_certificate(self, vendor_id: str) -> Any:
        return self.request("GET", f"/v1/vendors/{vendor_id}/certificate")
