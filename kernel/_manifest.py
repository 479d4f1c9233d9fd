"""Driver manifests and kernel files: TOML in, frozen grants out.

Contract:
- `load_manifest(path)` parses a driver manifest with `tomllib` and validates all of it before
  anything runs. Every mistake raises `ManifestError` (a `UserError`) located as `file:line`:
  tomllib's own position for syntax errors, the offending key's line for semantic ones.
  Unknown keys are errors.
- The result is a `Manifest` of frozen dataclasses, tuples and frozensets: grants cannot be
  widened after a driver starts.

Driver manifest (all tables but the first two keys optional)::

    name = "bme280"                       # [a-z0-9_-]+
    wasm = "../../build/wasm/bme280.wasm" # relative to the manifest
    poll_interval_ms = 1000
    [config]                              # strings handed to wasi_driver.config_get
    bus = "i2c-1"
    [[i2c]]                               # one grant per bus
    bus = "i2c-1"
    addresses = [0x76, 0x77]
    ten_bit = false
    pointer = "auto_increment"            # the chip's register pointer: "auto_increment",
                                          # "write_pairs" (a write is register/value pairs,
                                          # BME280) or "none" (it never moves)
    write_pairs = false                   # the same as pointer = "write_pairs" (older key)
    [[i2c.registers]]                     # optional: restricts register access
    first = 0x88
    last = 0xff
    access = "r"                          # "r", "w" or "rw"
    [[usb]]
    vid = 0x1209
    pid = 0x0001
    serial = "ABC"                        # optional
    interfaces = [0]
    endpoints = [0x81, 0x01]
    operations = ["set_configuration"]   # reset, detach_kernel_driver, set_configuration
    [sharing]                             # grants of memory between drivers (wasi_driver.grant)
    grant_to = ["lcd"]                    # drivers this one may grant regions to
    receive_from = ["bme280"]             # drivers whose grants this one may use
                                          # (no entry → denied; both sides must agree)
    [imc]                                 # inter-module communication (wasi_imc), names only
    offer = ["bme280.reading"]            # services this module serves
    callers = ["comfort"]                 # optional: the only modules that may call them
    call = ["sht3x.reading"]              # services this module may call
    publish = ["dewpoint"]                # its own topics (others see "<name>.dewpoint")
    subscribe = ["comfort.dewpoint"]      # "<module>.<topic>" it may receive
    [limits]
    memory_pages = 8                      # 64 KiB wasm pages; `wasi-hw build` drivers need 2 (64 KiB stack + data)
    open_handles = 4
    max_transfer = 4096                   # largest transfer and largest single host-side copy
                                          # (also bounds config/inbox/report buffers), bytes
    deadline_ms = 100                     # per call into the guest
    report_bytes = 1024                   # largest report
    [restart]
    max_faults = 3                        # give up after this many faults in a row
    backoff_ms = 100                      # doubled per consecutive fault ...
    backoff_max_ms = 5000                 # ... up to this
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from wasi_hw import UserError

__all__ = [
    "Manifest", "I2cGrant", "RegisterRange", "UsbGrant", "Limits", "RestartPolicy", "SharingPolicy",
    "ManifestError", "load_manifest", "parse_manifest", "USB_OPERATIONS", "TomlDoc",
    "POINTER_MODES", "ImcPolicy", "IMC_NAME",
]

POINTER_MODES = ("auto_increment", "write_pairs", "none")   # an I2C chip's register pointer
USB_OPERATIONS = frozenset({"reset", "detach_kernel_driver", "set_configuration"})
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
#: a service or topic name: dot-separated driver-name tokens (each a NATS subject token)
IMC_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}(\.[a-z0-9][a-z0-9_-]{0,63}){0,7}$")


class ManifestError(UserError):
    """A manifest or kernel file is malformed; the message starts with `file:line:`."""


@dataclass(frozen=True)
class RegisterRange:
    first: int
    last: int
    read: bool
    write: bool

    def covers(self, reg: int) -> bool:
        return self.first <= reg <= self.last


@dataclass(frozen=True)
class I2cGrant:
    bus: str
    addresses: frozenset[int]
    ten_bit: bool = False
    registers: tuple[RegisterRange, ...] = ()
    write_pairs: bool = False   # a Write is (register, value) pairs (BME280 style), not auto-increment
    pointer: str = ""           # "auto_increment" | "write_pairs" | "none" ("": from write_pairs)

    def __post_init__(self) -> None:      # frozen all the way down, whoever builds it
        object.__setattr__(self, "addresses", frozenset(self.addresses))
        object.__setattr__(self, "registers", tuple(self.registers))
        pointer = self.pointer or ("write_pairs" if self.write_pairs else "auto_increment")
        if pointer not in POINTER_MODES:
            raise ValueError(f"register pointer {pointer!r} is not one of {', '.join(POINTER_MODES)}")
        object.__setattr__(self, "pointer", pointer)
        object.__setattr__(self, "write_pairs", pointer == "write_pairs")

    def allows_register(self, reg: int, *, write: bool) -> bool:
        for r in self.registers:
            if r.covers(reg) and (r.write if write else r.read):
                return True
        return False


@dataclass(frozen=True)
class UsbGrant:
    vid: int
    pid: int
    serial: str | None = None
    interfaces: frozenset[int] = frozenset()
    endpoints: frozenset[int] = frozenset()
    operations: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name in ("interfaces", "endpoints", "operations"):
            object.__setattr__(self, name, frozenset(getattr(self, name)))

    def matches(self, vid: int, pid: int, serial: str | None) -> bool:
        return (vid, pid) == (self.vid, self.pid) and (self.serial is None or self.serial == serial)


@dataclass(frozen=True)
class SharingPolicy:
    """Which drivers this one may grant memory to / use grants from (by driver name)."""

    grant_to: frozenset[str] = frozenset()
    receive_from: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "grant_to", frozenset(self.grant_to))
        object.__setattr__(self, "receive_from", frozenset(self.receive_from))


@dataclass(frozen=True)
class ImcPolicy:
    """What a module may do over wasi_imc (names; `callers` None = any caller)."""

    offer: frozenset[str] = frozenset()
    call: frozenset[str] = frozenset()
    publish: frozenset[str] = frozenset()
    subscribe: frozenset[str] = frozenset()
    callers: frozenset[str] | None = None

    def __post_init__(self) -> None:
        for name in ("offer", "call", "publish", "subscribe"):
            object.__setattr__(self, name, frozenset(getattr(self, name)))
        if self.callers is not None:
            object.__setattr__(self, "callers", frozenset(self.callers))


@dataclass(frozen=True)
class Limits:
    memory_pages: int = 8
    open_handles: int = 4
    max_transfer: int = 4096
    deadline_ms: int = 100
    report_bytes: int = 1024


@dataclass(frozen=True)
class RestartPolicy:
    max_faults: int = 3
    backoff_ms: int = 100
    backoff_max_ms: int = 5000

    def backoff(self, consecutive: int) -> float:
        """Seconds to wait before restart number `consecutive` (1-based)."""
        return min(self.backoff_max_ms, self.backoff_ms * 2 ** max(0, consecutive - 1)) / 1000


@dataclass(frozen=True)
class Manifest:
    name: str
    wasm: Path
    source: Path | None = None
    config: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    i2c: tuple[I2cGrant, ...] = ()
    usb: tuple[UsbGrant, ...] = ()
    limits: Limits = Limits()
    poll_interval_ms: int = 1000
    restart: RestartPolicy = RestartPolicy()
    sharing: SharingPolicy = SharingPolicy()
    imc: ImcPolicy = ImcPolicy()

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))
        object.__setattr__(self, "i2c", tuple(self.i2c))
        object.__setattr__(self, "usb", tuple(self.usb))

    def i2c_grant(self, bus: str) -> I2cGrant | None:
        for g in self.i2c:
            if g.bus == bus:
                return g
        return None


# -- TOML with positions --------------------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=""")


class TomlDoc:
    """A parsed TOML file that can point at the line of a key (for error messages)."""

    def __init__(self, path: Path, text: str | None = None) -> None:
        self.path = Path(path)
        try:
            self.text = self.path.read_text(encoding="utf-8") if text is None else text
        except FileNotFoundError:
            raise ManifestError(f"{self.path}: no such file") from None
        except (OSError, UnicodeDecodeError) as err:
            raise ManifestError(f"{self.path}: cannot read: {err}") from None
        try:
            self.data = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as err:
            # tomllib: "... (at line L, column C)"
            m = re.search(r"\(at line (\d+), column (\d+)\)", str(err))
            line = m.group(1) if m else "1"
            msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(err))
            raise ManifestError(f"{self.path}:{line}: TOML syntax: {msg}") from None
        self._index = self._index_lines()

    def _index_lines(self) -> dict[tuple, int]:
        """(table path with array indices, key) → line number; key None → the header line."""
        index: dict[tuple, int] = {}
        counts: dict[tuple, int] = {}
        table: tuple = ()
        for no, line in enumerate(self.text.splitlines(), 1):
            m = _HEADER.match(line)
            if m and not _KEY.match(line):
                parts = tuple(p.strip().strip("\"'") for p in m.group(2).split("."))
                # resolve array indices of parent arrays from the current position
                resolved: list = []
                for i, p in enumerate(parts):
                    resolved.append(p)
                    key = tuple(resolved)
                    if i < len(parts) - 1 and key in counts:
                        resolved.append(counts[key] - 1)
                if m.group(1) == "[[":
                    key = tuple(resolved)
                    n = counts.get(key, 0)
                    counts[key] = n + 1
                    resolved.append(n)
                table = tuple(resolved)
                index.setdefault((table, None), no)
                continue
            m = _KEY.match(line)
            if m:
                parts = tuple(p.strip("\"'") for p in m.group(1).split("."))
                index.setdefault((table + parts[:-1], parts[-1]), no)
        return index

    def line(self, path: tuple) -> int:
        """Best line for `path` (table parts, array indices, and finally the key)."""
        path = tuple(path)
        while path:
            hit = self._index.get((path[:-1], path[-1]))
            if hit is None:
                hit = self._index.get((path, None))
            if hit is not None:
                return hit
            path = path[:-1]
        return 1

    def error(self, path: tuple, message: str) -> ManifestError:
        return ManifestError(f"{self.path}:{self.line(path)}: {message}")


# -- validation helpers ---------------------------------------------------------------------

class _V:
    """Validation of one table: typed getters that report located errors, unknown-key check."""

    def __init__(self, doc: TomlDoc, table: Any, path: tuple, what: str) -> None:
        if not isinstance(table, dict):
            raise doc.error(path, f"{what} must be a table")
        self.doc, self.table, self.path, self.what = doc, table, path, what
        self.seen: set[str] = set()

    def err(self, key: str | None, message: str) -> ManifestError:
        return self.doc.error(self.path + ((key,) if key else ()), message)

    def get(self, key: str, types: type | tuple, default: Any = ..., *, desc: str) -> Any:
        self.seen.add(key)
        if key not in self.table:
            if default is ...:
                raise self.err(None, f"{self.what}: missing required key '{key}' ({desc})")
            return default
        value = self.table[key]
        if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            raise self.err(key, f"{self.what}.{key} must be {desc}, not a boolean")
        if not isinstance(value, types):
            raise self.err(key, f"{self.what}.{key} must be {desc}, not {_tname(value)}")
        return value

    def sub(self, key: str) -> _V | None:
        """The optional sub-table ``key``, validated the same way (errors name ``key``);
        None when it is absent."""
        table = self.get(key, dict, None, desc="a table")
        return None if table is None else _V(self.doc, table, self.path + (key,), key)

    def int(self, key: str, default: Any = ..., *, lo: int, hi: int, desc: str) -> int:
        value = self.get(key, int, default, desc=desc)
        if key in self.table and not lo <= value <= hi:
            raise self.err(key, f"{self.what}.{key} = {value} is out of range ({lo}..{hi})")
        return value

    def int_list(self, key: str, *, lo: int, hi: int, desc: str, default: Any = ...) -> frozenset:
        values = self.get(key, list, default, desc=f"a list of {desc}")
        out = set()
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int):
                raise self.err(key, f"{self.what}.{key}: {v!r} is not {desc}")
            if not lo <= v <= hi:
                raise self.err(key, f"{self.what}.{key}: {v:#x} is out of range ({lo:#x}..{hi:#x})")
            out.add(v)
        return frozenset(out)

    def done(self) -> None:
        """Every key of the table was read: anything else is an unknown key (with the
        nearest known one as a "did you mean", and the keys this table takes)."""
        import difflib

        for key in self.table:
            if key not in self.seen:
                close = difflib.get_close_matches(str(key), sorted(self.seen), n=1, cutoff=0.6)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                known = ", ".join(sorted(self.seen))
                raise self.err(key, f"{self.what}: unknown key '{key}'{hint}; "
                                    f"known keys: {known}")


def _tname(v: Any) -> str:
    return {str: "a string", int: "an integer", float: "a number", list: "a list",
            dict: "a table", bool: "a boolean"}.get(type(v), type(v).__name__)


def parse_manifest(doc: TomlDoc, table: dict | None = None, path: tuple = ()) -> Manifest:
    """Validate a manifest table (the whole `doc` by default) into a frozen `Manifest`."""
    v = _V(doc, doc.data if table is None else table, path, "manifest")
    name = v.get("name", str, desc="the driver's name")
    if not _NAME.match(name):
        raise v.err("name", f"driver name {name!r} must match [a-z0-9][a-z0-9_-]*")
    wasm = v.get("wasm", str, desc="the path of the driver's .wasm, relative to the manifest")
    wasm_path = (doc.path.parent / wasm).resolve()
    poll = v.int("poll_interval_ms", 1000, lo=1, hi=86_400_000, desc="milliseconds")

    cfg: dict[str, str] = {}
    v.seen.add("config")              # optional table: known even when absent
    if "config" in v.table:
        c = _V(doc, v.get("config", dict, desc="a table of strings"), path + ("config",), "config")
        for key in c.table:
            cfg[key] = c.get(key, str, desc='a string (quote numbers: address = "0x76")')
        c.done()

    i2c: list[I2cGrant] = []
    for n, g in enumerate(v.get("i2c", list, [], desc="an array of tables [[i2c]]")):
        gv = _V(doc, g, path + ("i2c", n), "i2c")
        bus = gv.get("bus", str, desc="a bus name such as \"i2c-1\"")
        ten = gv.get("ten_bit", bool, False, desc="true or false")
        pairs = gv.get("write_pairs", bool, False, desc="true or false")
        pointer = gv.get("pointer", str, "write_pairs" if pairs else "auto_increment",
                         desc='"auto_increment", "write_pairs" or "none"')
        if pointer not in POINTER_MODES:
            raise gv.err("pointer", f"i2c.pointer must be one of {', '.join(POINTER_MODES)}, "
                                    f"not {pointer!r}")
        if pairs and pointer != "write_pairs":
            raise gv.err("write_pairs", f"i2c.write_pairs = true contradicts pointer = {pointer!r}")
        addrs = gv.int_list("addresses", lo=0, hi=0x3FF if ten else 0x7F, desc="addresses")
        if not addrs:
            raise gv.err("addresses", "i2c.addresses must not be empty")
        regs: list[RegisterRange] = []
        for k, r in enumerate(gv.get("registers", list, [], desc="an array of tables")):
            rv = _V(doc, r, path + ("i2c", n, "registers", k), "i2c.registers")
            first = rv.int("first", lo=0, hi=0xFF, desc="a register number")
            last = rv.int("last", first, lo=0, hi=0xFF, desc="a register number")
            if last < first:
                raise rv.err("last", f"i2c.registers: last {last:#x} is below first {first:#x}")
            access = rv.get("access", str, "rw", desc='"r", "w" or "rw"')
            if access not in ("r", "w", "rw"):
                raise rv.err("access", f'i2c.registers.access must be "r", "w" or "rw", not {access!r}')
            rv.done()
            regs.append(RegisterRange(first, last, "r" in access, "w" in access))
        gv.done()
        if any(x.bus == bus for x in i2c):
            raise gv.err("bus", f"bus {bus!r} is granted twice")
        i2c.append(I2cGrant(bus, addrs, ten, tuple(regs), pointer=pointer))

    usb: list[UsbGrant] = []
    for n, g in enumerate(v.get("usb", list, [], desc="an array of tables [[usb]]")):
        uv = _V(doc, g, path + ("usb", n), "usb")
        vid = uv.int("vid", lo=0, hi=0xFFFF, desc="a vendor id")
        pid = uv.int("pid", lo=0, hi=0xFFFF, desc="a product id")
        serial = uv.get("serial", str, None, desc="a string")
        ifs = uv.int_list("interfaces", lo=0, hi=0xFF, desc="interface numbers", default=[])
        eps = uv.int_list("endpoints", lo=0, hi=0xFF, desc="endpoint addresses", default=[])
        for ep in eps:
            if ep & 0x70 or ep & 0x0F == 0:
                raise uv.err("endpoints", f"usb.endpoints: {ep:#04x} is not an endpoint address "
                                          "(1..15, bit 7 for IN; endpoint 0 is always allowed)")
        ops = uv.get("operations", list, [], desc="a list of operation names")
        for op in ops:
            if op not in USB_OPERATIONS:
                raise uv.err("operations", f"usb.operations: unknown operation {op!r} "
                                           f"(known: {', '.join(sorted(USB_OPERATIONS))})")
        uv.done()
        usb.append(UsbGrant(vid, pid, serial, ifs, eps, frozenset(ops)))

    limits = Limits()
    if (lv := v.sub("limits")) is not None:
        limits = Limits(
            memory_pages=lv.int("memory_pages", Limits.memory_pages, lo=1, hi=65536, desc="pages"),
            open_handles=lv.int("open_handles", Limits.open_handles, lo=1, hi=1024, desc="a count"),
            max_transfer=lv.int("max_transfer", Limits.max_transfer, lo=1, hi=16 << 20, desc="bytes"),
            deadline_ms=lv.int("deadline_ms", Limits.deadline_ms, lo=1, hi=600_000, desc="milliseconds"),
            report_bytes=lv.int("report_bytes", Limits.report_bytes, lo=1, hi=1 << 20, desc="bytes"),
        )
        lv.done()

    sharing = SharingPolicy()
    if (sv := v.sub("sharing")) is not None:
        lists = {}
        for key in ("grant_to", "receive_from"):
            names = sv.get(key, list, [], desc="a list of driver names")
            for other in names:
                if not isinstance(other, str) or not _NAME.match(other):
                    raise sv.err(key, f"sharing.{key}: {other!r} is not a driver name "
                                      "([a-z0-9][a-z0-9_-]*)")
                if other == name:
                    raise sv.err(key, f"sharing.{key}: a driver cannot share memory with itself")
            lists[key] = frozenset(names)
        sv.done()
        sharing = SharingPolicy(**lists)

    imc = ImcPolicy()
    if (iv := v.sub("imc")) is not None:
        imc = _parse_imc(iv, name)

    restart = RestartPolicy()
    if (rv := v.sub("restart")) is not None:
        restart = RestartPolicy(
            max_faults=rv.int("max_faults", RestartPolicy.max_faults, lo=0, hi=1_000_000, desc="a count"),
            backoff_ms=rv.int("backoff_ms", RestartPolicy.backoff_ms, lo=0, hi=3_600_000, desc="milliseconds"),
            backoff_max_ms=rv.int("backoff_max_ms", RestartPolicy.backoff_max_ms, lo=0, hi=3_600_000,
                                  desc="milliseconds"),
        )
        rv.done()
    v.done()
    return Manifest(
        name=name, wasm=wasm_path, source=doc.path, config=MappingProxyType(cfg),
        i2c=tuple(i2c), usb=tuple(usb), limits=limits, poll_interval_ms=poll, restart=restart,
        sharing=sharing, imc=imc,
    )


def _parse_imc(iv: _V, name: str) -> ImcPolicy:
    """The ``[imc]`` table: lists of names, each checked (service/topic syntax)."""
    lists: dict[str, Any] = {}
    for key, pattern, what in (("offer", IMC_NAME, "a service name"),
                               ("call", IMC_NAME, "a service name"),
                               ("publish", IMC_NAME, "a topic name"),
                               ("subscribe", IMC_NAME, '"<module>.<topic>"'),
                               ("callers", _NAME, "a module name")):
        if key == "callers" and key not in iv.table:
            iv.seen.add(key)
            continue
        names = iv.get(key, list, [], desc=f"a list of strings ({what})")
        for n in names:
            if not isinstance(n, str) or not pattern.match(n):
                raise iv.err(key, f"imc.{key}: {n!r} is not {what} "
                                  "(dot-separated [a-z0-9][a-z0-9_-]* tokens)"
                             if pattern is IMC_NAME else f"imc.{key}: {n!r} is not {what}")
            if key == "subscribe" and "." not in n:
                raise iv.err(key, f"imc.subscribe: {n!r} must name the publisher: "
                                  '"<module>.<topic>"')
        if len(set(names)) != len(names):
            raise iv.err(key, f"imc.{key} lists a name twice")
        lists[key] = frozenset(names)
    iv.done()
    if "callers" in lists and not lists.get("offer"):
        raise iv.err("callers", "imc.callers restricts the callers of offered services, "
                                "but imc.offer is empty")
    return ImcPolicy(**lists)


def load_manifest(path: Path | str, text: str | None = None) -> Manifest:
    """Read and validate the driver manifest at `path` (``text``: its content, already read —
    e.g. fetched by a fleet node; ``wasm`` is then resolved against `path`'s directory)."""
    return parse_manifest(TomlDoc(Path(path), text))
