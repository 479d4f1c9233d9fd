"""`NackAfter`: a fault model that NACKs mid-transfer, for error-path tests.

Wire: it ACKs its address and the first ``n`` data bytes a controller writes in a
transaction, then NACKs byte ``n`` (0-based) — the controller must abort with
``nack_data``. With ``inner`` set, everything else (reads, the ACKed bytes, stop) is passed
to that model, so a real chip can be made to fail part-way. ``times`` limits how many
transactions fail (``None``: all); ``failures`` counts them.
"""

from __future__ import annotations

from ._base import I2cDevice

__all__ = ["NackAfter"]


class NackAfter(I2cDevice):
    """NACK the write byte after the first ``n`` of each transaction."""

    def __init__(self, n: int, inner: I2cDevice | None = None, *, times: int | None = None) -> None:
        super().__init__()
        self.n = n
        self.inner = inner
        self.times = times
        self.failures = 0
        self._count = 0

    def attach(self, clock, stretch_limit_ns) -> None:
        super().attach(clock, stretch_limit_ns)
        if self.inner is not None:
            self.inner.attach(clock, stretch_limit_ns)

    def _armed(self) -> bool:
        return self.times is None or self.failures < self.times

    def start(self, read: bool) -> bool:
        return self.inner.start(read) if self.inner is not None else True

    def write(self, byte: int) -> bool:
        if self._armed() and self._count >= self.n:
            self.failures += 1
            self._count = -(1 << 60)  # one NACK per transaction
            return False
        self._count += 1
        return self.inner.write(byte) if self.inner is not None else True

    def read(self, last: bool) -> int:
        return self.inner.read(last) if self.inner is not None else 0xFF

    def stop(self) -> None:
        self._count = 0
        if self.inner is not None:
            self.inner.stop()
