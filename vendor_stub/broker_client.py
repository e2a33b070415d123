"""HTTP client for the broker endpoints a vendor uses, and for asking another vendor to release a chain.

Every failure to reach a peer becomes :class:`PeerUnavailable`; an error body from the peer becomes the matching
:class:`NetPayError` (via :func:`netpay.errors.error_from_body`).
"""

from __future__ import annotations

import threading
from typing import Any

import requests

from netpay.errors import NetPayError, PeerUnavailable, error_from_body
from netpay.messages import (
    CustodyClaim,
    CustodyRelease,
    RedemptionBatch,
    RedemptionResult,
    ReleaseRequest,
    RevocationList,
    SpendReport,
    VendorCertificate,
)
from netpay.signed import Signed

__all__ = ["BrokerClient", "request_release"]


def _call(session: requests.Session, method: str, url: str, timeout: float, body: Any = None) -> Any:
    try:
        resp = session.request(method, url, json=body, timeout=timeout)
    except requests.RequestException as exc:
        raise PeerUnavailable(f"{url} could not be reached: {type(exc).__name__}") from None
    try:
        data = resp.json()
    except ValueError:
        data = None
    if resp.status_code >= 400:
        raise error_from_body(data, resp.status_code)
    if data is None:
        raise PeerUnavailable(f"{url} answered without JSON")
    return data


class BrokerClient:
    """Talks to one broker. Thread-safe: one requests.Session per thread."""

    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._local = threading.local()

    def _session(self) -> requests.Session:
        s: requests.Session | None = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            self._local.session = s
        return s

    def get(self, path: str) -> Any:
        return _call(self._session(), "GET", self.base_url + path, self.timeout)

    def post(self, path: str, body: Any) -> Any:
        return _call(self._session(), "POST", self.base_url + path, self.timeout, body)

    def info(self) -> dict[str, Any]:
        data = self.get("/v1/info")
        if not isinstance(data, dict):
            raise PeerUnavailable("broker info is not an object")
        return data

    def vendor_certificate(self, vendor_id: str) -> Signed[VendorCertificate]:
        return Signed.from_wire(self.get(f"/v1/vendors/{vendor_id}/certificate"), VendorCertificate, "certificate")

    def claim_custody(self, claim: Signed[CustodyClaim]) -> dict[str, Any]:
        data = self.post("/v1/custody/claims", claim.to_wire())
        if not isinstance(data, dict):
            raise PeerUnavailable("custody answer is not an object")
        return data

    def submit_release(self, release: Signed[CustodyRelease]) -> Any:
        """Tell the broker about a release (it bounds the custody windows of the hand-off)."""
        return self.post("/v1/custody/releases", release.to_wire())

    def report_spends(self, report: Signed[SpendReport]) -> Any:
        return self.post("/v1/spend-reports", report.to_wire())

    def redeem(self, batch: Signed[RedemptionBatch]) -> Signed[RedemptionResult]:
        return Signed.from_wire(self.post("/v1/redemptions", batch.to_wire()), RedemptionResult, "result")

    def revocations(self) -> Signed[RevocationList]:
        return Signed.from_wire(self.get("/v1/revocations"), RevocationList, "revocations")


def request_release(api_url: str, request: Signed[ReleaseRequest], timeout: float) -> Signed[CustodyRelease]:
    """Ask the previous custodian at ``api_url`` to release a chain. Raises NetPayError (PeerUnavailable if down)."""
    with requests.Session() as s:
        data = _call(s, "POST", api_url.rstrip("/") + "/v1/custody/release", timeout, request.to_wire())
    try:
        return Signed.from_wire(data, CustodyRelease, "release")
    except NetPayError:
        raise PeerUnavailable("the previous custodian answered with something that is not a release") from None
