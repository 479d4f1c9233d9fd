"""Simulated device models by name: the one registry of I2C and USB models, and device specs.

Contract:

- `device_models()` is the registry every front end uses (``--sim``, ``--usb-sim``,
  ``usbip serve``, kernel files, the pytest plugin). It holds the built-in models under one
  canonical name each, with aliases (`BUILTIN_MODELS`), plus the models that installed
  distributions offer through the entry-point group ``wasi_hw.devices``
  (``name = "package.module:Class"``). A reference may also be ``package.module:Class``
  directly (the module found on ``sys.path``, else in the current directory). A model is
  a subclass of `I2cDevice` (kind ``"i2c"``) or `UsbDeviceModel`
  (kind ``"usb"``); its constructor's keyword parameters are its parameters.
- Names compare case-insensitively with ``_`` equal to ``-``. A plugin cannot take a
  built-in name; a plugin that fails to import is reported when it is asked for, not before.
- `parse_device_spec(text)` reads ``MODEL[(KEY=VALUE, …)][:ARG][@[BUS:]ADDRESS]``, e.g.
  ``bme280(temperature_c=30)@0x76``, ``hd44780@i2c-2:0x27``, ``hid:hello``,
  ``mypkg.sensors:Mcp9808(temperature_c=21.5)@0x18``. ``:ARG`` after a model name is its
  first parameter as text (``hid:TEXT``, ``msc:PATH``). Values: numbers (``30``, ``0x30``,
  ``2.5``), ``true``/``false``, quoted strings, or bare words (text).
- `DeviceModels.create(ref, params)` checks the parameters against the constructor (unknown
  names get a "did you mean", values of the wrong type are named) and builds the model.
- Every mistake is a `DeviceSpecError` (a `UserError`): one line naming the spec, the
  model, the parameter or the column, never a traceback.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import inspect
import os
import re
import sys
import threading
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Iterator, Mapping

from wasi_hw import UserError

__all__ = [
    "BUILTIN_MODELS", "ENTRY_POINT_GROUP", "DeviceModels", "DeviceSpec", "DeviceSpecError",
    "ModelInfo", "device_models", "parse_device_spec",
]

ENTRY_POINT_GROUP = "wasi_hw.devices"

#: canonical name → (``module:Class`` under ``wasi_hw.host``, aliases). The only table of
#: built-in model names.
BUILTIN_MODELS: Mapping[str, tuple[str, tuple[str, ...]]] = MappingProxyType({
    # I2C
    "bme280": ("wasi_hw.host.devices:Bme280", ()),
    "sht3x": ("wasi_hw.host.devices:Sht3x", ("sht31",)),
    "tmp102": ("wasi_hw.host.devices:Tmp102", ()),
    "hd44780": ("wasi_hw.host.devices:Pcf8574Hd44780", ("lcd", "pcf8574", "pcf8574hd44780")),
    "nack-after": ("wasi_hw.host.devices:NackAfter", ("nackafter",)),
    # USB
    "echo": ("wasi_hw.host.usbdevices:EchoDevice", ("echodevice",)),
    "hid-keyboard": ("wasi_hw.host.usbdevices:HidKeyboard", ("hid", "keyboard", "hidkeyboard")),
    "msc": ("wasi_hw.host.usbdevices:MassStorage", ("mass-storage", "massstorage")),
})


class DeviceSpecError(UserError):
    """A device spec, model reference or model parameter that cannot be used."""


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-")


@dataclass(frozen=True)
class ModelInfo:
    """One model: canonical name, kind (``"i2c"``/``"usb"``), class, aliases, where it came
    from (``"built-in"``, ``"entry point of DIST"`` or ``"module:Class"``), one-line summary."""

    name: str
    kind: str
    factory: type
    aliases: tuple[str, ...] = ()
    origin: str = "built-in"

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.factory) or ""
        return doc.splitlines()[0] if doc else ""

    def parameters(self) -> dict[str, inspect.Parameter]:
        """The constructor's named parameters (what ``MODEL(KEY=VALUE)`` may set)."""
        try:
            sig = inspect.signature(self.factory)
        except (TypeError, ValueError):
            return {}
        return {n: p for n, p in sig.parameters.items()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


@dataclass(frozen=True)
class DeviceSpec:
    """A parsed device spec: model reference, parameters, and for I2C the bus and address
    (None when the spec gave no bus: the caller's default applies)."""

    model: str
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    bus: str | None = None
    address: int | None = None
    text: str = ""
    raw: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    positional: str | None = None


def _kind_of(cls: Any) -> str | None:
    from .devices import I2cDevice
    from .usbdevices import UsbDeviceModel

    if isinstance(cls, type):
        if issubclass(cls, I2cDevice):
            return "i2c"
        if issubclass(cls, UsbDeviceModel):
            return "usb"
    return None


def _import_ref(ref: str, where: str) -> Any:
    module, _, attr = ref.partition(":")
    try:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as err:     # a module next to the user: the current dir
            here = os.getcwd()
            if err.name != module.split(".")[0] or here in sys.path:
                raise
            sys.path.append(here)
            mod = importlib.import_module(module)
    except ImportError as err:
        raise DeviceSpecError(f"{where}cannot import {module!r} for {ref}: {err}") from None
    except Exception as err:  # noqa: BLE001 — a plugin's own bug, shown in one line
        raise DeviceSpecError(f"{where}importing {module!r} failed: "
                              f"{type(err).__name__}: {err}") from None
    obj = mod
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise DeviceSpecError(f"{where}{module!r} has no {attr!r}") from None
    return obj


class DeviceModels:
    """A registry of device models (see the module docstring)."""

    def __init__(self, *, builtins: bool = True, entry_points: bool = True) -> None:
        self._lock = threading.RLock()
        self._models: dict[str, ModelInfo] = {}
        self._names: dict[str, str] = {}      # normalised name or alias → canonical name
        self._lazy: dict[str, tuple[str, tuple[str, ...], str]] = {}  # not imported yet
        self._broken: dict[str, str] = {}
        self.problems: list[str] = []
        if builtins:
            for name, (ref, aliases) in BUILTIN_MODELS.items():
                self._add_lazy(name, ref, aliases, "built-in")
        if entry_points:
            self._load_entry_points()

    # -- registration ------------------------------------------------------------------------
    def _claim(self, name: str, aliases: tuple[str, ...], origin: str) -> bool:
        keys = [_norm(name), *(_norm(a) for a in aliases)]
        taken = [k for k in keys if k in self._names]
        if taken:
            self.problems.append(f"{origin}: model name {taken[0]!r} is already taken by "
                                 f"{self._names[taken[0]]}; ignored")
            return False
        for k in keys:
            self._names[k] = _norm(name)
        return True

    def _add_lazy(self, name: str, ref: str, aliases: tuple[str, ...], origin: str) -> None:
        if self._claim(name, aliases, origin):
            self._lazy[_norm(name)] = (ref, tuple(aliases), origin)

    def register(self, name: str, factory: type, *, aliases: tuple[str, ...] = (),
                 origin: str = "registered") -> ModelInfo:
        """Add a model class under ``name`` (and ``aliases``); `DeviceSpecError` when a name
        is taken or the class is not a device model."""
        kind = _kind_of(factory)
        if kind is None:
            raise DeviceSpecError(f"{factory!r} is not a device model (subclass I2cDevice "
                                  "or UsbDeviceModel)")
        with self._lock:
            before = len(self.problems)
            if not self._claim(name, tuple(aliases), origin):
                raise DeviceSpecError(self.problems.pop(before))
            info = ModelInfo(_norm(name), kind, factory, tuple(_norm(a) for a in aliases), origin)
            self._models[info.name] = info
            return info

    def _load_entry_points(self) -> None:
        from importlib.metadata import entry_points

        try:
            eps = entry_points(group=ENTRY_POINT_GROUP)
        except Exception as err:  # noqa: BLE001 — broken metadata must not stop the host
            self.problems.append(f"reading entry points {ENTRY_POINT_GROUP}: {err}")
            return
        for ep in sorted(eps, key=lambda e: e.name):
            dist = getattr(getattr(ep, "dist", None), "name", None) or "an installed package"
            self._add_lazy(ep.name, ep.value, (), f"entry point of {dist}")

    def _materialise(self, canonical: str) -> ModelInfo:
        info = self._models.get(canonical)
        if info is not None:
            return info
        if canonical in self._broken:
            raise DeviceSpecError(self._broken[canonical])
        ref, aliases, origin = self._lazy[canonical]
        try:
            cls = _import_ref(ref, "")
            kind = _kind_of(cls)
            if kind is None:
                raise DeviceSpecError(f"{ref} is not a device model (subclass I2cDevice or "
                                      "UsbDeviceModel)")
        except DeviceSpecError as err:
            msg = f"model {canonical!r} ({origin}) cannot be loaded: {err}"
            self._broken[canonical] = msg
            raise DeviceSpecError(msg) from None
        info = ModelInfo(canonical, kind, cls, tuple(_norm(a) for a in aliases), origin)
        self._models[canonical] = info
        return info

    # -- lookup ------------------------------------------------------------------------------
    def names(self, kind: str | None = None) -> list[str]:
        """Canonical names (of one kind, when given; loading a plugin that fails drops it)."""
        out = []
        with self._lock:
            for canonical in sorted({*self._lazy, *self._models}):
                try:
                    info = self._materialise(canonical)
                except DeviceSpecError:
                    continue
                if kind is None or info.kind == kind:
                    out.append(canonical)
        return out

    def __iter__(self) -> Iterator[ModelInfo]:
        return iter([self.resolve(n) for n in self.names()])

    def is_name(self, name: str) -> bool:
        """True when ``name`` is a registered name or alias (not a ``module:Class``)."""
        return _norm(name) in self._names

    def resolve(self, ref: str, kind: str | None = None, *, where: str = "") -> ModelInfo:
        """The model a name, alias or ``module:Class`` refers to, of ``kind`` if given."""
        where = f"{where}: " if where and not where.endswith(": ") else where
        label = {"i2c": "I2C", "usb": "USB"}.get(kind or "", "")
        with self._lock:
            key = _norm(ref)
            if key in self._names:
                info = self._materialise(self._names[key])
            elif re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", ref.strip()):
                cls = _import_ref(ref.strip(), where)
                k = _kind_of(cls)
                if k is None:
                    raise DeviceSpecError(f"{where}{ref} is not a device model (subclass "
                                          "wasi_hw.host.devices.I2cDevice or "
                                          "wasi_hw.host.usbdevices.UsbDeviceModel)")
                info = ModelInfo(ref.strip(), k, cls, (), ref.strip())
            else:
                pool = self.names(kind)
                every = sorted(k for k, c in self._names.items() if c in pool)
                close = difflib.get_close_matches(key, every, n=1, cutoff=0.6)
                hint = f" (did you mean {self._names[close[0]]}?)" if close else ""
                raise DeviceSpecError(
                    f"{where}no {label + ' ' if label else ''}device model {ref!r}{hint}; "
                    f"available: {self.describe_names(kind)}; or a plugin as module:Class")
        if kind is not None and info.kind != kind:
            article = {"i2c": "an", "usb": "a"}
            raise DeviceSpecError(f"{where}{info.name} is {article[info.kind]} "
                                  f"{info.kind.upper()} device model, not {article[kind]} "
                                  f"{label} one")
        return info

    def describe_names(self, kind: str | None = None) -> str:
        """``"bme280, hd44780 (lcd, pcf8574, pcf8574hd44780), …"`` for messages and help."""
        parts = []
        for n in self.names(kind):
            aliases = self._materialise(n).aliases
            parts.append(f"{n} ({', '.join(aliases)})" if aliases else n)
        return ", ".join(parts) or "none"

    # -- construction ------------------------------------------------------------------------
    def check(self, ref: str, params: Mapping[str, Any] | None = None, *,
              kind: str | None = None, where: str = "",
              raw: Mapping[str, str] | None = None) -> tuple[ModelInfo, dict[str, Any]]:
        """Resolve ``ref`` and check ``params`` against its constructor without building
        anything; returns the model and the parameters converted to the annotated types."""
        info = self.resolve(ref, kind, where=where)
        prefix = f"{where}: " if where else ""
        accepted = info.parameters()
        var_kw = _has_var_keyword(info.factory)
        raw = raw or {}
        checked = {}
        for key, value in (params or {}).items():
            p = accepted.get(key)
            if p is None and not var_kw:
                close = difflib.get_close_matches(key, list(accepted), n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]}?)" if close else ""
                have = ", ".join(accepted) or "none"
                raise DeviceSpecError(f"{prefix}{info.name} has no parameter {key!r}{hint}; "
                                      f"parameters: {have}")
            checked[key] = _coerce(info.name, key, value, raw.get(key), p, prefix)
        missing = [n for n, p in accepted.items() if p.default is p.empty and n not in checked]
        if missing:
            raise DeviceSpecError(f"{prefix}{info.name} needs parameter "
                                  f"{', '.join(missing)} (e.g. {info.name}({missing[0]}=…))")
        return info, checked

    def create(self, ref: str | DeviceSpec, params: Mapping[str, Any] | None = None, *,
               kind: str | None = None, where: str = "") -> Any:
        """Build a model from a reference (or a parsed `DeviceSpec`) and parameters."""
        raw: Mapping[str, str] = {}
        if isinstance(ref, DeviceSpec):
            spec = ref
            ref, raw = spec.model, spec.raw
            params = {**spec.params, **(params or {})}
            where = where or f"{spec.text!r}"
        info, checked = self.check(ref, params, kind=kind, where=where, raw=raw)
        prefix = f"{where}: " if where else ""
        try:
            return info.factory(**checked)
        except OSError as err:
            what = f"{err.filename}: " if err.filename else ""
            raise DeviceSpecError(f"{prefix}{info.name}: {what}{err.strerror or err}") from None
        except (TypeError, ValueError) as err:
            raise DeviceSpecError(f"{prefix}{info.name}: {err}") from None


def _has_var_keyword(factory: Any) -> bool:
    try:
        return any(p.kind == p.VAR_KEYWORD for p in inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):
        return False


def _annotation_names(p: inspect.Parameter | None) -> set[str]:
    if p is None or p.annotation is p.empty:
        return set()
    text = p.annotation if isinstance(p.annotation, str) else inspect.formatannotation(p.annotation)
    return {t.split("[")[0].split(".")[-1].strip() for t in re.split(r"[|,]|Optional\[|Union\[", text)
            if t.strip()}


def _coerce(model: str, key: str, value: Any, raw: str | None, p: inspect.Parameter | None,
            prefix: str) -> Any:
    """``value`` as the parameter's annotation wants it (float/int/bool/str), or an error."""
    want = _annotation_names(p)
    if not want:
        return value
    shown = raw if raw is not None else repr(value)
    if isinstance(value, bool):
        if "bool" in want:
            return value
    elif isinstance(value, int) and ("int" in want or "float" in want):
        return value if "int" in want else float(value)
    elif isinstance(value, float) and "float" in want:
        return value
    if isinstance(value, str) and want & {"str", "PathLike", "Path"}:
        return value
    if raw is not None and want & {"str", "PathLike", "Path"}:   # an unquoted 1234 as text
        return raw
    if not want & {"bool", "int", "float", "str", "PathLike", "Path"}:
        return value            # a type we cannot check from text: the model decides
    wanted = sorted(want & {"bool", "int", "float", "str"}) or sorted(want)
    names = {"float": "a number", "int": "an integer", "bool": "true or false", "str": "text"}
    expect = " or ".join(names.get(w, w) for w in wanted)
    raise DeviceSpecError(f"{prefix}{model}: parameter {key} must be {expect}, got {shown}")


# -- device specs ----------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][\w.-]*")
_CLASS = re.compile(r"[A-Za-z_][\w.]*")
_BUS_ADDR = re.compile(r"(?:([A-Za-z0-9_.-]+):)?(0[xX][0-9a-fA-F]+|\d+)")


def _value(token: str) -> Any:
    t = token.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        return ast.literal_eval(t)
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(t, 0)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return t


def _split_params(body: str, err: Callable[[str], DeviceSpecError]) -> list[str]:
    items, cur, quote = [], [], ""
    for ch in body:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            cur.append(ch)
        elif ch == ",":
            items.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if quote:
        raise err(f"unclosed {quote} quote in the parameters")
    items.append("".join(cur))
    if len(items) == 1 and not items[0].strip():
        return []
    return items


def parse_device_spec(text: str, *, address: bool = True, where: str = "device",
                      models: DeviceModels | None = None) -> DeviceSpec:
    """Parse ``MODEL[(K=V, …)][:ARG][@[BUS:]ADDRESS]`` (see the module docstring).

    ``address``: an I2C spec, ``@ADDRESS`` required (a 7-bit address); otherwise (USB) no
    ``@`` part is read. ``where`` starts every error message (e.g. ``"--sim"``)."""
    s = text.strip()

    def err(msg: str) -> DeviceSpecError:
        return DeviceSpecError(f"{where} {text!r}: {msg}")

    m = _NAME.match(s)
    if not m:
        raise err("expected a model name first, e.g. bme280@0x76" if address
                  else "expected a model name first, e.g. echo")
    ref, i = m.group(0), m.end()
    positional = None
    registry = models or device_models()
    if i < len(s) and s[i] == ":":
        if registry.is_name(ref):                       # hid:TEXT, msc:PATH
            end = s.rfind("@") if address else len(s)
            end = len(s) if end < i else end
            positional, i = s[i + 1:end], end
        else:                                           # package.module:Class
            c = _CLASS.match(s, i + 1)
            if not c:
                raise err(f"expected a class name after {ref}: (column {i + 2})")
            ref, i = f"{ref}:{c.group(0)}", c.end()
    params: dict[str, Any] = {}
    raw: dict[str, str] = {}
    if positional is not None:                          # the model's first parameter
        first = next(iter(registry.resolve(ref, where=f"{where} {text!r}").parameters()), None)
        if first is None:
            raise err(f"{ref} takes no parameters (got :{positional})")
        params[first], raw[first] = positional, positional
    if i < len(s) and s[i] == "(":
        depth_end = _closing(s, i)
        if depth_end == -2:
            raise err("unclosed quote in the parameters")
        if depth_end < 0:
            raise err("missing ) after the parameters")
        for item in _split_params(s[i + 1:depth_end], err):
            key, eq, val = item.partition("=")
            key = key.strip()
            if not eq or not key:
                raise err(f"parameter {item.strip()!r} is not KEY=VALUE")
            if not key.isidentifier():
                raise err(f"{key!r} is not a parameter name")
            if not val.strip():
                raise err(f"parameter {key} has no value")
            if key in params:
                raise err(f"parameter {key} is given twice")
            try:
                params[key] = _value(val)
            except (ValueError, SyntaxError):
                raise err(f"parameter {key}: cannot read the value {val.strip()}") from None
            raw[key] = val.strip()
        i = depth_end + 1
    bus = addr = None
    if address:
        if i >= len(s) or s[i] != "@":
            got = f"found {s[i:]!r} at column {i + 1}" if i < len(s) else "it is missing"
            raise err(f"expected @ADDRESS or @BUS:ADDRESS after the model ({got}), "
                      "e.g. bme280@0x76")
        b = _BUS_ADDR.fullmatch(s, i + 1)
        if not b:
            raise err(f"{s[i + 1:]!r} is not an address (e.g. 0x76 or i2c-1:0x76)")
        bus, addr = b.group(1), int(b.group(2), 0)
        if not 0 <= addr <= 0x7F:
            raise err(f"address {addr:#x} is not a 7-bit I2C address (0x00..0x7f)")
    elif i < len(s):
        raise err(f"unexpected {s[i:]!r} at column {i + 1}")
    return DeviceSpec(ref, MappingProxyType(params), bus, addr, text,
                      MappingProxyType(raw), positional)


def _closing(s: str, i: int) -> int:
    quote = ""
    for j in range(i + 1, len(s)):
        ch = s[j]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == ")":
            return j
    return -2 if quote else -1


_DEFAULT: DeviceModels | None = None
_DEFAULT_LOCK = threading.Lock()


def device_models() -> DeviceModels:
    """The process-wide registry: built-ins plus the ``wasi_hw.devices`` entry points."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = DeviceModels()
        return _DEFAULT
