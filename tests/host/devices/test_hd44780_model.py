"""PCF8574 + HD44780 model: 4-bit protocol decoded from the expander's pins, instructions,
DDRAM layout, busy time and the busy flag."""

from __future__ import annotations

import pytest

from wasi_hw.host import Read, SimI2cBackend, Write
from wasi_hw.host.devices import Pcf8574Hd44780

A = 0x27
RS, RW, E, BL = 0x01, 0x02, 0x04, 0x08


def nibble(value, rs=0):
    base = (value << 4) | BL | (RS if rs else 0)
    return bytes([base | E, base])


def send(sim, byte, rs=0):
    sim.transaction("i2c-1", A, False, [Write(nibble(byte >> 4, rs) + nibble(byte & 0xF, rs))])


def init(sim):
    sim.delay_ns(50_000_000)
    for n, wait in ((3, 4_500_000), (3, 150_000), (3, 150_000), (2, 150_000)):
        sim.transaction("i2c-1", A, False, [Write(nibble(n))])
        sim.delay_ns(wait)
    for byte in (0x28, 0x0C, 0x01, 0x06):
        send(sim, byte)
        sim.delay_ns(2_000_000)


def text(sim, s):
    for ch in s.encode():
        send(sim, ch, rs=1)


@pytest.fixture
def sim():
    sim = SimI2cBackend()
    sim.attach("i2c-1", A, Pcf8574Hd44780(16, 2))
    return sim


def test_init_and_two_lines(sim):
    lcd = sim.device("i2c-1", A)
    init(sim)
    assert not lcd.eight_bit and lcd.two_line and lcd.display_on and lcd.backlight
    text(sim, "Hello")
    send(sim, 0x80 | 0x40)
    text(sim, "World!")
    assert lcd.lines() == ["Hello           ", "World!          "]
    assert lcd.lost == 0


def test_writes_during_clear_are_lost(sim):
    lcd = sim.device("i2c-1", A)
    init(sim)
    text(sim, "abc")
    send(sim, 0x01)  # clear: 1.52 ms
    text(sim, "x")
    assert lcd.lost == 1 and lcd.lines()[0] == " " * 16
    sim.delay_ns(2_000_000)
    send(sim, 0x02)
    sim.delay_ns(2_000_000)
    text(sim, "ok")
    assert lcd.lines()[0].startswith("ok")


def test_line_wrap_shift_and_entry_mode(sim):
    lcd = sim.device("i2c-1", A)
    init(sim)
    send(sim, 0x80 | 0x26)
    text(sim, "ABC")  # 0x26, 0x27, then wraps to 0x40
    assert lcd.lines()[1][0] == "C"
    send(sim, 0x18)  # shift display left: column 0 shows address 1
    assert lcd.lines()[1][0] == " "
    send(sim, 0x1C)  # and back right
    send(sim, 0x80 | 0x05)
    send(sim, 0x04)  # decrement
    text(sim, "ZY")
    assert lcd.lines()[0][4:6] == "YZ"


def test_busy_flag_and_address_read(sim):
    lcd = sim.device("i2c-1", A)
    init(sim)
    send(sim, 0x80 | 0x45)
    sim.delay_ns(100_000)
    base = 0xF0 | BL | RW
    out = sim.transaction("i2c-1", A, False, [Write(bytes([base, base | E])), Read(1),
                                                Write(bytes([base, base | E])), Read(1),
                                                Write(bytes([base]))])
    hi, lo = out[0][0] >> 4, out[1][0] >> 4
    assert hi == 0x4 and lo == 0x5  # BF = 0, AC = 0x45
    assert lcd.ac == 0x45  # reading the busy flag does not move the address counter
    send(sim, 0x01)
    out = sim.transaction("i2c-1", A, False, [Write(bytes([base, base | E])), Read(1),
                                                Write(bytes([base]))])
    assert out[0][0] & 0x80  # busy


def test_four_rows(sim):
    sim.detach("i2c-1", A)
    lcd = sim.attach("i2c-1", A, Pcf8574Hd44780(20, 4))
    init(sim)
    for addr, s in ((0x00, "one"), (0x40, "two"), (0x14, "three"), (0x54, "four")):
        send(sim, 0x80 | addr)
        text(sim, s)
    assert [line.rstrip() for line in lcd.lines()] == ["one", "two", "three", "four"]


def test_rust_driver_wire_sequence():
    """drivers/hd44780's init + show, byte for byte (its embedded-hal-mock script)."""
    sim = SimI2cBackend()
    lcd = sim.attach("i2c-1", A, Pcf8574Hd44780(16, 2))

    def w(*b):
        sim.transaction("i2c-1", A, False, [Write(bytes(b))])

    def cmd(byte):
        w(*nibble(byte >> 4), *nibble(byte & 0xF))

    w(0x08)
    sim.delay_ns(50_000_000)
    for n, wait in ((0x3, 4_500_000), (0x3, 150_000), (0x3, 150_000), (0x2, 150_000)):
        w(*nibble(n))
        sim.delay_ns(wait)
    for c in (0x28, 0x08, 0x01):
        cmd(c)
    sim.delay_ns(2_000_000)
    for c in (0x06, 0x0C):
        cmd(c)
    for addr, text in ((0x80, b"Hi              "), (0xC0, b"you             ")):
        cmd(addr)
        w(*(b for ch in text for b in nibble(ch >> 4, 1) + nibble(ch & 0xF, 1)))
    assert lcd.lines() == ["Hi              ", "you             "]
    assert lcd.lost == 0 and lcd.display_on and lcd.backlight and lcd.two_line
    assert lcd.instructions == [0x30, 0x30, 0x30, 0x20, 0x28, 0x08, 0x01, 0x06, 0x0C, 0x80, 0xC0]


def test_lines_decode_the_a00_character_rom(sim):
    """Codes are shown as the A00 ROM draws them: 0xDF is the degree ring, 0x5C the yen
    sign, 0x7E/0x7F arrows, 0xB1 katakana A; a CGRAM code (no fixed glyph) shows "?"."""
    lcd = sim.device("i2c-1", A)
    init(sim)
    for code in b"21.5\xdfC \x5c\x7e\x7f\xb1\xe4\x00":
        send(sim, code, rs=1)
    assert lcd.lines()[0] == "21.5°C ¥→←ｱμ?   "
    assert lcd.lost == 0


def test_a00_rom_covers_what_drivers_print():
    from wasi_hw.host.devices import A00_ROM

    assert all(A00_ROM[c] == chr(c) for c in range(0x20, 0x7E) if c != 0x5C)
    assert A00_ROM[0xDF] == "°" and A00_ROM[0x5C] == "¥"
    assert all(len(t) == 1 for t in A00_ROM.values())   # one cell, one character
