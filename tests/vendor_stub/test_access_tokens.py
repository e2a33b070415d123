"""Access tokens: bound to their item (or, for a pass, to an expiry), unforgeable without the vendor secret."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from vendor_stub.access import AccessTokens, load_or_create_secret


def test_token_opens_only_its_item() -> None:
    tokens = AccessTokens(b"k" * 32)
    t = tokens.issue("story-a", "r1", is_pass=False, valid_until=None)
    grant = tokens.check(t, "story-a", now=10**9)
    assert grant is not None and grant.item_id == "story-a" and grant.receipt_id == "r1"
    assert tokens.check(t, "story-b", now=10**9) is None


def test_pass_opens_everything_until_expiry() -> None:
    tokens = AccessTokens(b"k" * 32)
    t = tokens.issue("day-pass", "r2", is_pass=True, valid_until=1000)
    assert tokens.check(t, "any-story", now=999) is not None
    assert tokens.check(t, "any-story", now=1000) is None


def test_forged_or_tampered_tokens_are_refused() -> None:
    tokens = AccessTokens(b"k" * 32)
    other = AccessTokens(b"x" * 32)
    t = tokens.issue("story-a", "r1", is_pass=False, valid_until=None)
    assert other.check(t, "story-a") is None  # made with another secret
    forged = other.issue("story-a", "r1", is_pass=False, valid_until=None)
    assert tokens.check(forged, "story-a") is None
    version, payload, mac = t.split(".")
    # swap in the payload of a pass token but keep the MAC: refused
    pass_payload = other.issue("story-a", "r1", is_pass=True, valid_until=None).split(".")[1]
    assert tokens.check(f"{version}.{pass_payload}.{mac}", "story-b") is None
    for bad in ("", "v1", "v2." + payload + "." + mac, t + "x", "v1.!!.!!", "a" * 600, None):
        assert tokens.check(bad, "story-a") is None


def test_secret_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "access_secret"
    first = load_or_create_secret(path)
    assert len(first) == 32 and os.stat(path).st_mode & 0o777 == 0o600
    assert load_or_create_secret(path) == first


def test_mac_is_standard_hmac_sha256() -> None:
    import base64
    import hashlib
    import hmac

    for secret in (b"k" * 32, b"short", b"x" * 100):
        tokens = AccessTokens(secret)
        expected = hmac.new(secret, b"netpay-access:payload", hashlib.sha256).digest()
        assert tokens._mac("payload") == base64.urlsafe_b64encode(expected).rstrip(b"=").decode()


def test_token_payload_is_the_sorted_compact_json_of_its_fields() -> None:
    tokens = AccessTokens(b"k" * 32)
    for item, receipt, is_pass, until in (("story-a", "r1", False, None), ('caf\u00e9 "x"\\', "r\u2028", True, 1000)):
        payload = tokens.issue(item, receipt, is_pass=is_pass, valid_until=until).split(".")[1]
        expected = {"i": item, "p": is_pass, "r": receipt, "u": until}
        text = json.dumps(expected, sort_keys=True, separators=(",", ":"))
        assert base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode() == text
