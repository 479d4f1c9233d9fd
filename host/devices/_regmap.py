"""`RegisterMapDevice`: a simulated I2C chip described by its register map.

The common sensor pattern: a write's first byte selects a register (the pointer), further
written bytes go into that register; a read returns the pointed register's bytes. A model
declares its registers as class data and overrides only what computes values:

- ``registers``: ``{pointer: Register(name, width=1|2|3|4, reset=0, access="rw"|"r"|"w")}``.
  ``byte_order`` (``"big"``, MSB first — most sensors — or ``"little"``) orders a wide
  register's bytes on the wire.
- Reads: bytes of the pointed register, from a value taken when the read starts: method
  ``read_<name>()`` if the class has one (a live measurement), else the stored value. With
  ``auto_increment`` a read running past the register continues into the next pointer;
  without it the same register repeats (as TMP102/MCP9808 do).
- Writes: a pointer not in the map is NACKed (``nack_data``); so is a data byte to a
  register with no ``w`` right (the chip rejects it) and a byte beyond a register's width
  when ``auto_increment`` is off. When all ``width`` bytes of a register have arrived, the
  value is stored (``self.value(name)``) and ``write_<name>(value)`` runs if defined.
- ``self.value(name)`` / ``self.set_value(name, v)`` read and set a register from Python
  (tests, parameters); ``reset()`` restores every reset value.

The wire contract underneath is `I2cDevice`'s (``start`` / ``write`` / ``read`` /
``stop``); a model needing more (command words, CRCs) overrides those instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

from ._base import I2cDevice

__all__ = ["Register", "RegisterMapDevice"]


@dataclass(frozen=True)
class Register:
    """One register: its name (``read_<name>`` / ``write_<name>`` hooks), width in bytes,
    reset value and access rights (``"r"``, ``"w"`` or ``"rw"``)."""

    name: str
    width: int = 1
    reset: int = 0
    access: str = "rw"

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"register name {self.name!r} is not an identifier")
        if self.width not in (1, 2, 3, 4):
            raise ValueError(f"register {self.name}: width {self.width} is not 1..4 bytes")
        if self.access not in ("r", "w", "rw"):
            raise ValueError(f"register {self.name}: access {self.access!r} is not r, w or rw")
        if not 0 <= self.reset < 1 << (8 * self.width):
            raise ValueError(f"register {self.name}: reset {self.reset:#x} does not fit "
                             f"{self.width} bytes")


class RegisterMapDevice(I2cDevice):
    """Base class of register-map chips; see the module docstring for the wire contract."""

    registers: ClassVar[Mapping[int, Register]] = {}
    byte_order: ClassVar[str] = "big"
    auto_increment: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        self._by_name = {r.name: p for p, r in self.registers.items()}
        self._values: dict[int, int] = {}
        self.pointer = next(iter(self.registers), 0)
        self._phase = "idle"          # "pointer": next written byte selects a register
        self._pending: list[int] = []
        self._out: list[int] = []
        self.reset()

    def reset(self) -> None:
        """Every register back to its reset value."""
        self._values = {p: r.reset for p, r in self.registers.items()}

    # -- values from Python ------------------------------------------------------------------
    def value(self, name: str) -> int:
        """The stored value of register ``name``."""
        return self._values[self._pointer_of(name)]

    def set_value(self, name: str, value: int) -> None:
        """Store ``value`` in register ``name`` (no hook runs)."""
        p = self._pointer_of(name)
        self._values[p] = value & ((1 << (8 * self.registers[p].width)) - 1)

    def _pointer_of(self, name: str) -> int:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"{type(self).__name__} has no register {name!r}") from None

    def _current(self, pointer: int) -> int:
        reg = self.registers[pointer]
        hook = getattr(self, f"read_{reg.name}", None)
        value = hook() if hook is not None else self._values[pointer]
        return int(value) & ((1 << (8 * reg.width)) - 1)

    def _bytes(self, pointer: int) -> list[int]:
        reg = self.registers.get(pointer)
        if reg is None or "r" not in reg.access:
            return [0xFF]          # nothing drives SDA: pull-ups
        return list(self._current(pointer).to_bytes(reg.width, self.byte_order))

    def _advance(self) -> None:
        pointers = sorted(self.registers)
        later = [p for p in pointers if p > self.pointer]
        self.pointer = later[0] if later else pointers[0]

    # -- the wire (I2cDevice) ------------------------------------------------------------------
    def start(self, read: bool) -> bool:
        self._commit_partial()
        if read:
            self._phase = "read"
            self._out = self._bytes(self.pointer)
        else:
            self._phase = "pointer"
            self._pending = []
        return True

    def write(self, byte: int) -> bool:
        if self._phase == "pointer":
            if byte not in self.registers:
                return False
            self.pointer = byte
            self._phase = "data"
            return True
        if self._phase == "full":    # past the register's width, no auto-increment
            return False
        reg = self.registers[self.pointer]
        if "w" not in reg.access:
            return False
        self._pending.append(byte)
        if len(self._pending) == reg.width:
            self._store(self.pointer, self._pending)
            self._pending = []
            if self.auto_increment:
                self._advance()
            else:
                self._phase = "full"
        return True

    def read(self, last: bool) -> int:
        if not self._out:
            if self.auto_increment:
                self._advance()
            self._out = self._bytes(self.pointer)
        return self._out.pop(0)

    def stop(self) -> None:
        self._commit_partial()
        self._phase = "idle"
        self._out = []

    def _commit_partial(self) -> None:
        self._pending = []          # an incomplete multi-byte write changes nothing

    def _store(self, pointer: int, data: list[int]) -> None:
        reg = self.registers[pointer]
        value = int.from_bytes(bytes(data), self.byte_order)
        self._values[pointer] = value
        hook = getattr(self, f"write_{reg.name}", None)
        if hook is not None:
            hook(value)
