"""Signature checks without checking the same signature twice.

A purchase passes the same vendor certificate and quote through several checks (the callback parses the page's
offer, the engine checks the quote, then checks it again when paying), and every payment to a vendor carries the
same broker-signed certificate. An Ed25519 verification costs ~0.1 ms, several times per payment, so
:class:`SignatureMemo` remembers which ``(signed bytes, signature)`` pairs verified. The key is the exact bytes the
signature covers (type, version, signer and the canonical body) plus the signature itself, so a hit can only be the
very same signed object: any change to the body, the signer or the signature misses and is verified afresh.
Only successes are remembered; a bad signature is re-checked (and refused) every time.

A :class:`Signed` object this memo parsed is remembered too (by identity, weakly): it was validated as input and
is immutable, so handing it back in (the engine re-checks the quote it checked a moment ago) skips the re-parse.

Whether the signer is *trusted* is not cached here: callers still check the signer against their current trusted
keys (:meth:`netpay.signed.Signed.require_signer`), and validity periods, revocations and origins on every use.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Any, TypeVar

from netpay.signed import Body, Signed

__all__ = ["SIGNATURES", "SignatureMemo"]

B = TypeVar("B", bound=Body)


class SignatureMemo:
    """A bounded, thread-safe record of signatures that verified (least recently used forgotten first)."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._seen: OrderedDict[tuple[bytes, bytes], None] = OrderedDict()
        self._parsed: weakref.WeakValueDictionary[int, Signed[Any]] = weakref.WeakValueDictionary()
        self._lock = threading.Lock()

    def parse(self, wire: Any, kind: type[B], where: str = "signed") -> Signed[B]:
        """Like :meth:`Signed.from_wire` with ``verify=True``: parse strictly, check the signature (unless this
        exact signed object verified before). A :class:`Signed` is re-parsed from its wire form, so its body is
        validated like any input, unless it is one this memo parsed itself."""
        if isinstance(wire, Signed):
            if self._parsed.get(id(wire)) is wire and isinstance(wire.body, kind):
                self.verify(wire)
                return wire
            wire = wire.to_wire()
        signed = Signed.from_wire(wire, kind, where, verify=False)
        self.verify(signed)
        self._parsed[id(signed)] = signed
        return signed

    def verify(self, signed: Signed[Any]) -> None:
        """Raise :class:`netpay.errors.BadSignature` unless ``signed``'s signature verifies under its signer."""
        key = (signed.signed_bytes(), signed.signature)
        with self._lock:
            if key in self._seen:
                self._seen.move_to_end(key)
                return
        signed.signer.verify(signed.signature, key[0])
        with self._lock:
            self._seen[key] = None
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()
            self._parsed.clear()


#: The process-wide memo (signatures are facts about bytes and keys, not about one wallet or vault).
SIGNATURES = SignatureMemo()
