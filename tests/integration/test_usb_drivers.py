"""The USB drivers end to end: each `.wasm` built by `wasi-hw build`, loaded from its
manifest (`drivers/<name>/manifest.toml`), run by the kernel with its grants against the
device models of `wasi_hw.host.usbdevices` — in-process on a `SimUsbBackend`, and the
main cases also over USB/IP (`UsbipServer` on localhost, `UsbipUsbBackend`): the same
binary must behave the same on both.

Checked: the readings the drivers report (decoded CBOR), what reached the device models
(the echo buffer, the keyboard's protocol/idle, the mass-storage image on disk), and the
failure paths through the real stack — a corrupted echo, a missing device, an ungranted
endpoint (denied and audited), a failing SCSI write (REQUEST SENSE), a bad `lba`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import struct
from pathlib import Path
from types import MappingProxyType

import pytest

from wasi_hw.host import SimUsbBackend, UsbipServer, UsbipUsbBackend
from wasi_hw.host.usbdevices import EchoDevice
from wasi_hw.kernel import Backends, Kernel, load_manifest, run_driver

ROOT = Path(__file__).resolve().parents[2]
DRIVERS = ("usb-echo", "hid-keyboard", "msc")


@pytest.fixture(scope="module")
def built(build_drivers) -> None:
    build_drivers(*DRIVERS)


def manifest(name: str, **config: str):
    m = load_manifest(ROOT / "drivers" / name / "manifest.toml")
    if config:
        m = dataclasses.replace(m, config=MappingProxyType({**m.config, **config}))
    return m


def run(m, *models, polls: int, cache: Path, transport: str = "sim"):
    with contextlib.ExitStack() as stack:
        if transport == "usbip":
            server = stack.enter_context(UsbipServer(list(models), port=0))
            backend = UsbipUsbBackend(*server.address)
            stack.callback(backend.shutdown)
        else:
            backend = SimUsbBackend(list(models))
        return run_driver(m, Backends(usb=backend), polls=polls, cache_dir=cache)


TRANSPORTS = pytest.mark.parametrize("transport", ["sim", "usbip"])


def logs(result, level: str) -> list[str]:
    return [e.data[1] for e in result.events if e.kind == "log" and e.data[0] == level]


# -- usb-echo ------------------------------------------------------------------------------

ECHO_BYTES_PER_CYCLE = 32 + 1 + 64 + 512 + 4096  # control buffer + bulk round trips


@TRANSPORTS
def test_echo_round_trips_verified(built, cache, transport):
    echo = EchoDevice()
    r = run(manifest("usb-echo"), echo, polls=3, cache=cache, transport=transport)
    assert r.state == "running" and r.errors == 0 and r.faults == 0, r.events
    assert [x["cycles"] for x in r.readings] == [1, 2, 3]
    last = r.readings[-1]
    assert last["ok"] is True and last["errors"] == 0
    assert last["round_trips"] == 3 * 5
    assert last["bytes"] == 3 * ECHO_BYTES_PER_CYCLE
    assert last["serial"] == "ECHO0001" and len(last["port"]) >= 1
    (opened,) = logs(r, "info")
    assert "Echo serial ECHO0001 at bus 1 address" in opened and "(full speed)" in opened
    assert last["connected"] is True and last["arrivals"] == last["departures"] == 0
    assert [x["counter"] for x in r.readings] == [0, 1, 2]  # interrupt IN counter, in order
    assert len(echo.buffer) == 32  # SET_BUFFER reached the device
    assert r.audit == []  # nothing outside the grant was tried


def test_echo_serial_filter_picks_the_device(built, cache):
    a, b = EchoDevice(serial="ECHO-A"), EchoDevice(serial="ECHO-B")
    r = run(manifest("usb-echo", serial="ECHO-B"), a, b, polls=1, cache=cache)
    (reading,) = r.readings
    assert reading["ok"] is True and reading["serial"] == "ECHO-B"
    assert len(b.buffer) == 32 and a.buffer == b""  # only B saw the control round trip
    r = run(manifest("usb-echo", serial="NOPE"), a, b, polls=1, cache=cache)
    assert r.readings == [] and any("NotFound" in m for m in logs(r, "error"))


def test_echo_follows_unplug_and_replug(built, cache):
    first = EchoDevice()
    backend = SimUsbBackend([first])
    events = []
    with Kernel(Backends(usb=backend), on_event=events.append, cache_dir=cache) as kernel:
        kernel.add(manifest("usb-echo"))
        kernel.run(rounds=1)
        backend.detach(first)
        kernel.run(rounds=2)
        backend.attach(EchoDevice(serial="ECHO0002"))
        kernel.run(rounds=3)
    readings = [e.data for e in events if e.kind == "report"]
    assert [r["connected"] for r in readings] == [True, False, True]
    assert [(r["arrivals"], r["departures"]) for r in readings] == [(0, 0), (0, 1), (1, 1)]
    assert readings[1]["ok"] is False and "failure" not in readings[1]  # no cycle while away
    assert readings[2]["ok"] is True and readings[2]["serial"] == "ECHO0002"
    assert readings[2]["counter"] == 0  # the new device's own interrupt counter
    assert readings[2]["cycles"] == 2 and readings[2]["errors"] == 0


class CorruptingEcho(EchoDevice):
    """Flips one byte of the first bulk IN packet of 512 bytes or more."""

    def __init__(self) -> None:
        super().__init__()
        self.corrupted = False

    def in_(self, endpoint: int, max_len: int):
        data = super().in_(endpoint, max_len)
        if endpoint == 0x81 and data and len(data) >= 512 and not self.corrupted:
            self.corrupted = True
            data = bytes([data[0] ^ 0x55]) + data[1:]
        return data


def test_echo_detects_corrupted_data(built, cache):
    r = run(manifest("usb-echo"), CorruptingEcho(), polls=2, cache=cache)
    first, second = r.readings
    assert first["ok"] is False and first["errors"] == 1
    assert "Mismatch" in first["failure"] and "bulk_in" in first["failure"]
    assert second["ok"] is True and second["errors"] == 1  # recovered on the next cycle
    assert r.errors == 1  # the failing poll returned an error to the kernel


class DuplicatingEcho(EchoDevice):
    """Queues the first 64-byte bulk OUT twice: the echo stream is off by 64 bytes after."""

    def __init__(self) -> None:
        super().__init__()
        self.duplicated = False

    def out(self, endpoint: int, data: bytes) -> int:
        n = super().out(endpoint, data)
        if len(data) == 64 and not self.duplicated:
            self.duplicated = True
            super().out(endpoint, data)
        return n


def test_echo_recovers_a_desynchronised_stream_by_reset(built, cache):
    r = run(manifest("usb-echo"), DuplicatingEcho(), polls=3, cache=cache)
    assert [x["ok"] for x in r.readings] == [False, True, True]
    assert "Mismatch" in r.readings[0]["failure"] and r.readings[0]["resets"] == 1
    assert r.readings[1]["counter"] == 0  # reset restarted the device's counter
    assert r.audit == []


def test_echo_without_reset_grant_drains_instead(built, cache):
    m = manifest("usb-echo")
    grant = dataclasses.replace(m.usb[0], operations=frozenset({"set_configuration"}))
    r = run(dataclasses.replace(m, usb=(grant,)), DuplicatingEcho(), polls=2, cache=cache)
    assert [x["ok"] for x in r.readings] == [False, True]
    assert r.readings[1]["resets"] == 0
    assert [a["call"] for a in r.audit] == ["wasi_usb.reset_device"]  # tried, denied, audited
    assert any("draining" in m for m in logs(r, "warn"))


def test_echo_without_device_fails_init_clearly(built, cache):
    r = run(manifest("usb-echo"), polls=1, cache=cache)
    assert r.readings == []
    assert any("NotFound" in m and "4617" in m for m in logs(r, "error")), r.events  # 0x1209


def test_echo_ungranted_endpoint_is_denied_and_audited(built, cache):
    m = manifest("usb-echo")
    grant = dataclasses.replace(m.usb[0], endpoints=frozenset({0x01, 0x81}))  # no 0x82
    m = dataclasses.replace(m, usb=(grant,))
    r = run(m, EchoDevice(), polls=1, cache=cache)
    (reading,) = r.readings
    assert reading["ok"] is False
    assert "interrupt_in" in reading["failure"] and "Access" in reading["failure"]
    assert any(a.get("call", "").endswith("interrupt_transfer") for a in r.audit), r.audit


def test_echo_cli_run_with_manifest(built, cache, capsys):
    from wasi_hw.apps.cli import main

    rc = main(["run", str(ROOT / "drivers/usb-echo/manifest.toml"), "--usb-sim", "echo",
               "--polls", "2", "--json", "--cache-dir", str(cache)])
    assert rc == 0
    data = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert [d["cycles"] for d in data] == [1, 2] and all(d["ok"] for d in data)
    assert data[0]["port"] == "01"  # CBOR byte strings print as hex


def test_echo_cli_run_over_usbip_from_another_process(built, cache, capsys):
    """The remote-device path: `wasi-hw usbip serve --device echo` in a child process (as
    usbipd would export a device on another machine), `wasi-hw run --usbip HOST:PORT`."""
    import sys

    from wasi_hw.apps.cli import main

    sys.path.insert(0, str(ROOT / "tests" / "host"))
    from usbip_testing import ServerProcess

    with ServerProcess("echo") as server:
        rc = main(["run", str(ROOT / "drivers/usb-echo/manifest.toml"),
                   "--usbip", f"{server.host}:{server.port}", "--polls", "2", "--json",
                   "--cache-dir", str(cache)])
        captured = capsys.readouterr()
        assert rc == 0, captured.err
        data = [json.loads(line) for line in captured.out.splitlines() if line.strip()]
        assert [d["cycles"] for d in data] == [1, 2] and all(d["ok"] for d in data), data
        assert data[-1]["serial"] == "ECHO0001" and data[-1]["errors"] == 0
        assert server.proc.poll() is None        # the server outlives the client's imports
    # nobody listening there any more: the driver finds no device, exit 1, one clear line
    rc = main(["run", str(ROOT / "drivers/usb-echo/manifest.toml"),
               "--usbip", f"{server.host}:{server.port}", "--polls", "1",
               "--cache-dir", str(cache)])
    assert rc == 1


@pytest.mark.parametrize("argv, message", [
    (["--usbip", "host:99999"], "expected HOST[:PORT]"),
    (["--usbip", "a b"], "expected HOST[:PORT]"),
    (["--usbip", "127.0.0.1", "--usb-sim", "echo"], "--usbip and --usb-sim"),
])
def test_cli_usbip_bad_arguments_are_one_line(capsys, argv, message):
    from wasi_hw.apps.cli import main

    assert main(["run", str(ROOT / "drivers/usb-echo/manifest.toml"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


# -- hid-keyboard --------------------------------------------------------------------------

@TRANSPORTS
def test_keyboard_events_and_text(built, cache, transport):
    from wasi_hw.host.usbdevices._keyboard import HidKeyboard

    typed = "Hello, World 42!\n"
    kbd = HidKeyboard(typed)
    r = run(manifest("hid-keyboard"), kbd, polls=3, cache=cache, transport=transport)
    assert r.errors == 0 and r.faults == 0, r.events
    if transport == "sim":  # (the USB/IP server resets the device when the import closes)
        assert (kbd.protocol, kbd.idle) == (0, 0)  # SET_PROTOCOL(boot) and SET_IDLE(0) arrived
    assert "".join(x["text"] for x in r.readings) == typed
    events = [e for x in r.readings for e in x["events"]]
    presses = [e for e in events if e["event"] == "press" and "key" in e]
    assert "".join(e["key"] for e in presses) == typed
    # every key pressed is released again, shifted characters come with Left Shift (0xE1)
    assert sum(e["event"] == "release" for e in events) == sum(
        e["event"] == "press" for e in events
    )
    assert sum(e["usage"] == 0xE1 and e["event"] == "press" for e in events) == 3  # H W !
    assert next(e for e in presses if e["key"] == "H")["modifiers"] == 0x02
    assert sum(x["reports"] for x in r.readings) == 2 * len(typed)
    assert r.readings[-1]["reports"] == 0 and r.readings[-1]["events"] == []  # idle: nothing new


def test_keyboard_rollover_report_is_ignored(built, cache):
    from wasi_hw.host.usbdevices._keyboard import HidKeyboard

    reports = [bytes((0, 0, 0x04, 0, 0, 0, 0, 0)), bytes((0, 0, 1, 1, 1, 1, 1, 1)),
               bytes((0, 0, 0x04, 0x05, 0, 0, 0, 0)), bytes(8)]
    r = run(manifest("hid-keyboard"), HidKeyboard(reports=reports), polls=1, cache=cache)
    (reading,) = r.readings
    assert [(e["event"], e["usage"]) for e in reading["events"]] == [
        ("press", 4), ("press", 5), ("release", 4), ("release", 5)]
    assert reading["text"] == "ab"


# -- msc -------------------------------------------------------------------------------------

def _msc(tmp_path: Path, blocks: int = 64, cls=None):
    from wasi_hw.host.usbdevices._mass_storage import MassStorage

    image = MassStorage.create_image(tmp_path / "disk.img", blocks)
    return (cls or MassStorage)(image), image


@TRANSPORTS
def test_msc_write_read_verify(built, cache, tmp_path, transport):
    disk, image = _msc(tmp_path)
    try:
        r = run(
            manifest("msc", lba="5", count="2"), disk, polls=2, cache=cache, transport=transport
        )
    finally:
        disk.close()
    assert r.errors == 0 and r.faults == 0, r.events
    last = r.readings[-1]
    assert (last["vendor"], last["product"]) == ("WASI-HW", "Virtual Disk")
    assert (last["blocks"], last["block_size"], last["capacity_bytes"]) == (64, 512, 64 * 512)
    assert last["ok"] is True and last["range_checks"] == 2 and last["recoveries"] == 0
    assert (last["writes"], last["verified_bytes"]) == (2, 2 * 1024)
    raw = image.read_bytes()
    for lba in (5, 6):  # the second write's pattern is on the medium, naming its block
        block = raw[lba * 512:(lba + 1) * 512]
        assert block[:4] == b"WHW1" and struct.unpack_from("<II", block, 4) == (lba, 2)
    assert raw[:512] == bytes(512) and raw[7 * 512:] == bytes(57 * 512)  # nothing else touched


def test_msc_failed_write_reports_sense(built, cache, tmp_path):
    from wasi_hw.host.usbdevices._mass_storage import MassStorage

    class FailingDisk(MassStorage):
        def _write_blocks(self, data: bytes) -> int:  # the medium refuses every write
            self._sense = (0x03, 0x0C, 0x00)  # MEDIUM ERROR / WRITE ERROR
            return 1

    disk, _ = _msc(tmp_path, cls=FailingDisk)
    try:
        r = run(manifest("msc"), disk, polls=1, cache=cache)
    finally:
        disk.close()
    (reading,) = r.readings
    assert reading["ok"] is False and reading["verified_bytes"] == 0
    assert "WRITE(10)" in reading["failure"] and "key: 3" in reading["failure"]
    assert "asc: 12" in reading["failure"]  # 0x0C, from REQUEST SENSE
    assert r.errors == 1


def test_msc_bad_csw_tag_triggers_reset_recovery(built, cache, tmp_path):
    from wasi_hw.host.usbdevices._mass_storage import MassStorage

    class WrongTagOnce(MassStorage):
        """Answers the 4th command (the first WRITE(10)) with a CSW carrying a wrong tag."""

        csws = 0
        resets = 0

        def in_(self, endpoint: int, max_len: int):
            data = super().in_(endpoint, max_len)
            if data and len(data) == 13 and data[:4] == b"USBS":
                self.csws += 1
                if self.csws == 4:
                    data = (
                        data[:4]
                        + struct.pack("<I", struct.unpack_from("<I", data, 4)[0] ^ 0xFF)
                        + data[8:]
                    )
            return data

        def control(self, setup, data_out):
            if setup.request == 0xFF:
                self.resets += 1
            return super().control(setup, data_out)

    disk, _ = _msc(tmp_path, cls=WrongTagOnce)
    try:
        r = run(manifest("msc"), disk, polls=2, cache=cache)
    finally:
        disk.close()
    first, second = r.readings
    assert first["ok"] is False and "BadCsw" in first["failure"] and "Tag" in first["failure"]
    assert first["recoveries"] == 1 and disk.resets == 1  # Bulk-Only reset reached the device
    assert second["ok"] is True and second["verified_bytes"] == 512  # works again after recovery


def test_msc_lba_past_the_medium_is_a_config_error(built, cache, tmp_path):
    disk, _ = _msc(tmp_path, blocks=8)
    try:
        r = run(manifest("msc", lba="8"), disk, polls=1, cache=cache)
    finally:
        disk.close()
    assert r.readings == []
    assert any("BadConfig" in m and "lba" in m for m in logs(r, "error")), r.events
