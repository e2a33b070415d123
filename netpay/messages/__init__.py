"""Every object of the NetPay protocol, with strict parsing.

Signed objects (wrapped in :class:`netpay.signed.Signed`): coin certificate, vendor certificate, quote, receipt,
custody claim, custody grant, release request, custody release, spend report, redemption batch, redemption result,
close request, revocation list and refund decision. The payment itself is not signed: the paywords are its proof.
Field names and limits here are the wire format; ``docs/protocol.md`` documents them.

Modules: ``certificates``, ``purchase``, ``custody``, ``settlement``, and ``fields`` (limits and field rules
they share). Everything is re-exported here: import from ``netpay.messages``.
"""

from netpay.messages.certificates import CoinCertificate, RevocationList, VendorCertificate
from netpay.messages.custody import CloseRequest, CustodyClaim, CustodyGrant, CustodyRelease, ReleaseRequest
from netpay.messages.fields import MAX_BATCH, MAX_SEGMENTS
from netpay.messages.hosted import GrantRequest, HostedGrant
from netpay.messages.purchase import BusinessModel, Payment, PaymentRefusal, Quote, Receipt, Segment, SegmentRef
from netpay.messages.refunds import MAX_REASON, RefundDecision
from netpay.messages.settlement import (
    ClaimResult,
    RedemptionBatch,
    RedemptionClaim,
    RedemptionResult,
    SpendEntry,
    SpendReport,
    VendorRequest,
)

__all__ = [
    "MAX_BATCH",
    "MAX_REASON",
    "MAX_SEGMENTS",
    "BusinessModel",
    "ClaimResult",
    "CloseRequest",
    "CoinCertificate",
    "CustodyClaim",
    "CustodyGrant",
    "CustodyRelease",
    "GrantRequest",
    "HostedGrant",
    "Payment",
    "PaymentRefusal",
    "Quote",
    "Receipt",
    "RedemptionBatch",
    "RedemptionClaim",
    "RedemptionResult",
    "RefundDecision",
    "ReleaseRequest",
    "RevocationList",
    "Segment",
    "SegmentRef",
    "SpendEntry",
    "SpendReport",
    "VendorCertificate",
    "VendorRequest",
]
