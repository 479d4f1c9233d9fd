"""Stopping a running kernel from a signal (a service manager's SIGTERM).

Contract: ``with stop_on_signals(kernel, signal.SIGTERM) as stop: kernel.run(...)`` — while
the block runs, each given signal asks the kernel to stop (`Kernel.stop`, thread-safe): the
poll in progress finishes (a guest call is bounded by its deadline), `run` returns, and the
caller tears down as after any end of run (instances closed, audit log flushed, summary).
``stop.signum`` is the signal that arrived (None if none did); `exit_code` is
``128 + signum`` (143 for SIGTERM), the shell's convention, which a unit declares with
``SuccessExitStatus=143``. The previous handlers are restored when the block ends. Outside
the main thread (where Python cannot install handlers) it does nothing.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

__all__ = ["stop_on_signals", "SignalStop"]


class SignalStop:
    """Which signal stopped the run (`signum`), if any."""

    def __init__(self, kernel: Any, signums: tuple[int, ...]) -> None:
        self._kernel = kernel
        self._signums = signums
        self._old: dict[int, Any] = {}
        self.signum: int | None = None

    @property
    def exit_code(self) -> int | None:
        return None if self.signum is None else 128 + self.signum

    @property
    def name(self) -> str | None:
        return None if self.signum is None else signal.Signals(self.signum).name

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
        self._kernel.stop()

    def __enter__(self) -> "SignalStop":
        if threading.current_thread() is threading.main_thread():
            for s in self._signums:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old.clear()


def stop_on_signals(kernel: Any, *signums: int) -> SignalStop:
    """A context manager: the given signals (default SIGTERM) stop `kernel.run` cleanly."""
    return SignalStop(kernel, signums or (signal.SIGTERM,))
