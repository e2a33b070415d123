"""A small JSON-over-HTTP client: one pooled ``requests.Session``, timeouts, retries only for idempotent requests,
and error bodies turned back into :mod:`netpay.errors` exceptions with :func:`netpay.errors.error_from_body`."""

from __future__ import annotations

import threading
import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from netpay.encoding import canonical_json, parse_json
from netpay.errors import MalformedMessage, NetPayError, PeerUnavailable, error_from_body

__all__ = ["DEFAULT_TIMEOUT", "EncodedJson", "JsonClient", "shared_session"]

DEFAULT_TIMEOUT = (3.0, 15.0)  # connect, read (seconds)
_RETRY_STATUSES = {502, 503, 504}
_session: requests.Session | None = None
_session_lock = threading.Lock()


def shared_session() -> requests.Session:
    """The process-wide pooled session (keep-alive connections to every broker and vendor)."""
    global _session
    with _session_lock:
        if _session is None:
            s = requests.Session()
            adapter = HTTPAdapter(pool_connections=8, pool_maxsize=16, max_retries=0)
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            s.headers["User-Agent"] = "NetPay-Wallet/0.1"
            _session = s
        return _session


class EncodedJson(dict[str, Any]):
    """A JSON object together with its canonical encoding, made once: :meth:`JsonClient.request` sends
    ``encoded`` as it is instead of encoding the object again (a payment is journalled and sent as the same bytes).
    Build it with :meth:`of`; never mutate it (the bytes would no longer match)."""

    encoded: bytes

    @classmethod
    def of(cls, obj: dict[str, Any], encoded: bytes | None = None) -> EncodedJson:
        out = cls(obj)
        out.encoded = canonical_json(obj) if encoded is None else encoded
        return out


class JsonClient:
    """Base of the broker and vendor clients. ``retries`` applies only to requests marked idempotent."""

    def __init__(
        self,
        base_url: str,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retries: int = 2,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session or shared_session()
        self.timeout = timeout
        self.retries = retries

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """Send one request and return the decoded JSON answer, or raise the error the server answered with.

        Connection failures, timeouts and 502/503/504 raise :class:`PeerUnavailable` after ``retries`` more tries
        when the request is idempotent (GET by default; a POST only when the caller says so).
        """
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "PUT", "DELETE")
        hdrs = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = body.encoded if isinstance(body, EncodedJson) else canonical_json(body)
            hdrs["Content-Type"] = "application/json"
        if headers:
            hdrs.update(headers)
        attempts = 1 + (self.retries if idempotent else 0)
        url = self.url(path)
        last: NetPayError | None = None
        for attempt in range(attempts):
            if attempt:
                time.sleep(min(0.05 * 2**attempt, 1.0))
            try:
                resp = self.session.request(method, url, data=data, headers=hdrs, timeout=self.timeout)
            except requests.RequestException as exc:
                last = PeerUnavailable(f"{url} could not be reached: {type(exc).__name__}", url=url)
                continue
            if resp.status_code in _RETRY_STATUSES and attempt + 1 < attempts:
                last = PeerUnavailable(f"{url} answered {resp.status_code}")
                continue
            return self._decode(resp)
        assert last is not None
        raise last

    @staticmethod
    def _decode(resp: requests.Response) -> Any:
        try:
            payload = parse_json(resp.content) if resp.content else None
        except MalformedMessage:
            payload = None
            if resp.ok:
                raise MalformedMessage(f"{resp.url} answered with a body that is not strict JSON") from None
        if resp.ok:
            return payload
        raise error_from_body(payload, resp.status_code)
