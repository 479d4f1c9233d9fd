"""The ``wasi-hw`` command line (`main`): one module per command group, one error boundary.

Groups: ``witx`` (`_witx`), ``gen`` (`_gen`), ``build`` (`_build`), ``devices``
(`_devices`), ``usbip`` (`_usbip`), ``trace`` (`_trace`), ``run`` / ``compile`` /
``inspect`` / ``kernel`` (`_run`), ``parity`` (`_parity`), ``bench`` (`_bench`), ``gateway``
(`_imc`), ``node`` / ``fleet`` (`_fleet`), ``doctor`` / ``demo`` / ``service`` (`_system`).
"""

from ._main import COMMANDS, main

__all__ = ["main", "COMMANDS"]
