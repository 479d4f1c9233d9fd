"""Smbus2I2cBackend against the real i2c-dev ABI (umockdev): the unmodified smbus2 in a child
process talks ioctls to simulated chips; results and transaction sequences must equal a
direct simulator run."""

from __future__ import annotations

import errno
import json

import pytest

from wasi_hw.host import Read, RealClock, SimI2cBackend, Write
from wasi_hw.host.devices import Bme280, NackAfter, Sht3x, Tmp102

from umockdev_i2c import F_10BIT, F_READ_I2C_BLOCK, FULL_I2C, SMBUS_ONLY, EmulatedI2cDev, run_on


def world(clock=None):
    """The same simulated board for both runs."""
    sim = SimI2cBackend(clock=clock, bus_hz=None)
    sim.attach("i2c-1", 0x76, Bme280(temperature_c=19.5, pressure_pa=100_100.0, humidity_pct=38.0))
    sim.attach("i2c-1", 0x44, Sht3x(temperature_c=21.25, humidity_pct=47.5))
    sim.attach("i2c-1", 0x48, Tmp102(temperature_c=30.0))
    sim.attach("i2c-1", 0x20, NackAfter(1))
    sim.attach("i2c-1", 0x150, Tmp102(), ten_bit=True)
    return sim


def history(sim):
    return [(b, a, t, ops, res) for b, a, t, ops, res in sim.history]


TRANSACTIONS = [
    ("i2c-1", 0x76, False, [Write(b"\xd0"), Read(1)]),            # register read
    ("i2c-1", 0x76, False, [Write(b"\x88"), Read(26)]),           # burst read
    ("i2c-1", 0x76, False, [Write(b"\xf2\x01\xf4\x00")]),         # register pairs
    ("i2c-1", 0x76, False, [Write(b"\xf4"), Read(2)]),
    ("i2c-1", 0x48, False, [Write(b"\x01"), Read(2)]),
    ("i2c-1", 0x48, False, [Write(b"\x02\x1c\x00")]),
    ("i2c-1", 0x48, False, [Write(b"\x02"), Read(2)]),
    ("i2c-1", 0x48, False, [Write(b"")]),                         # quick
    ("i2c-1", 0x48, False, [Write(b"\x03")]),                     # pointer only
    ("i2c-1", 0x48, False, [Read(1)]),                            # receive byte
    ("i2c-1", 0x44, False, [Write(b"\xf3\x2d")]),
    ("i2c-1", 0x44, False, [Read(3)]),                            # bare multi-byte read
    ("i2c-1", 0x51, False, [Write(b"\x00"), Read(1)]),            # nobody there
    ("i2c-1", 0x20, False, [Write(b"\x01\x02\x03")]),             # NACK on data
    ("i2c-1", 0x150, True, [Write(b"\x03"), Read(2)]),            # 10-bit
]


def test_full_adapter_matches_simulator():
    direct = world()
    expected = run_on(direct, TRANSACTIONS)
    emulated = world(RealClock())
    with EmulatedI2cDev(emulated, funcs=FULL_I2C | F_10BIT) as emu:
        got = emu.run_transactions(TRANSACTIONS)
        assert I2C_RDWR_ONLY(emu)
    # the kernel ABI cannot say which byte was NACKed: EREMOTEIO after data → nack_unknown
    expected = [("err", "nack_unknown") if e == ("err", "nack_data") else e for e in expected]
    assert got == expected
    assert history(emulated) == history(direct)


def I2C_RDWR_ONLY(emu) -> bool:
    """A plain I2C adapter is driven with I2C_RDWR only (plus the one I2C_FUNCS)."""
    ioctls = emu.handlers["i2c-1"].ioctls
    return ioctls[0] == 0x0705 and set(ioctls[1:]) == {0x0707}


def test_smbus_only_adapter_uses_smbus_transfers():
    direct = world()
    expected = run_on(direct, TRANSACTIONS)
    emulated = world(RealClock())
    with EmulatedI2cDev(emulated, funcs=SMBUS_ONLY, absent_errno=errno.ENODEV) as emu:
        got = emu.run_transactions(TRANSACTIONS)
        assert 0x0707 not in emu.handlers["i2c-1"].ioctls
    # what SMBus cannot express is refused before touching the bus
    refused = {11: "bare 3-byte read", 14: "10-bit address"}
    for i, (want, have) in enumerate(zip(expected, got, strict=True)):
        if i in refused:
            assert have == ("err", "not_supported"), refused[i]
        elif want == ("err", "nack_data"):
            assert have == ("err", "nack_unknown")
        else:
            assert have == want, TRANSACTIONS[i]
    sent = [h for i, h in enumerate(history(direct)) if i not in refused]
    assert history(emulated) == sent


def test_smbus_word_fallback_without_i2c_block():
    funcs = SMBUS_ONLY & ~F_READ_I2C_BLOCK
    txs = [("i2c-1", 0x48, False, [Write(b"\x02"), Read(2)]),
           ("i2c-1", 0x76, False, [Write(b"\x88"), Read(3)])]
    direct = world()
    expected = run_on(direct, txs)
    emulated = world(RealClock())
    with EmulatedI2cDev(emulated, funcs=funcs) as emu:
        got = emu.run_transactions(txs)
    assert got == [expected[0], ("err", "not_supported")]


_DRIVERS_CHILD = r'''
import json
from wasi_hw import HwError
from wasi_hw.host import Smbus2I2cBackend
from wasi_hw.apps.reference import Bme280Driver, Sht3xDriver
b = Smbus2I2cBackend()
out = []
for drv in (Bme280Driver(b, "i2c-1", 0x76), Sht3xDriver(b, "i2c-1", 0x44)):
    try:
        drv.init()
        out.append(drv.poll())
    except HwError as err:
        out.append(err.kind)
print(json.dumps(out))
'''


def _drivers_direct(backend):
    from wasi_hw.apps.reference import Bme280Driver, Sht3xDriver
    out = []
    for drv in (Bme280Driver(backend, "i2c-1", 0x76), Sht3xDriver(backend, "i2c-1", 0x44)):
        drv.init()
        out.append(drv.poll())
    return out


@pytest.mark.parametrize("funcs", [FULL_I2C, SMBUS_ONLY], ids=["i2c", "smbus-only"])
def test_reference_drivers_identical_under_kernel_abi(funcs):
    direct = world()
    expected = _drivers_direct(direct)
    emulated = world(RealClock())
    with EmulatedI2cDev(emulated, funcs=funcs) as emu:
        proc = emu.run_python(_DRIVERS_CHILD)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.splitlines()[-1])
    if funcs == SMBUS_ONLY:
        # the BME280's register pattern maps onto SMBus transfers; the SHT3x's bare 6-byte
        # read cannot be expressed: refused before anything reaches the bus
        assert got == [expected[0], "not_supported"]
        sent = history(direct)[:-1]
    else:
        assert got == expected
        sent = history(direct)
    assert history(emulated) == sent


def test_devices_command_lists_emulated_bus():
    with EmulatedI2cDev(world(RealClock()), {"i2c-1": "i2c-1", "i2c-7": "i2c-1"},
                        adapter_name="Simulated adapter") as emu:
        proc = emu.run_python("from wasi_hw.apps.cli import main; sys.exit(main(['devices']))")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any("/dev/i2c-1" in line and "Simulated adapter" in line for line in lines), proc.stdout
    assert any("/dev/i2c-7" in line for line in lines), proc.stdout


@pytest.mark.parametrize("chip,address", [("bme280", 0x76), ("sht3x", 0x44)])
def test_wasm_driver_over_kernel_abi_matches_reference(chip, address):
    """The compiled Rust driver, run by ``wasi-hw run`` on the smbus2 backend under the
    emulated i2c-dev, reports what the reference driver reads from the simulator."""
    from pathlib import Path

    from wasi_hw.apps.reference import Bme280Driver, Sht3xDriver
    wasm = Path(__file__).resolve().parents[2] / "build" / "wasm" / f"{chip}.wasm"
    if not wasm.exists():
        pytest.skip(f"{wasm} not built (wasi-hw build)")
    direct = world()
    ref = (Bme280Driver if chip == "bme280" else Sht3xDriver)(direct, "i2c-1", address)
    ref.init()
    expected = ref.poll()
    emulated = world(RealClock())
    with EmulatedI2cDev(emulated) as emu:
        proc = emu.run_python(
            "from wasi_hw.apps.cli import main\n"
            f"sys.exit(main(['run', {str(wasm)!r}, '--allow', '{address:#x}', '--json', "
            "'--polls', '1']))"
        )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == expected
    assert [h[3] for h in history(emulated)] == [h[3] for h in history(direct)]
