"""The error model shared by every layer.

- `HwError(kind, message)`: a failure with a spec error kind — the case name of the
  function's errno enum in the WITX (e.g. ``"nack_address"``, ``"pipe"``). Host modules
  and backends raise it; the generated shims turn ``kind`` into the errno number. A kind
  the function's errno enum lacks becomes ``other``.
- `GuestFault`: the guest broke the memory contract (pointer/length outside its memory,
  bad UTF-8 where a string is required is *not* a fault but ``invalid_argument``).
  Kind ``fault``; the kernel's policy decides errno + audit or trap + quarantine.
- `UserError`: a mistake of the person at the command line or in a file (bad path,
  malformed manifest), or an outcome they must act on. It carries its exit status
  (``exit_code``, 2 unless given); the CLI prints it as one line and exits with it.
"""

from __future__ import annotations

__all__ = ["HwError", "GuestFault", "UserError"]


class HwError(Exception):
    """A failure with a spec error kind (a WITX errno case name)."""

    __slots__ = ("kind", "message")

    def __init__(self, kind: str, message: str = "") -> None:
        super().__init__(f"{kind}: {message}" if message else kind)
        self.kind = kind
        self.message = message


class GuestFault(HwError):
    """The guest passed memory it does not own (kind ``fault``)."""

    def __init__(self, message: str) -> None:
        super().__init__("fault", message)


class UserError(Exception):
    """A user-facing failure: the CLI prints ``str(err)`` as one line, exits ``exit_code``."""

    exit_code: int = 2

    def __init__(self, message: str = "", *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
