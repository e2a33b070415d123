"""One error hierarchy for the whole system.

Every error has a stable ``code`` (part of the wire protocol, never renamed), an HTTP status the servers answer with,
and a clear message. Servers turn an error into ``{"error": {"code", "message", "details"}}``; clients turn that body
back into the same exception class with :func:`error_from_body`.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuthenticationRequired",
    "BadSignature",
    "CardDeclined",
    "CertificateExpired",
    "Conflict",
    "CurrencyMismatch",
    "CustodyConflict",
    "Forbidden",
    "IdempotencyConflict",
    "IndexConflict",
    "InsufficientCoins",
    "InsufficientFunds",
    "InvalidCredentials",
    "InvalidPayword",
    "MalformedMessage",
    "MeteredSessionEnded",
    "MeteredUnitOutOfOrder",
    "NetPayError",
    "NotFound",
    "PayloadTooLarge",
    "PeerUnavailable",
    "QuoteAlreadyPaid",
    "QuoteExpired",
    "RateLimited",
    "ReplayedRequest",
    "Revoked",
    "SessionExpired",
    "StaleRequest",
    "UnsupportedMediaType",
    "UntrustedSigner",
    "WalletLocked",
    "WrongAmount",
    "WrongMessageType",
    "error_from_body",
]


class NetPayError(Exception):
    """Base of every NetPay error. Subclasses fix ``code`` and ``http_status``."""

    code: ClassVar[str] = "internal_error"
    http_status: ClassVar[int] = 500
    default_message: ClassVar[str] = "internal error"
    _registry: ClassVar[dict[str, type[NetPayError]]] = {}

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or self.default_message
        self.details: dict[str, Any] = details
        super().__init__(self.message)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__:
            if cls.code in NetPayError._registry:
                raise TypeError(f"duplicate error code {cls.code!r}")
            NetPayError._registry[cls.code] = cls

    def to_body(self) -> dict[str, Any]:
        """The JSON body a server answers with."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


NetPayError._registry[NetPayError.code] = NetPayError


def error_from_body(body: Any, status: int) -> NetPayError:
    """Rebuild the exception a server answered with; unknown shapes become a generic error with the status."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        code = err.get("code")
        message = err.get("message") if isinstance(err.get("message"), str) else None
        details = err.get("details") if isinstance(err.get("details"), dict) else {}
        cls = NetPayError._registry.get(code) if isinstance(code, str) else None
        if cls is not None:
            exc = cls(message)
            exc.details = dict(details)
            return exc
    if status == 404:
        return NotFound(f"not found (HTTP {status})")
    if status == 413:
        return PayloadTooLarge()
    if status == 429:
        return RateLimited()
    if 400 <= status < 500:
        return MalformedMessage(f"request refused (HTTP {status})")
    return PeerUnavailable(f"server error (HTTP {status})")


class MalformedMessage(NetPayError):
    """A field is missing, has the wrong type, or is out of range."""

    code = "malformed"
    http_status = 400
    default_message = "malformed message"


class WrongMessageType(NetPayError):
    """A signed object of one type was offered where another was expected, or its version is unknown."""

    code = "wrong_type"
    http_status = 400
    default_message = "wrong message type or version"


class BadSignature(NetPayError):
    """A signature does not verify over the canonical encoding."""

    code = "bad_signature"
    http_status = 400
    default_message = "signature does not verify"


class UntrustedSigner(NetPayError):
    """The object is signed by a key this party does not trust (unknown broker, uncertified vendor key)."""

    code = "untrusted_signer"
    http_status = 403
    default_message = "signed by an untrusted key"


class CertificateExpired(NetPayError):
    """A certificate or quote is outside its validity period."""

    code = "expired"
    http_status = 400
    default_message = "certificate expired"


class Revoked(NetPayError):
    """The chain or vendor is on the broker's revocation list."""

    code = "revoked"
    http_status = 403
    default_message = "revoked"


class CurrencyMismatch(NetPayError):
    """Two amounts in different currencies were combined or compared."""

    code = "currency_mismatch"
    http_status = 400
    default_message = "currency mismatch"


class WrongAmount(NetPayError):
    """The segments of a payment do not add up to the price."""

    code = "wrong_amount"
    http_status = 400
    default_message = "payment does not match the price"


class InvalidPayword(NetPayError):
    """A payword does not hash back to the last known payword of its chain."""

    code = "invalid_payword"
    http_status = 400
    default_message = "payword does not verify"


class IndexConflict(NetPayError):
    """A segment does not start where the receiver's view of the chain index is (replay or lower index)."""

    code = "index_conflict"
    http_status = 409
    default_message = "segment does not start at the current index"


class CustodyConflict(NetPayError):
    """The chain is held by another vendor, or custody could not be taken."""

    code = "custody_conflict"
    http_status = 409
    default_message = "chain is held by another vendor"


class QuoteExpired(NetPayError):
    """The quote's expiry has passed."""

    code = "quote_expired"
    http_status = 410
    default_message = "quote expired"


class QuoteAlreadyPaid(NetPayError):
    """A different payment was offered for a quote that is already paid."""

    code = "quote_paid"
    http_status = 409
    default_message = "quote already paid"


class Conflict(NetPayError):
    """The request conflicts with the current state (duplicate id, already closed, ...)."""

    code = "conflict"
    http_status = 409
    default_message = "conflict with current state"


class IdempotencyConflict(NetPayError):
    """An idempotency key was reused with a different request."""

    code = "idempotency_conflict"
    http_status = 409
    default_message = "idempotency key reused with a different request"


class ReplayedRequest(NetPayError):
    """A signed request reuses a nonce (or id) the receiver has already seen."""

    code = "replayed"
    http_status = 409
    default_message = "this signed request was already used"


class StaleRequest(NetPayError):
    """A signed request's timestamp is too far from the receiver's clock."""

    code = "stale"
    http_status = 400
    default_message = "request timestamp too far from the receiver's clock"


class NotFound(NetPayError):
    """The named object does not exist."""

    code = "not_found"
    http_status = 404
    default_message = "not found"


class AuthenticationRequired(NetPayError):
    """No or an unknown session token."""

    code = "auth_required"
    http_status = 401
    default_message = "authentication required"


class SessionExpired(NetPayError):
    """The session token has expired; log in again."""

    code = "session_expired"
    http_status = 401
    default_message = "session expired"


class InvalidCredentials(NetPayError):
    """Wrong user name or password."""

    code = "invalid_credentials"
    http_status = 401
    default_message = "wrong user name or password"


class Forbidden(NetPayError):
    """Authenticated, but not allowed to do this."""

    code = "forbidden"
    http_status = 403
    default_message = "forbidden"


class CardDeclined(NetPayError):
    """The (test) card processor declined the charge."""

    code = "card_declined"
    http_status = 402
    default_message = "card declined"


class InsufficientFunds(NetPayError):
    """The card or account does not hold enough money."""

    code = "insufficient_funds"
    http_status = 402
    default_message = "insufficient funds"


class PaymentRequired(NetPayError):
    """The resource is paid: the answer carries a challenge (a quote) to pay and retry with the access token."""

    code = "payment_required"
    http_status = 402


class InsufficientCoins(NetPayError):
    """The wallet does not hold enough unspent coins for the price."""

    code = "insufficient_coins"
    http_status = 402
    default_message = "not enough coins"


class PayloadTooLarge(NetPayError):
    """The request body is over the size limit."""

    code = "payload_too_large"
    http_status = 413
    default_message = "request body too large"


class UnsupportedMediaType(NetPayError):
    """The request body is not application/json."""

    code = "unsupported_media_type"
    http_status = 415
    default_message = "only application/json is accepted"


class RateLimited(NetPayError):
    """Too many requests; try again later."""

    code = "rate_limited"
    http_status = 429
    default_message = "too many requests"


class WalletLocked(NetPayError):
    """The wallet is locked; the user must unlock it first."""

    code = "locked"
    http_status = 423
    default_message = "wallet is locked"


class PeerUnavailable(NetPayError):
    """Another party (broker, vendor) could not be reached or failed."""

    code = "unavailable"
    http_status = 503
    default_message = "peer unavailable"


class MeteredSessionEnded(NetPayError):
    """The metered session is over (ended by the customer or the page, or its cap is reached): no unit is sold."""

    code = "session_ended"
    http_status = 409
    default_message = "this metered session has ended"


class MeteredUnitOutOfOrder(NetPayError):
    """A metered unit was asked for or paid out of turn: units are paid one after the other, each once."""

    code = "unit_out_of_order"
    http_status = 409
    default_message = "this unit is not the session's next one"
