"""Secrets for commands: passphrases, passwords and card details come from a prompt or a file descriptor, never from
the command line (where other users could read them in the process list) or the environment."""

from __future__ import annotations

import getpass
import json
import os
import sys
from typing import Any

__all__ = ["read_card", "read_secret"]

MAX_SECRET = 4096


def _read_fd(fd: int) -> str:
    data = b""
    while len(data) <= MAX_SECRET:
        chunk = os.read(fd, 1024)
        if not chunk:
            break
        data += chunk
        if b"\n" in data:
            break
    return data.split(b"\n", 1)[0].decode("utf-8").rstrip("\r")


def read_secret(fd: int | None, prompt: str, confirm: bool = False) -> str:
    """One line from ``fd``, or asked on the terminal (twice with ``confirm``). ValueError when neither works."""
    if fd is not None:
        try:
            return _read_fd(fd)
        except OSError as exc:
            raise ValueError(f"cannot read file descriptor {fd}: {exc.strerror}") from None
    if not sys.stdin.isatty():
        raise ValueError(f"{prompt.rstrip(': ')} is needed: give it on a terminal or with the matching --*-fd option")
    first = getpass.getpass(prompt)
    if confirm and getpass.getpass("again: ") != first:
        raise ValueError("the two entries differ")
    return first


def read_card(fd: int | None) -> dict[str, Any]:
    """A test card as JSON ``{number, exp_month, exp_year, cvc}`` from ``fd`` or the terminal."""
    text = read_secret(fd, "card (JSON {number, exp_month, exp_year, cvc}): ")
    try:
        card = json.loads(text)
    except ValueError:
        raise ValueError("the card must be one line of JSON") from None
    if not isinstance(card, dict):
        raise ValueError("the card must be a JSON object")
    return card
