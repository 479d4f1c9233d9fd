"""WITX names → Python and Rust names: the one place this mapping lives.

``$address_mode`` → type ``AddressMode``; case ``$seven_bit`` → ``SEVEN_BIT`` (Python enum
member) / ``ADDRESS_MODE_SEVEN_BIT`` (Rust constant); fields, params and functions keep
their snake_case name, escaped where it is a keyword (``class`` → ``class_`` in Python,
``type`` → ``r#type`` in Rust). A name starting with a digit gets a ``_`` prefix (Python
members) since neither language allows it.
"""

from __future__ import annotations

import keyword

__all__ = ["camel", "upper", "py_ident", "rust_ident", "rust_const"]

_RUST_KEYWORDS = frozenset(
    "as break const continue crate else enum extern false fn for if impl in let loop match mod "
    "move mut pub ref return self Self static struct super trait true type unsafe use where "
    "while async await dyn abstract become box do final macro override priv typeof unsized "
    "virtual yield try gen".split())


def camel(name: str) -> str:
    """``address_mode`` → ``AddressMode``; ``wasi_i2c`` → ``WasiI2c``."""
    out = "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)
    return out if out[:1].isalpha() else f"T{out}"


def upper(name: str) -> str:
    """``seven_bit`` → ``SEVEN_BIT``; ``2big`` → ``_2BIG`` (a valid identifier)."""
    out = name.upper()
    return out if out[:1].isalpha() or out[:1] == "_" else f"_{out}"


def py_ident(name: str) -> str:
    """A snake_case WITX name as a Python identifier (``class`` → ``class_``)."""
    if keyword.iskeyword(name) or keyword.issoftkeyword(name) or name in ("self", "mem",
                                                                          "host", "fail"):
        return f"{name}_"
    return name if name[:1].isalpha() or name[:1] == "_" else f"_{name}"


def rust_ident(name: str) -> str:
    """A snake_case WITX name as a Rust identifier (``type`` → ``r#type``)."""
    if name in ("self", "Self", "super", "crate"):
        return f"{name}_"
    if name in _RUST_KEYWORDS:
        return f"r#{name}"
    return name if name[:1].isalpha() or name[:1] == "_" else f"_{name}"


def rust_const(type_name: str, case: str) -> str:
    """``(i2c_errno, nack_address)`` → ``I2C_ERRNO_NACK_ADDRESS``."""
    return f"{type_name}_{case}".upper()
