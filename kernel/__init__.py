"""wasi_hw.kernel — what runs drivers.

The AoT cache (`AotCache`), driver manifests and their frozen grants (`Manifest`,
`load_manifest`), the kernel guard and its audit log (`AuditLog`), the sandbox (one epoch-
interrupted `KernelEngine`, a Store with limits per driver, `Sandbox` / `DriverInstance`),
the grant table for memory shared between drivers (`GrantTable`, `_sharing`), the
supervisor (`Kernel`: lifecycle, restart with backoff, hot update, routes, snapshots for
migration: `Snapshot`, `migratable`), the IMC handler (`ImcHub`: services by name,
publications; `RemoteLink` is what a messaging engine provides), the run path as an API
(`run_driver`, `adhoc_manifest`, `load_kernel_file`), and a clean stop on a signal
(`stop_on_signals`). The kernel never builds a backend: it runs against the `Backends` it is
handed.
The contract-violation policy is documented in `wasi_hw.kernel._policy`.

For measuring the kernel's own paths (``wasi-hw bench``), and nothing else: `HostCalls` (the
host-call and export-call path: unchecked where `fast_path_available()`, for the
`installed_wasmtime()`), `native` (the C fast path: ``available``, ``define``, ``entry``,
``set_current``), `module_interface` (what the AoT cache records of a module) and
`SETTLE_S` (the age at which a cache entry is sealed).
"""

from ._audit import AuditLog
from . import _native as native
from ._cache import SETTLE_S, AotCache, LoadedModule, cache_dir_problem, default_cache_dir
from ._engine import KernelEngine, host_target
from ._fastcall import HostCalls, fast_path_available, installed_wasmtime
from ._hosts import Backends, make_hosts
from ._imc import HEADER as IMC_HEADER, ImcHub, ProviderBusy, RemoteLink
from ._inspect import CAPABILITIES, Inspection, inspect_wasm
from ._manifest import (I2cGrant, ImcPolicy, Limits, Manifest, ManifestError, RegisterRange, RestartPolicy,
                        SharingPolicy, UsbGrant, load_manifest)
from ._run import (USBIP_PORT, KernelPlan, RunResult, SimDevice, adhoc_manifest,
                   load_kernel_file, parse_usbip, run_driver)
from ._sandbox import DriverFault, DriverInstance, LoadError, Sandbox, module_interface
from ._sharing import DriverSharing, GrantInfo, GrantTable
from ._signals import SignalStop, stop_on_signals
from ._snapshot import Snapshot, migratable
from ._supervisor import DriverSlot, Event, Kernel

__all__ = [
    "AotCache", "LoadedModule", "cache_dir_problem", "default_cache_dir",
    "AuditLog",
    "Backends", "make_hosts",
    "CAPABILITIES", "Inspection", "inspect_wasm",
    "DriverFault", "DriverInstance", "LoadError", "Sandbox",
    "DriverSlot", "Event", "Kernel",
    "IMC_HEADER", "ImcHub", "ProviderBusy", "RemoteLink",
    "I2cGrant", "ImcPolicy", "Limits", "Manifest", "ManifestError", "RegisterRange", "RestartPolicy",
    "SharingPolicy", "UsbGrant", "load_manifest",
    "DriverSharing", "GrantInfo", "GrantTable",
    "Snapshot", "migratable",
    "SignalStop", "stop_on_signals",
    "KernelEngine", "host_target",
    "KernelPlan", "RunResult", "SimDevice", "adhoc_manifest", "load_kernel_file",
    "parse_usbip", "USBIP_PORT", "run_driver",
    # measuring the kernel's paths (wasi-hw bench)
    "HostCalls", "fast_path_available", "installed_wasmtime", "native", "module_interface",
    "SETTLE_S",
]
