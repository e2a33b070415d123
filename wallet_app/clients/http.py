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
from wallet_app.clients.policy import ca_file_from_env, require_secure_url

__all__ = ["DEFAULT_TIMEOUT", "EncodedJson", "JsonClient", "set_ca_file", "shared_session"]

DEFAULT_TIMEOUT = (3.0, 15.0)  # connect, read (seconds)
_RETRY_STATUSES = {502, 503, 504}
_session: requests.Session | None = None
_session_lock = threading.Lock()


class _WalletSession(requests.Session):
    """A session whose named CA file wins over ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` (requests lets those
    environment variables replace a session's ``verify`` path; the wallet's own setting must not be overridden)."""

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if isinstance(self.verify, str) and verify in (None, True):
            settings["verify"] = self.verify
        return settings


def shared_session() -> requests.Session:
    """The process-wide pooled session (keep-alive connections to every broker and vendor). It verifies TLS
    certificates against the CA file in ``NETPAY_WALLET_CA_FILE`` when set (see :func:`set_ca_file`)."""
    global _session
    with _session_lock:
        if _session is None:
            s = _WalletSession()
            s.verify = ca_file_from_env() or True
            adapter = HTTPAdapter(pool_connections=8, pool_maxsize=16, max_retries=0)
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            s.headers["User-Agent"] = "NetPay-Wallet/0.1"
            _session = s
        return _session


def set_ca_file(path: str | None) -> None:
    """Verify servers against this PEM CA file from now on (None: the default bundle). Never turns checks off."""
    session = shared_session()
    session.verify = path or True
    session.close()  # pooled connections were verified under the old trust: open new ones


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
        self.base_url = require_secure_url(base_url, "server").rstrip("/")
        self.session = session or shared_session()
        self.timeout = timeout
        self.retries = retries

    def url(self, path: str) -> str:
        """``base_url + path``, or ``path`` itself when absolute (a quote's payment URL: checked like the base)."""
        if path.startswith(("http://", "https://")):
            return require_secure_url(path, "payment")
        return self.base_url + path

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
            except requests.exceptions.SSLError as exc:
                reason = str(exc.__context__ or exc).split("(Caused by")[-1].strip(" ()'\"")[:200]
                raise PeerUnavailable(
                    f"the TLS certificate of {url} could not be verified ({reason}); for a private CA name its file "
                    "with --ca-file or NETPAY_WALLET_CA_FILE",
                    url=url,
                    reason="tls",
                ) from None
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
