"""argparse value types shared by the subcommands: each raises `ArgumentTypeError` with a
one-line message, which argparse prints as a usage error (exit 2, no traceback)."""

from __future__ import annotations

import argparse

__all__ = ["address", "key_value", "port", "positive"]


def address(text: str) -> int:
    """An I2C address or other integer, decimal or `0x…`."""
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an address (e.g. 0x76)") from None


def key_value(text: str) -> tuple[str, str]:
    """`KEY=VALUE`, with a non-empty key."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE")
    return key, value


def positive(text: str) -> int:
    """An integer ≥ 1."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return n


def port(text: str) -> int:
    """A TCP port, 0..65535 (0: any free port)."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (0..65535)")
    return n
