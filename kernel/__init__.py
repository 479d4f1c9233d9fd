"""wasi_hw.kernel — what runs drivers.

The AoT cache (`AotCache`), driver manifests and their frozen grants (`Manifest`,
`load_manifest`), the kernel guard and its audit log (`AuditLog`), the sandbox (one epoch-
interrupted `KernelEngine`, a Store with limits per driver, `Sandbox` / `DriverInstance`),
the grant table for memory shared between drivers (`GrantTable`, `_sharing`), the
supervisor (`Kernel`: lifecycle, restart with backoff, hot update, routes) and the run
path as an API (`run_driver`, `adhoc_manifest`, `load_kernel_file`).
The contract-violation policy is documented in `wasi_hw.kernel._policy`.
"""

from ._audit import AuditLog
from ._cache import AotCache, LoadedModule, default_cache_dir
from ._engine import KernelEngine
from ._hosts import Backends, make_hosts
from ._inspect import CAPABILITIES, Inspection, inspect_wasm
from ._manifest import (
                        I2cGrant,
                        Limits,
                        Manifest,
                        ManifestError,
                        RegisterRange,
                        RestartPolicy,
                        SharingPolicy,
                        UsbGrant,
                        load_manifest,
)
from ._run import (
                        KernelPlan,
                        RunResult,
                        SimDevice,
                        adhoc_manifest,
                        load_kernel_file,
                        plan_backends,
                        run_driver,
                        sim_i2c,
                        sim_usb,
)
from ._sandbox import DriverFault, DriverInstance, LoadError, Sandbox
from ._sharing import DriverSharing, GrantInfo, GrantTable
from ._supervisor import DriverSlot, Event, Kernel

__all__ = [
    "AotCache", "LoadedModule", "default_cache_dir",
    "AuditLog",
    "Backends", "make_hosts",
    "CAPABILITIES", "Inspection", "inspect_wasm",
    "DriverFault", "DriverInstance", "LoadError", "Sandbox",
    "DriverSlot", "Event", "Kernel",
    "I2cGrant", "Limits", "Manifest", "ManifestError", "RegisterRange", "RestartPolicy",
    "SharingPolicy", "UsbGrant", "load_manifest",
    "DriverSharing", "GrantInfo", "GrantTable",
    "KernelEngine",
    "KernelPlan", "RunResult", "SimDevice", "adhoc_manifest", "load_kernel_file",
    "plan_backends", "run_driver", "sim_i2c", "sim_usb",
]
