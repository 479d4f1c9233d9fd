"""Texas Instruments TMP102 temperature sensor model, per its datasheet (SBOS397), I2C.

Wire: the first byte of a write is the pointer register (P1 P0: 0 temperature, 1
configuration, 2 T_LOW, 3 T_HIGH; upper bits must be 0 — else the byte is NACKed); the next
two bytes, MSB first, are written to that register (temperature is read-only: ACKed,
ignored). A read returns the pointed register MSB first, repeating it for longer reads.

Temperature format: 12-bit two's complement, 0.0625 °C/LSB, left-justified (bits 15..4,
bit 0 = 0); with EM (extended mode, config bit 4) 13 bits (bits 15..3) and bit 0 = 1, range
to +150 °C. T_LOW / T_HIGH use the same format (power-up 75 °C / 80 °C).

Configuration (power-up 0x60A0): OS R1 R0 F1 F0 POL TM SD | CR1 CR0 AL EM 0 0 0 0. R1 R0
read 11; conversion rate CR 0.25/1/4/8 Hz; a conversion takes 26 ms and updates the
temperature register when it ends (0 before the first). SD stops conversions; writing OS=1
in shutdown starts one conversion (OS reads 0 during it, 1 after). AL follows the
comparator (TM=0: active from T ≥ T_HIGH until T < T_LOW, each for F consecutive
conversions, F = 1/2/4/6) or interrupt mode (TM=1: set by the fault, cleared by any read),
inverted by POL; the alert pin state is `alert`.
"""

from __future__ import annotations

from ._base import I2cDevice

__all__ = ["Tmp102"]

CONVERSION_NS = 26_000_000
_PERIOD_NS = (4_000_000_000, 1_000_000_000, 250_000_000, 125_000_000)
_FAULTS = (1, 2, 4, 6)


class Tmp102(I2cDevice):
    """TMP102 at 0x48–0x4B; set ``temperature_c`` to change the die temperature."""

    def __init__(self, temperature_c: float = 25.0) -> None:
        super().__init__()
        self.temperature_c = temperature_c
        self.pointer = 0
        self.config = 0x60A0
        self.temp_raw = 0
        self.tlow = 0x4B00
        self.thigh = 0x5000
        self._alert_active = False  # comparator state: T crossed T_HIGH (before POL)
        self._interrupt_pending = False
        self._faults = 0
        self._next_done: int | None = CONVERSION_NS
        self._oneshot_done: int | None = None
        self._buf: list[int] = []
        self._reading = False
        self.conversions = 0

    def attach(self, clock, stretch_limit_ns) -> None:
        super().attach(clock, stretch_limit_ns)
        self._next_done = clock.now_ns() + CONVERSION_NS  # power-up conversion starts now

    # --- formats -------------------------------------------------------------------------
    @property
    def extended(self) -> bool:
        return bool(self.config & 0x0010)

    def encode(self, celsius: float) -> int:
        """°C → register value in the current format."""
        counts = round(celsius / 0.0625)
        if self.extended:
            counts = min(max(counts, -55 * 16), 150 * 16)
            return ((counts & 0x1FFF) << 3) | 1
        counts = min(max(counts, -55 * 16), 0x7FF)
        return (counts & 0xFFF) << 4

    def decode(self, raw: int) -> float:
        """Register value in the current format → °C."""
        if self.extended:
            counts = raw >> 3
            counts -= 0x2000 if counts & 0x1000 else 0
        else:
            counts = raw >> 4
            counts -= 0x1000 if counts & 0x800 else 0
        return counts * 0.0625

    # --- conversions ---------------------------------------------------------------------
    def _convert(self) -> None:
        self.temp_raw = self.encode(self.temperature_c)
        self.conversions += 1
        t = self.decode(self.temp_raw)
        needed = _FAULTS[(self.config >> 11) & 3]
        if not self._alert_active:
            fault = t >= self.decode(self.thigh)
        else:
            fault = t < self.decode(self.tlow)
        self._faults = self._faults + 1 if fault else 0
        if self._faults >= needed:  # now watching the other threshold
            self._faults = 0
            self._alert_active = not self._alert_active
            self._interrupt_pending = True  # interrupt mode: active until a read

    def _update(self) -> None:
        now = self.clock.now_ns()
        if self._oneshot_done is not None and now >= self._oneshot_done:
            self._oneshot_done = None
            self._convert()
        if self._next_done is not None and now >= self._next_done:
            period = _PERIOD_NS[(self.config >> 6) & 3]
            n = (now - self._next_done) // period + 1
            for _ in range(min(n, 8)):
                self._convert()
            self._next_done += n * period
            if self.config & 0x0100:  # shutdown: the running conversion was the last
                self._next_done = None

    @property
    def alert(self) -> bool:
        """The ALERT pin / AL bit level (True = high)."""
        self._update()
        active_high = bool(self.config & 0x0400)
        if self.config & 0x0200:
            active = self._interrupt_pending
        else:
            active = self._alert_active
        return active if active_high else not active

    def _read_register(self, p: int) -> int:
        if p == 0:
            return self.temp_raw
        if p == 1:
            converting = self._oneshot_done is not None
            os_bit = 0x8000 if (self.config & 0x0100 and not converting) else 0
            al = 0x0020 if self.alert else 0
            return (self.config & 0x1FD0) | 0x6000 | os_bit | al
        return self.tlow if p == 2 else self.thigh

    def _write_register(self, p: int, value: int) -> None:
        if p == 1:
            was_shutdown = bool(self.config & 0x0100)
            self.config = (value & 0x1FD0) | 0x6000
            now = self.clock.now_ns()
            if self.config & 0x0100:
                if value & 0x8000 and self._oneshot_done is None:
                    self._oneshot_done = now + CONVERSION_NS
            elif was_shutdown or self._next_done is None:
                self._next_done = now + CONVERSION_NS
        elif p == 2:
            self.tlow = value & (0xFFF8 if self.extended else 0xFFF0)
        elif p == 3:
            self.thigh = value & (0xFFF8 if self.extended else 0xFFF0)

    # --- wire ----------------------------------------------------------------------------
    def start(self, read: bool) -> bool:
        self._update()
        self._buf = []
        self._reading = read
        return True

    def write(self, byte: int) -> bool:
        if not self._buf:
            if byte & 0xFC:
                return False
            self.pointer = byte
            self._buf.append(byte)
            return True
        self._buf.append(byte)
        self._touch("w", self.pointer)
        if len(self._buf) == 3:
            self._write_register(self.pointer, self._buf[1] << 8 | self._buf[2])
            return True
        return len(self._buf) < 3

    def read(self, last: bool) -> int:
        self._touch("r", self.pointer)
        value = self._read_register(self.pointer)
        byte = value >> 8 if len(self._buf) % 2 == 0 else value & 0xFF
        self._buf.append(byte)
        return byte

    def stop(self) -> None:
        if self._reading and self.config & 0x0200:
            self._interrupt_pending = False  # interrupt mode: any read clears the alert
        self._reading = False
