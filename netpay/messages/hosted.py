"""The hosted e-wallet (Mobile-NetPay): a vendor redeems an authorization code for a grant, a slice of a chain the
broker keeps for the customer.

A grant of ``to_index - from_index`` coins hands the vendor W_to_index (``top_payword``): from it the vendor computes
W_i for every i from ``from_index`` to ``to_index`` and no payword above, so it can spend exactly its slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from netpay.chain import CHAIN_ID_BYTES, MAX_CHAIN_LENGTH, PAYWORD_BYTES
from netpay.encoding import FieldReader
from netpay.errors import MalformedMessage
from netpay.messages.fields import ID_LEN, check_url, read_time
from netpay.signed import Body

__all__ = ["GrantRequest", "HostedGrant"]

#: An authorization code and a PKCE verifier are 43 to 128 characters of ``[A-Za-z0-9-._~]`` (RFC 7636).
CODE_MIN, CODE_MAX = 43, 128
_PKCE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def check_pkce_text(value: Any, where: str) -> str:
    """A code or code verifier: 43-128 unreserved characters."""
    if not isinstance(value, str) or not CODE_MIN <= len(value) <= CODE_MAX or not set(value) <= _PKCE_CHARS:
        raise MalformedMessage(f"{where} must be {CODE_MIN} to {CODE_MAX} characters of [A-Za-z0-9-._~]", field=where)
    return value


@dataclass(frozen=True, slots=True)
class GrantRequest(Body):
    """A vendor redeems an authorization code (signed by the vendor): the code, its PKCE verifier, the redirect URI
    the code was sent to."""

    TYPE = "grant_request"
    vendor_id: str
    code: str
    code_verifier: str
    redirect_uri: str
    nonce: str
    requested_at: int

    def to_body(self) -> dict[str, Any]:
        return {
            "vendor_id": self.vendor_id,
            "code": self.code,
            "code_verifier": self.code_verifier,
            "redirect_uri": self.redirect_uri,
            "nonce": self.nonce,
            "requested_at": self.requested_at,
        }

    @classmethod
    def from_body(cls, data: Any, where: str) -> Self:
        r = FieldReader(data, where)
        obj = cls(
            vendor_id=r.text("vendor_id", ID_LEN),
            code=check_pkce_text(r.raw("code"), f"{where}.code"),
            code_verifier=check_pkce_text(r.raw("code_verifier"), f"{where}.code_verifier"),
            redirect_uri=check_url(r.raw("redirect_uri"), f"{where}.redirect_uri"),
            nonce=r.text("nonce", ID_LEN),
            requested_at=read_time(r, "requested_at"),
        )
        r.done()
        return obj


@dataclass(frozen=True, slots=True)
class HostedGrant(Body):
    """The broker hands a vendor a slice of a hosted chain (signed by the broker): coins ``from_index + 1`` to
    ``to_index`` of ``chain_id``, W_to_index, until ``expires_at``."""

    TYPE = "hosted_grant"
    grant_id: str
    broker_id: str
    vendor_id: str
    chain_id: bytes
    from_index: int
    to_index: int
    top_payword: bytes
    issued_at: int
    expires_at: int

    def to_body(self) -> dict[str, Any]:
        return {
            "grant_id": self.grant_id,
            "broker_id": self.broker_id,
            "vendor_id": self.vendor_id,
            "chain_id": self.chain_id.hex(),
            "from_index": self.from_index,
            "to_index": self.to_index,
            "top_payword": self.top_payword.hex(),
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_body(cls, data: Any, where: str) -> Self:
        r = FieldReader(data, where)
        obj = cls(
            grant_id=r.text("grant_id", ID_LEN),
            broker_id=r.text("broker_id", ID_LEN),
            vendor_id=r.text("vendor_id", ID_LEN),
            chain_id=r.hex("chain_id", CHAIN_ID_BYTES),
            from_index=r.integer("from_index", 0, MAX_CHAIN_LENGTH),
            to_index=r.integer("to_index", 1, MAX_CHAIN_LENGTH),
            top_payword=r.hex("top_payword", PAYWORD_BYTES),
            issued_at=read_time(r, "issued_at"),
            expires_at=read_time(r, "expires_at"),
        )
        r.done()
        if obj.to_index <= obj.from_index:
            raise MalformedMessage(f"{where}.to_index must be above from_index", field=f"{where}.to_index")
        return obj
