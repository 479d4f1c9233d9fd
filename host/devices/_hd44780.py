"""A Hitachi HD44780 character LCD behind an NXP PCF8574 I/O expander (the common "I2C LCD
backpack"), per both datasheets.

PCF8574 wire: every byte written sets the eight quasi-bidirectional pins P7..P0 (each ACKed);
a read returns the pin levels — the written levels, except where the LCD drives D7..D4
during a read cycle. Backpack wiring (default, changeable with ``pins``): P0 RS, P1 RW,
P2 E, P3 backlight, P4..P7 D4..D7.

HD44780 side: the controller samples RS/RW/D7..D4 on each falling edge of E. After power-on
it is in 8-bit mode (D3..D0 unconnected read as 0), so the usual 0x3, 0x3, 0x3, 0x2 nibbles
switch it to 4-bit mode; from then on each byte is two nibbles, high first. Instructions:
clear (0x01), home (0x02), entry mode (0x04 | I/D | S), display control (0x08 | D | C | B),
cursor/display shift (0x10 | S/C | R/L), function set (0x20 | DL | N | F), CGRAM address
(0x40 | a), DDRAM address (0x80 | a); data writes go to DDRAM/CGRAM at the address counter,
which moves per I/D (2-line DDRAM: 0x00–0x27 and 0x40–0x67, 1-line: 0x00–0x4F). Reads with
RW=1 return busy flag + address counter (RS=0) or RAM data (RS=1).

Timing on the bus clock: 40 ms power-on; clear and home take 1.52 ms, everything else
37 µs. An instruction or data byte that arrives while the controller is busy is lost (counted
in ``lost``), as on the real part.
"""

from __future__ import annotations

from ._base import I2cDevice

__all__ = ["Pcf8574Hd44780", "A00_ROM"]


def _a00() -> dict[int, str]:
    rom = {c: chr(c) for c in range(0x20, 0x7E)}       # ASCII, except:
    rom[0x5C] = "¥"                                      # yen sign, not backslash
    rom[0x7E], rom[0x7F] = "→", "←"                      # arrows, not '~' and DEL
    rom[0xA0] = " "
    for c in range(0xA1, 0xDF):                          # JIS X 0201 katakana and marks
        rom[c] = chr(0xFF61 + c - 0xA1)                  # U+FF61 ｡ … U+FF9E ﾞ
    rom[0xDF] = "°"
    rom.update({0xE0: "α", 0xE1: "ä", 0xE2: "β", 0xE3: "ε", 0xE4: "μ", 0xE5: "σ", 0xE6: "ρ",
                0xE8: "√", 0xEC: "¢", 0xEE: "ñ", 0xEF: "ö", 0xF2: "θ", 0xF3: "∞", 0xF4: "Ω",
                0xF5: "ü", 0xF6: "Σ", 0xF7: "π", 0xFD: "÷", 0xFE: " ", 0xFF: "█"})
    return rom


#: Character code → the text the HD44780's A00 (Japanese standard) character ROM draws for
#: it, per the datasheet's character table: 0x20–0x7D ASCII except 0x5C, which is "¥";
#: 0x7E "→", 0x7F "←"; 0xA1–0xDE the JIS X 0201 half-width katakana (U+FF61–U+FF9E);
#: 0xDF the small raised ring of the semi-voiced mark, which is the glyph every driver uses
#: as the degree sign, so it decodes to "°" (U+00B0); of 0xE0–0xFF the Greek/math glyphs
#: with an exact Unicode equivalent. Codes 0x00–0x0F (the eight CGRAM characters, twice),
#: the unused 0x10–0x1F and 0x80–0x9F, and the 5×10 glyphs without one (0xE7 g, 0xE9 ⁻¹, …)
#: are not in the map: `lines()` shows them as "?".
A00_ROM: dict[int, str] = _a00()

_LONG_NS = 1_520_000
_SHORT_NS = 37_000


class Pcf8574Hd44780(I2cDevice):
    """A ``cols``×``rows`` LCD; `lines()` shows what it displays."""

    def __init__(self, cols: int = 16, rows: int = 2, *, pins: dict[str, int] | None = None,
                 power_on_ns: int = 40_000_000) -> None:
        super().__init__()
        self.cols, self.rows = cols, rows
        p = {"rs": 0, "rw": 1, "e": 2, "bl": 3, "d4": 4, "d5": 5, "d6": 6, "d7": 7}
        p.update(pins or {})
        self._pin = p
        self.port = 0xFF  # PCF8574 powers up with all pins high
        self.ddram = bytearray(b" " * 0x80)
        self.cgram = bytearray(64)
        self.eight_bit = True
        self.two_line = False
        self.large_font = False
        self.display_on = self.cursor_on = self.blink_on = False
        self.increment, self.shift_display = True, False
        self.ac = 0
        self.in_cgram = False
        self.shift = 0
        self.lost = 0
        self.instructions: list[int] = []  # every executed instruction byte, for tests
        self._power_on_ns = power_on_ns
        self._busy_until = power_on_ns
        self._nibble: int | None = None  # the high nibble of a 4-bit transfer
        self._read_nibble = 0

    def attach(self, clock, stretch_limit_ns) -> None:
        super().attach(clock, stretch_limit_ns)
        self._busy_until = clock.now_ns() + self._power_on_ns

    # --- PCF8574 -------------------------------------------------------------------------
    def _bit(self, value: int, name: str) -> int:
        return value >> self._pin[name] & 1

    def _data_nibble(self, value: int) -> int:
        return sum(self._bit(value, f"d{4 + i}") << i for i in range(4))

    @property
    def backlight(self) -> bool:
        return bool(self._bit(self.port, "bl"))

    def write(self, byte: int) -> bool:
        old, self.port = self.port, byte
        if self._bit(old, "e") and not self._bit(byte, "e"):
            self._falling_edge(old)
        return True

    def read(self, last: bool) -> int:
        value = self.port
        if self._bit(value, "e") and self._bit(value, "rw"):
            nibble = self._lcd_read_nibble(value)
            for i in range(4):
                bit = 1 << self._pin[f"d{4 + i}"]
                value = value | bit if nibble >> i & 1 else value & ~bit
        return value

    # --- HD44780 -------------------------------------------------------------------------
    def _busy(self) -> bool:
        return self.clock.now_ns() < self._busy_until

    def _lcd_read_nibble(self, port: int) -> int:
        if self._bit(port, "rs"):
            mem = self.cgram[self.ac & 0x3F] if self.in_cgram else self.ddram[self.ac & 0x7F]
            byte = mem
        else:
            byte = (0x80 if self._busy() else 0) | (self.ac & 0x7F)
        if self.eight_bit:
            return byte >> 4
        return byte >> 4 if self._read_nibble == 0 else byte & 0x0F

    def _falling_edge(self, port: int) -> None:
        rs, rw, nibble = self._bit(port, "rs"), self._bit(port, "rw"), self._data_nibble(port)
        if rw:
            if self.eight_bit or self._read_nibble == 1:
                self._read_nibble = 0
                if rs and not self._busy():  # a RAM read advances the address counter
                    self._move(self.increment)
            else:
                self._read_nibble = 1
            return
        if self.eight_bit:
            byte = nibble << 4
        elif self._nibble is None:
            self._nibble = nibble
            return
        else:
            byte, self._nibble = self._nibble << 4 | nibble, None
        if self._busy():
            self.lost += 1
            return
        if rs:
            self._write_data(byte)
        else:
            self._instruction(byte)

    def _move(self, forward: bool) -> None:
        if self.in_cgram:
            self.ac = (self.ac + (1 if forward else -1)) & 0x3F
            return
        a = self.ac + (1 if forward else -1)
        if self.two_line:
            if forward and a == 0x28:
                a = 0x40
            elif forward and a == 0x68:
                a = 0x00
            elif not forward and a == 0x3F:
                a = 0x27
            elif not forward and a == -1:
                a = 0x67
        else:
            a %= 0x50
        self.ac = a

    def _write_data(self, byte: int) -> None:
        self._busy_until = self.clock.now_ns() + _SHORT_NS
        if self.in_cgram:
            self.cgram[self.ac & 0x3F] = byte
        else:
            self.ddram[self.ac & 0x7F] = byte
            if self.shift_display:
                self.shift += 1 if self.increment else -1
        self._move(self.increment)

    def _instruction(self, byte: int) -> None:
        self.instructions.append(byte)
        took = _SHORT_NS
        if byte & 0x80:
            self.ac, self.in_cgram = byte & 0x7F, False
        elif byte & 0x40:
            self.ac, self.in_cgram = byte & 0x3F, True
        elif byte & 0x20:
            self.eight_bit = bool(byte & 0x10)
            self.two_line = bool(byte & 0x08)
            self.large_font = bool(byte & 0x04)
            self._nibble = None
        elif byte & 0x10:
            right = bool(byte & 0x04)
            if byte & 0x08:
                self.shift += -1 if right else 1
            else:
                self._move(right)
        elif byte & 0x08:
            self.display_on, self.cursor_on, self.blink_on = (
                bool(byte & 4),
                bool(byte & 2),
                bool(byte & 1),
            )
        elif byte & 0x04:
            self.increment, self.shift_display = bool(byte & 2), bool(byte & 1)
        elif byte & 0x02:
            self.ac, self.in_cgram, self.shift, took = 0, False, 0, _LONG_NS
        elif byte & 0x01:
            self.ddram[:] = b" " * 0x80
            self.ac, self.in_cgram, self.shift, self.increment, took = 0, False, 0, True, _LONG_NS
        self._busy_until = self.clock.now_ns() + took

    # --- what the glass shows ------------------------------------------------------------
    def lines(self) -> list[str]:
        """The text of each visible row (DDRAM through the display shift), each character
        code decoded as the A00 character ROM draws it (`A00_ROM`)."""
        char = A00_ROM.get
        width = 0x28 if self.two_line else 0x50
        bases = [0x00, 0x40, self.cols, 0x40 + self.cols] if self.two_line else [0x00, self.cols]
        out = []
        for row in range(self.rows):
            base = bases[row] if row < len(bases) else 0
            start = base & 0x40
            out.append(
                "".join(
                    char(self.ddram[start + ((base - start + col + self.shift) % width)], "?")
                    for col in range(self.cols)
                )
            )
        return out
