"""Sensirion SHT3x-DIS (humidity, temperature) model, per its datasheet, I2C interface.

Wire: a command is the write header and 16 bits MSB first (``0x2400``); data is read with
a read header: words of 2 bytes, each followed by its CRC-8 (poly 0x31, init 0xFF, §4.12).
Measurement data is ``T_msb T_lsb CRC RH_msb RH_lsb CRC`` with
T = −45 + 175·S_T/65535 °C and RH = 100·S_RH/65535 %; once read (fully or partly) it is gone.

Commands: single shot 0x2C06/0x2C0D/0x2C10 (clock stretching: the read header is ACKed and
SCL held until the result is ready) and 0x2400/0x240B/0x2416 (no stretching: a read header
before the result is ready, or with no result, is NACKed); periodic 0x20xx…0x27xx and ART
0x2B32 with fetch 0xE000 and break 0x3093; soft reset 0x30A2 (1.5 ms, status bit 4 set);
heater 0x306D/0x3066; status 0xF32D (bits 15 alert, 13 heater, 4 reset, 1 command status);
clear status 0x3041. Unknown commands, or commands other than fetch/break/reset/status/heater
during periodic mode, NACK their second byte and set status bit 1. While a measurement or
reset is running the sensor NACKs write headers.

Timing on the bus clock: maximum measurement durations 15 / 6 / 4 ms (high / medium / low
repeatability).
"""

from __future__ import annotations

from ._base import I2cDevice
from ._datasheet import crc8

__all__ = ["Sht3x"]

_SINGLE = {0x2C06: (15_000_000, True), 0x2C0D: (6_000_000, True), 0x2C10: (4_000_000, True),
           0x2400: (15_000_000, False), 0x240B: (6_000_000, False), 0x2416: (4_000_000, False)}
_REPEAT_NS = {"high": 15_000_000, "medium": 6_000_000, "low": 4_000_000}
# periodic mode command → (measurements per second, repeatability)
_PERIODIC = {}
for _mps, _msb, _lsbs in ((0.5, 0x20, (0x32, 0x24, 0x2F)), (1, 0x21, (0x30, 0x26, 0x2D)),
                          (2, 0x22, (0x36, 0x20, 0x2B)), (4, 0x23, (0x34, 0x22, 0x29)),
                          (10, 0x27, (0x37, 0x21, 0x2A))):
    for _lsb, _rep in zip(_lsbs, ("high", "medium", "low"), strict=True):
        _PERIODIC[_msb << 8 | _lsb] = (_mps, _rep)
_ART = 0x2B32
_FETCH, _BREAK, _RESET, _HEATER_ON, _HEATER_OFF, _STATUS, _CLEAR = (
    0xE000, 0x3093, 0x30A2, 0x306D, 0x3066, 0xF32D, 0x3041)


def _word(value: int) -> bytes:
    data = bytes([value >> 8 & 0xFF, value & 0xFF])
    return data + bytes([crc8(data)])


class Sht3x(I2cDevice):
    """SHT3x at 0x44/0x45; set ``temperature_c`` / ``humidity_pct`` to change the air."""

    def __init__(self, temperature_c: float = 23.0, humidity_pct: float = 40.0) -> None:
        super().__init__()
        self.temperature_c = temperature_c
        self.humidity_pct = humidity_pct
        self.commands: list[int] = []  # every accepted command, for tests
        self._power_on(0)

    def _power_on(self, busy_until: int) -> None:
        self.status = 0x8010  # alert pending + reset detected after power-up
        self._busy_until = busy_until
        self._pending: tuple[int, bool] | None = None  # (ready at, stretch) of a single shot
        self._data = b""  # what a read header returns next
        self._out = b""
        self._periodic: tuple[int, int] | None = None  # (start, period ns)
        self._periodic_taken = -1  # index of the last fetched periodic result
        self._periodic_rep_ns = 0
        self._cmd: list[int] = []
        self._reading = False

    def sample(self) -> bytes:
        """The 6 bytes a measurement of the current air produces."""
        s_t = min(max(round((self.temperature_c + 45.0) * 65535 / 175.0), 0), 0xFFFF)
        s_rh = min(max(round(self.humidity_pct * 65535 / 100.0), 0), 0xFFFF)
        return _word(s_t) + _word(s_rh)

    def _busy(self) -> bool:
        return self.clock.now_ns() < self._busy_until

    # --- wire ----------------------------------------------------------------------------
    def start(self, read: bool) -> bool:
        self._cmd = []
        self._reading = read
        now = self.clock.now_ns()
        if not read:
            return not self._busy() and (self._pending is None or now >= self._pending[0])
        if self._pending is not None:
            ready, stretch = self._pending
            if now < ready:
                if not stretch:
                    return False
                self.stretch(ready - now)
            self._pending = None
            self._out, self._data = self.sample(), b""
            return True
        if self._data:
            self._out, self._data = self._data, b""
            return True
        return False

    def write(self, byte: int) -> bool:
        if self._reading:
            return False
        self._cmd.append(byte)
        if len(self._cmd) == 2:
            return self._command(self._cmd[0] << 8 | self._cmd[1])
        return len(self._cmd) < 2  # commands carry no data here: a third byte is NACKed

    def read(self, last: bool) -> int:
        if not self._out:
            return 0xFF
        byte, self._out = self._out[0], self._out[1:]
        return byte

    def stop(self) -> None:
        if self._reading:
            self._out = b""  # a result is read once, even partly
        self._reading = False

    # --- commands ------------------------------------------------------------------------
    def _reject(self) -> bool:
        self.status |= 0x0002
        return False

    def _command(self, cmd: int) -> bool:
        now = self.clock.now_ns()
        if self._periodic is not None and cmd not in (
            _FETCH,
            _BREAK,
            _RESET,
            _STATUS,
            _HEATER_ON,
            _HEATER_OFF,
        ):
            return self._reject()
        if cmd != _STATUS:  # reading the status must not hide the previous command's outcome
            self.status &= ~0x0002
        self.commands.append(cmd)
        if cmd in _SINGLE:
            duration, stretch = _SINGLE[cmd]
            self._pending = (now + duration, stretch)
            self._data = b""
        elif cmd in _PERIODIC or cmd == _ART:
            mps, rep = _PERIODIC.get(cmd, (4, "high"))
            self._periodic = (now, int(1e9 / mps))
            self._periodic_taken = -1
            self._periodic_rep_ns = _REPEAT_NS[rep]
        elif cmd == _FETCH:
            self._data = b""
            if self._periodic is not None:
                start, period = self._periodic
                done = (now - start - self._periodic_rep_ns) // period  # last finished result
                if now >= start + self._periodic_rep_ns and done > self._periodic_taken:
                    self._periodic_taken = done
                    self._data = self.sample()
        elif cmd == _BREAK:
            self._periodic = None
            self._busy_until = now + 1_000_000
        elif cmd == _RESET:
            self._power_on(now + 1_500_000)
        elif cmd == _HEATER_ON:
            self.status |= 0x2000
        elif cmd == _HEATER_OFF:
            self.status &= ~0x2000
        elif cmd == _STATUS:
            self._data = _word(self.status)
        elif cmd == _CLEAR:
            self.status &= ~0x8C10  # alert, RH/T tracking alerts, reset detected
        else:
            self.commands.pop()
            return self._reject()
        return True
