"""wasi_hw.apps — the applications: the ``wasi-hw`` command line and what it runs.

The top layer: it uses only the public names (``__all__``) of `wasi_hw` (core),
`wasi_hw.host` and `wasi_hw.kernel`, builds the backends and hands them down.
- `main`: the command line (`wasi_hw.apps.cli`).
- Backends by name: `sim_i2c`, `sim_usb`, `usbip_usb`, `real_backends`, `plan_backends`,
  `parse_sim_spec` (`_backends`).
- `build`, `build_path`, `cargo_config`, `find_root`, `select_toolchain`, `Artifact`,
  `BuildError`: Rust drivers → wasm, this tree's or any crate's (`_build`).
- `new_driver`: a new driver crate, built and tested as created (`_scaffold`).
- `wasi_hw.apps.testing`: the pytest plugin for driver authors (fixture ``wasi_hw``).
- `run_parity`, `setup_for`, `run_leg`: one driver on several backends, traces compared (`_parity`).
- `run_bench`, `FIGURES`: the benchmark suite, ratios against same-run baselines (`_bench`);
  `end_child`: ends a child process that stops when its stdin closes (`_bench_imc`).
- `fleet_up`: a local lattice (nats-server + node processes) (`_fleet_up`); `run_fleet_bench`,
  `format_fleet_table`: the fleet's figures (`_bench_fleet`).
- `wasi_hw.apps.reference`: native Python reference drivers.
Names load on first use, so importing one application does not import the others.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "main",
    "sim_i2c", "sim_usb", "usbip_usb", "real_backends", "plan_backends", "parse_sim_spec",
    "build", "build_path", "cargo_config", "find_root", "select_toolchain", "Artifact",
    "BuildError", "new_driver",
    "run_parity", "setup_for", "run_leg",
    "run_bench", "FIGURES", "end_child",
    "fleet_up", "run_fleet_bench", "format_fleet_table",
]

_WHERE = {
    "main": ".cli",
    **dict.fromkeys(("sim_i2c", "sim_usb", "usbip_usb", "real_backends", "plan_backends",
                     "parse_sim_spec"), "._backends"),
    **dict.fromkeys(("build", "build_path", "cargo_config", "find_root", "select_toolchain",
                     "Artifact", "BuildError"), "._build"),
    "new_driver": "._scaffold",
    **dict.fromkeys(("run_parity", "setup_for", "run_leg"), "._parity"),
    **dict.fromkeys(("run_bench", "FIGURES"), "._bench"),
    "end_child": "._bench_imc",
    "fleet_up": "._fleet_up",
    **dict.fromkeys(("run_fleet_bench", "format_fleet_table"), "._bench_fleet"),
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
