"""Every option of netpay-broker, netpay-vendor, netpay-demo and netpay-wallet (and of their subcommands) has help
text, and ``--help`` shows its default."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from broker_stub import cli as broker_cli
from netpay_demo import cli as demo_cli
from vendor_stub import cli as vendor_cli
from wallet_app import main as wallet_main


def _wallet_parser() -> argparse.ArgumentParser:
    caught: list[argparse.ArgumentParser] = []
    real = argparse.ArgumentParser.parse_args

    def capture(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
        caught.append(self)
        return real(self, [])

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(argparse.ArgumentParser, "parse_args", capture)
        wallet_main.parse_args([])
    return caught[0]


def _all_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _all_parsers(sub)


PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "netpay-broker": broker_cli._parser,
    "netpay-vendor": vendor_cli._parser,
    "netpay-demo": demo_cli._parser,
    "netpay-wallet": _wallet_parser,
}


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_every_option_has_help_and_shows_its_default(name: str) -> None:
    for parser in _all_parsers(PARSERS[name]()):
        assert parser.formatter_class is argparse.ArgumentDefaultsHelpFormatter, parser.prog
        text = parser.format_help()
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            label = "/".join(action.option_strings) or action.dest
            assert action.help, f"{parser.prog} {label} has no help text"
            if action.option_strings and not action.required:
                assert "%(default)" in parser.formatter_class(parser.prog)._get_help_string(action), label
        if any(a.option_strings and not a.required for a in parser._actions if not isinstance(a, argparse._HelpAction)):
            assert "(default:" in text, parser.prog
