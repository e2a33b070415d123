"""Buying a file from another peer: search the CIS, get and check the peer's quote, pay it with the wallet's usual
payment engine through the usual purchase prompt and allowances, download with progress and resume, check the
SHA-256, keep the file and its receipt.

Which quote paid for which peer's file is kept in the wallet's vault (``peer_downloads``; the receipt and its access
token are the payment's, in the vault too), durably, before paying: a broken download resumes from the bytes already
on disk with the same token and is never paid again. Nothing but the file itself is written next to the download.
The listing's ``item_id`` must be the first 32 hex digits of its SHA-256, so the receipt (which names the item) binds
the hash the buyer checks; the quote's certificate must be the very peer the CIS listed (same id and key), and the
download URL must be at the peer's certified address.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from netpay.errors import Forbidden, MalformedMessage, PeerUnavailable, UntrustedSigner, error_from_body
from netpay.messages import Quote, VendorCertificate
from netpay.signed import Signed
from wallet_app.clients.policy import require_secure_url
from wallet_app.services.types import CheckedQuote, PaidQuote, PayVia

__all__ = ["Download", "PeerBuyer"]

_CHUNK = 256 * 1024
Progress = Callable[[int, int], None]
#: Pays a checked quote and gives its receipt (see :class:`wallet_app.peer.checkout.PromptedPayment`).
Pay = Callable[[CheckedQuote], PaidQuote]


@dataclass(frozen=True, slots=True)
class Download:
    """A finished purchase: the verified file, the payment whose receipt opened it (in the wallet's Activity), and
    whether this call paid for it."""

    path: Path
    payment_id: str
    sha256: str
    size: int
    paid_now: bool


class PeerBuyer:
    """Find and buy files from peers with one wallet (a :class:`~wallet_app.services.wallet.WalletService`)."""

    def __init__(self, wallet: Any, downloads: Path, verify: str | bool = True) -> None:
        self.wallet = wallet
        self.downloads = Path(downloads)
        self._http = requests.Session()
        self._http.verify = verify

    def search(self, broker_url: str, q: str = "", page: int = 1, per_page: int = 20) -> dict[str, Any]:
        """The CIS's listings of online peers matching ``q``."""
        url = require_secure_url(broker_url.rstrip("/") + "/v1/cis/search", "broker")
        result: dict[str, Any] = self._call("GET", url, params={"q": q, "page": page, "per_page": per_page})
        return result

    def quote(self, listing: dict[str, Any]) -> CheckedQuote:
        """Ask the listing's peer for a quote and check it like a shop's (certificate from a trusted broker, key,
        expiry) and against the listing (same peer, same key, same file)."""
        _check_listing(listing)
        data = self._call(
            "POST", require_secure_url(listing["quote_url"], "peer"), json={"item_id": listing["item_id"]}
        )
        cert = Signed.from_wire(data.get("vendor_certificate"), VendorCertificate, "vendor_certificate")
        if cert.body.vendor_id != listing["peer_id"] or cert.body.public_key.hex != listing["public_key"]:
            raise UntrustedSigner("the peer answering is not the peer the index listed")
        quote = Signed.from_wire(data.get("quote"), Quote, "quote")
        if quote.body.item_id != listing["item_id"]:
            raise UntrustedSigner("the peer quoted another file than the one listed")
        if not listing["download_url"].startswith(cert.body.api_url.rstrip("/") + "/files/"):
            raise Forbidden("the download address is not at the certified peer")
        checked: CheckedQuote = self.wallet.check_quote(quote.to_wire(), cert.to_wire(), None)
        return checked

    def buy(self, listing: dict[str, Any], checked: CheckedQuote | None = None, via: PayVia = "prompt",
            progress: Progress | None = None, pay: Pay | None = None) -> Download:  # fmt: skip
        """Pay (unless this wallet already paid this peer for this file) and download; resumable.

        ``pay`` pays the checked quote: in the wallet's window it is :class:`~wallet_app.peer.checkout.
        PromptedPayment` (the usual purchase prompt and allowances); without it the wallet engine pays directly
        (``via``: scripts and tests that decided already)."""
        _check_listing(listing)
        self.downloads.mkdir(parents=True, exist_ok=True)
        final = self._final_path(listing)
        self._import_sidecar(final)
        paid_now = False
        record = self._record(listing["peer_id"], listing["item_id"])
        paid = self._finish_pending(record) if record is not None else None
        if paid is None:
            checked = checked or self.quote(listing)
            q = checked.quote.body
            # remembered before paying: if the seller vanishes mid-payment, the next try finishes this payment
            record = {"listing": listing, "quote_id": q.quote_id, "peer_id": q.vendor_id}
            self._remember(record)
            try:
                if pay is not None:
                    paid = pay(checked)
                else:
                    paid = self.wallet.pay_quote(checked.quote, checked.vendor_certificate, None, via)
            except BaseException:
                if not self._spent_on(q.quote_id, q.vendor_id):
                    self._forget(listing["peer_id"], listing["item_id"])  # declined or refused before paying
                raise
            paid_now = True
        assert record is not None and paid is not None
        if not (final.exists() and _sha256(final) == listing["sha256"]):
            self._fetch(record["listing"], paid.access_token, final, progress)
        return Download(final, paid.payment_id, listing["sha256"], final.stat().st_size, paid_now)

    # -- internals ----------------------------------------------------------------------------------------------
    def _finish_pending(self, record: dict[str, Any]) -> Any:
        """The receipt of the remembered payment, re-sending it (idempotent at the seller) if still pending; None
        (and the record forgotten) when the wallet has no pending or settled payment for that quote."""
        paid = self.wallet.receipt_for(record["quote_id"], record["peer_id"])
        if paid is not None:
            return paid
        self.wallet.recover_pending()
        paid = self.wallet.receipt_for(record["quote_id"], record["peer_id"])
        if paid is not None:
            return paid
        row = self.wallet.vault.one(
            "SELECT status FROM spends WHERE vendor_id = ? AND quote_id = ? AND status = 'pending'",
            (record["peer_id"], record["quote_id"]),
        )
        if row is not None:
            raise PeerUnavailable("the seller has not confirmed your payment yet; it is finished (never paid twice) "
                                  "when the seller is back online")  # fmt: skip
        self._forget(record["peer_id"], record["listing"]["item_id"])
        return None

    # -- the records, in the vault ------------------------------------------------------------------------------
    def _record(self, peer_id: str, item_id: str) -> dict[str, Any] | None:
        row = self.wallet.vault.one("SELECT quote_id, listing_json FROM peer_downloads WHERE peer_id = ? AND "
                                    "item_id = ?", (peer_id, item_id))  # fmt: skip
        if row is None:
            return None
        return {"listing": json.loads(row[1]), "quote_id": row[0], "peer_id": peer_id}

    def _remember(self, record: dict[str, Any]) -> None:
        listing = record["listing"]
        with self.wallet.vault.tx(durable=True) as c:
            c.execute("INSERT INTO peer_downloads(peer_id, item_id, quote_id, listing_json, created_at) VALUES "
                      "(?, ?, ?, ?, ?) ON CONFLICT(peer_id, item_id) DO UPDATE SET quote_id = excluded.quote_id, "
                      "listing_json = excluded.listing_json",
                      (listing["peer_id"], listing["item_id"], record["quote_id"], json.dumps(listing),
                       int(time.time())))  # fmt: skip

    def _forget(self, peer_id: str, item_id: str) -> None:
        with self.wallet.vault.tx() as c:
            c.execute("DELETE FROM peer_downloads WHERE peer_id = ? AND item_id = ?", (peer_id, item_id))

    def _import_sidecar(self, final: Path) -> None:
        """A wallet from before kept the record (with the access token) in a plain ``.<file>.receipt.json`` next to
        the download: move it into the vault and delete it. A damaged one is only deleted (the receipt itself is
        in the wallet's payments)."""
        sidecar = final.with_name(f".{final.name}.receipt.json")
        if not sidecar.exists():
            return
        try:
            old = json.loads(sidecar.read_text(encoding="utf-8"))
            listing = old["listing"]
            _check_listing(listing)
            if not all(isinstance(old[k], str) for k in ("quote_id", "peer_id")) or old["peer_id"] != listing.get(
                "peer_id"
            ):
                raise ValueError("not a record")
            if self._record(old["peer_id"], listing["item_id"]) is None:
                self._remember({"listing": listing, "quote_id": old["quote_id"], "peer_id": old["peer_id"]})
        except (OSError, ValueError, KeyError, TypeError, MalformedMessage):
            pass
        sidecar.unlink(missing_ok=True)

    def _spent_on(self, quote_id: str, vendor_id: str) -> bool:
        row = self.wallet.vault.one("SELECT 1 FROM spends WHERE vendor_id = ? AND quote_id = ?", (vendor_id, quote_id))
        return row is not None

    def _final_path(self, listing: dict[str, Any]) -> Path:
        name = re.sub(r"[^\w.\- ]", "_", listing["title"]).strip(" .")[:100] or listing["item_id"]
        stem, dot, ext = name.rpartition(".")
        if not dot or not stem or len(ext) > 8:
            stem, ext = name, ""
        return self.downloads / (f"{stem} [{listing['item_id'][:8]}]" + (f".{ext}" if ext else ""))

    def _fetch(self, listing: dict[str, Any], token: str, final: Path, progress: Progress | None) -> None:
        url = require_secure_url(listing["download_url"], "peer")
        part = final.with_name(final.name + ".part")
        size = int(listing["size"])
        have = part.stat().st_size if part.exists() else 0
        if have > size:
            part.unlink()
            have = 0
        headers = {"Authorization": f"Bearer {token}"}
        if 0 < have < size:
            headers["Range"] = f"bytes={have}-"
        if have < size:
            try:
                with self._http.get(url, headers=headers, stream=True, timeout=30) as resp:
                    if resp.status_code >= 400:
                        raise error_from_body(_json(resp), resp.status_code)
                    if resp.status_code == 200:
                        have = 0  # the peer sent the whole file
                    with open(part, "ab" if have else "wb") as out:
                        for chunk in resp.iter_content(_CHUNK):
                            if have + len(chunk) > size:
                                raise MalformedMessage("the peer sent more bytes than the file has")
                            out.write(chunk)
                            have += len(chunk)
                            if progress is not None:
                                progress(have, size)
                        out.flush()
                        os.fsync(out.fileno())
            except requests.RequestException as exc:
                raise PeerUnavailable(f"the download broke off at {have} of {size} bytes; it resumes from there "
                                      f"({type(exc).__name__})", received=have) from None  # fmt: skip
        if have < size:
            raise PeerUnavailable(f"the download broke off at {have} of {size} bytes; it resumes from there",
                                  received=have)  # fmt: skip
        if _sha256(part) != listing["sha256"]:
            part.unlink()
            raise MalformedMessage("the downloaded file does not have the listed SHA-256; it was deleted")
        os.replace(part, final)

    def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        try:
            resp = self._http.request(method, url, timeout=30, **kwargs)
        except requests.RequestException as exc:
            raise PeerUnavailable(f"{url} could not be reached: {type(exc).__name__}") from None
        data = _json(resp)
        if resp.status_code >= 400:
            raise error_from_body(data, resp.status_code)
        if not isinstance(data, dict):
            raise PeerUnavailable(f"{url} answered without a JSON object")
        return data


def _check_listing(listing: dict[str, Any]) -> None:
    try:
        ok = re.fullmatch(r"[0-9a-f]{64}", listing["sha256"]) and listing["item_id"] == listing["sha256"][:32]
    except (KeyError, TypeError):
        ok = False
    if not ok:
        raise MalformedMessage("the listing's item id is not the start of its SHA-256")


def _json(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
