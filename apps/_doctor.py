"""``wasi-hw doctor``: is this machine ready to run drivers — and if not, what fixes it.

Contract: `diagnose(...)` returns one `Check` per subject — ``i2c-dev`` (the kernel module
and its ``/dev/i2c-N`` nodes), ``i2c access`` (can this user read and write every node),
``usbfs`` (``/dev/bus/usb`` and how many device nodes this user can write), ``vhci-hcd``
(the USB/IP client module, only for ``--usbip``-style imports), ``aot cache`` (the cache
directory is this user's alone and writable; how many entries for this engine) and
``engine`` (wasmtime compiles and runs a module on this machine, the native host-call half
is built). Each has a status — ``ok``, ``warn`` (works, with a caveat), ``fail`` (a driver
that needs it will not run), ``info`` (not needed by everyone) — a one-line detail, and for
anything but ``ok`` the fix, as a command where there is one. Nothing is changed.
Permissions are judged from the nodes' owner, group and mode against `uid` and `gids`
(default: this process's), so the same code diagnoses fake ``/dev`` and ``/sys`` trees
(`dev`, `sys` parameters) in the tests.
"""

from __future__ import annotations

import glob
import os
import re
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

__all__ = ["Check", "diagnose", "format_checks"]

_I2C_ON = ("enable I2C: `sudo raspi-config nonint do_i2c 0` on Raspberry Pi OS (or "
           "`dtparam=i2c_arm=on` in /boot/firmware/config.txt and a reboot), then "
           "`sudo modprobe i2c-dev` and `echo i2c-dev | sudo tee -a /etc/modules`")


@dataclass(frozen=True)
class Check:
    name: str
    status: str          # ok | warn | fail | info
    detail: str
    fix: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _writable(st: os.stat_result, uid: int, gids: set[int]) -> bool:
    if uid == 0:
        return True
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IWUSR) and bool(st.st_mode & stat.S_IRUSR)
    if st.st_gid in gids:
        return bool(st.st_mode & stat.S_IWGRP) and bool(st.st_mode & stat.S_IRGRP)
    return bool(st.st_mode & stat.S_IWOTH) and bool(st.st_mode & stat.S_IROTH)


def _group_name(gid: int) -> str:
    try:
        import grp
        return grp.getgrgid(gid).gr_name
    except (KeyError, ImportError):
        return str(gid)


def _i2c(dev: Path, sys_: Path, uid: int, gids: set[int]) -> list[Check]:
    nodes = sorted((p for p in dev.glob("i2c-*") if re.fullmatch(r"i2c-\d+", p.name)),
                   key=lambda p: int(p.name[4:]))
    loaded = (sys_ / "module/i2c_dev").exists() or (sys_ / "class/i2c-dev").exists()
    if not nodes:
        if loaded:
            return [Check("i2c-dev", "fail", "i2c-dev is loaded but there is no /dev/i2c-N: "
                          "no I2C controller is enabled", _I2C_ON)]
        return [Check("i2c-dev", "fail", "no /dev/i2c-N and the i2c-dev module is not loaded",
                      _I2C_ON)]
    checks = [Check("i2c-dev", "ok", "buses: " + ", ".join(p.name for p in nodes))]
    denied = []
    for p in nodes:
        try:
            st = p.stat()
        except OSError:
            continue
        if not _writable(st, uid, gids):
            denied.append((p, st))
    if denied:
        groups = sorted({_group_name(st.st_gid) for _, st in denied})
        group = groups[0] if groups and groups[0] != "root" else "i2c"
        checks.append(Check(
            "i2c access", "fail",
            f"this user cannot open {', '.join(str(p) for p, _ in denied)} for reading and "
            f"writing (group {', '.join(groups)})",
            f"`sudo usermod -aG {group} $USER` and log in again (the service unit adds the "
            f"group itself)" + ("" if group == "i2c" else
                                "; or a udev rule: `wasi-hw service install` writes one")))
    else:
        checks.append(Check("i2c access", "ok", f"read/write on all {len(nodes)} bus(es)"))
    return checks


def _usb(dev: Path, sys_: Path, uid: int, gids: set[int]) -> list[Check]:
    base = dev / "bus/usb"
    nodes = [Path(p) for p in glob.glob(str(base / "[0-9]*/[0-9]*"))]
    writable = [p for p in nodes if _writable(p.stat(), uid, gids)]
    checks = []
    if not base.is_dir():
        checks.append(Check("usbfs", "warn", f"no {base}: USB devices cannot be opened here",
                            "usbfs comes with udev on a normal system; in a container, "
                            "bind-mount /dev/bus/usb"))
    elif not nodes:
        checks.append(Check("usbfs", "ok", f"{base} present, no USB devices plugged in"))
    elif len(writable) == len(nodes):
        checks.append(Check("usbfs", "ok", f"all {len(nodes)} USB device nodes writable"))
    else:
        checks.append(Check(
            "usbfs", "warn",
            f"{len(writable)} of {len(nodes)} USB device nodes writable by this user "
            "(a driver can only open those)",
            "`sudo wasi-hw service install …` writes a udev rule giving group plugdev the "
            "devices the manifests grant; then `sudo usermod -aG plugdev $USER`"))
    vhci = any((sys_ / p).exists() for p in ("module/vhci_hcd", "bus/platform/drivers/vhci_hcd"))
    checks.append(Check("vhci-hcd", "ok" if vhci else "info",
                        "USB/IP client module loaded" if vhci else
                        "vhci-hcd not loaded (needed only to attach USB/IP devices as local "
                        "USB; `--usbip` imports work without it)",
                        "" if vhci else "`sudo modprobe vhci-hcd` (Debian: package usbip; "
                                        "Raspberry Pi OS has the module)"))
    return checks


def _cache(cache_dir: Path | None, uid: int) -> Check:
    from wasi_hw.kernel import cache_dir_problem, default_cache_dir

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    problem = cache_dir_problem(root, uid)
    if problem:
        fix = (f"`sudo chown -R $USER {root}`" if "owned by another user" in problem else
               f"`chmod 700 {root}`")
        return Check("aot cache", "warn", f"{problem}: every start compiles (slow on a Pi)",
                     f"{fix}, or point $WASI_HW_CACHE at a private directory")
    if not root.exists():
        parent = next((p for p in root.parents if p.exists()), Path("/"))
        if not os.access(parent, os.W_OK):
            return Check("aot cache", "warn", f"{root} does not exist and {parent} is not "
                         "writable: every start compiles",
                         "set $WASI_HW_CACHE to a writable directory")
        return Check("aot cache", "ok", f"{root} (created on first use)")
    if not os.access(root, os.W_OK):
        return Check("aot cache", "warn", f"{root} is not writable: new drivers compile on "
                     "every start", f"`chown -R $USER {root}`")
    entries = len(list(root.glob("*.cwasm")))
    return Check("aot cache", "ok", f"{root}: {entries} compiled module(s)")


def _engine() -> Check:
    try:
        import wasmtime

        from wasi_hw.kernel import KernelEngine, host_target, native
    except ImportError as err:
        return Check("engine", "fail", f"cannot import the runtime: {err}",
                     "reinstall: `pip install --force-reinstall wasi-hw`")
    try:
        with KernelEngine() as engine:
            module = wasmtime.Module(engine.engine, b"\0asm\1\0\0\0\1\5\1`\0\1\x7f\3\2\1\0"
                                     b"\7\5\1\1f\0\0\n\6\1\4\0A*\v")
            store = wasmtime.Store(engine.engine)
            store.set_epoch_deadline(engine.deadline_ticks(1000))
            got = wasmtime.Instance(store, module, []).exports(store)["f"](store)
    except Exception as err:  # noqa: BLE001 — reported, that is the point
        return Check("engine", "fail", f"wasmtime cannot run a module here: {err}",
                     "a 64-bit OS is required (wasmtime has no 32-bit ARM build)")
    if got != 42:
        return Check("engine", "fail", f"a test module returned {got}, not 42", "report a bug")
    if not native.available():
        return Check("engine", "warn", f"wasmtime runs on {host_target()}; the native host-call "
                     "half is not built (the slower ctypes path is used)",
                     "`sudo apt install python3-dev gcc`, then reinstall wasi-hw")
    from importlib.metadata import version

    return Check("engine", "ok", f"wasmtime {version('wasmtime')} on {host_target()}, native "
                 "host-call path built")


def diagnose(*, dev: Path | str = "/dev", sys: Path | str = "/sys",
             cache_dir: Path | str | None = None, uid: int | None = None,
             gids: Iterable[int] | None = None, engine: bool = True) -> list[Check]:
    """Every check (module docstring), in a fixed order."""
    uid = os.getuid() if uid is None else uid
    gids = set(os.getgroups()) | {os.getgid()} if gids is None else set(gids)
    checks = [*_i2c(Path(dev), Path(sys), uid, gids), *_usb(Path(dev), Path(sys), uid, gids),
              _cache(Path(cache_dir) if cache_dir is not None else None, uid)]
    if engine:
        checks.append(_engine())
    return checks


def format_checks(checks: Iterable[Check]) -> str:
    lines = []
    for c in checks:
        lines.append(f"[{c.status.upper():<4}] {c.name}: {c.detail}")
        if c.fix:
            lines.append(f"       fix: {c.fix}")
    return "\n".join(lines)
