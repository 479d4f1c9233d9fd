"""`DriverFault`: why a guest was stopped (raised by `DriverInstance`, caught by the
supervisor and the IMC). Its own module so that `_imc`, which `_sandbox` imports, can name it
at import time."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DriverFault"]


@dataclass(frozen=True)
class DriverFault(Exception):
    """The guest was stopped: ``kind`` is deadline, trap, host, reentrant or busy."""

    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"
