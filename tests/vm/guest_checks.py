"""Checks run *inside* the VM (by test_vm.py, one boot for all): real i2c-stub and vhci-hcd.

Steps: load i2c-dev + i2c-stub and find the stub bus by name; seed it with a simulated
BME280's register file (smbus2); read it back through `Smbus2I2cBackend`; run the reference
BME280 driver over it, recorded; run the compiled bme280.wasm over it (``wasi-hw run``);
run ``wasi-hw parity`` for bme280.wasm (sim, smbus2 on the stub, replay, the reference
driver; the stub re-seeded with the parity sim leg's own model); ``wasi-hw parity`` for
hd44780.wasm (a second stub chip, write-only) and tmp102.wasm (a third, seeded with the
sim model's temperature register); load vhci-hcd, start
``wasi-hw usbip serve``, ``usbip attach``, talk to the echo device with pyusb, run the
compiled usb-echo.wasm through `PyusbUsbBackend`, recorded; ``wasi-hw parity`` for
usb-echo.wasm (sim, usbip, pyusb on vhci, replay); then ``wasi-hw run`` of usb-echo with
``usbip detach`` in the middle of it; then a second server with the mass-storage and HID
keyboard models, attached through vhci, and ``wasi-hw parity`` for msc and hid-keyboard
(sim, pyusb on vhci, replay).

Prints one line ``WASI-HW-CHECKS <json>`` with what each step observed; the pytest side
asserts on it. A step that raises records ``{"error": "<Type>: <message>"}`` and the
others still run. ``timings`` holds each step's wall-clock seconds. A driver .wasm that is
not built fails its step with that message. Not a test module: it needs root and a kernel with
loadable modules.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.environ.get("WASI_HW_REPO", "."))
STUB_ADDR = 0x76
LCD_ADDR = 0x27     # a second stub chip: the HD44780's PCF8574 backpack (write-only)
TMP_ADDR = 0x48     # a third: the TMP102
REPO = os.environ.get("WASI_HW_REPO", ".")
results: dict[str, object] = {}
timings: dict[str, float] = {}
results["timings"] = timings


def step(name):
    def wrap(fn):
        start = time.monotonic()
        try:
            results[name] = fn()
        except BaseException as err:  # noqa: BLE001 — every failure is reported, not raised
            results[name] = {"error": f"{type(err).__name__}: {err}",
                             "trace": traceback.format_exc(limit=4)}
        timings[name] = round(time.monotonic() - start, 2)
        return fn
    return wrap


def wasm_path(name: str) -> str:
    """build/wasm/NAME.wasm, or a clear failure: the test command builds drivers first."""
    path = os.path.join(REPO, "build", "wasm", f"{name}.wasm")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is not built (run `wasi-hw build {name}` first)")
    return path


def parity_cli(*argv: str) -> dict:
    """``wasi-hw parity ARGV --json`` — the CLI entry point, run in this process (one
    interpreter start less under TCG); its exit status and JSON report."""
    import contextlib
    import io

    from wasi_hw.apps.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["parity", *argv, "--json"])
    return {"rc": rc, "report": json.loads(out.getvalue())}


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


@step("kernel")
def _kernel():
    return {"release": os.uname().release, "uid": os.getuid()}


@step("modprobe_i2c")
def _modprobe_i2c():
    sh("modprobe", "i2c-dev")
    sh("modprobe", "i2c-stub", f"chip_addr={STUB_ADDR:#x},{LCD_ADDR:#x},{TMP_ADDR:#x}")
    adapters = {}
    for path in glob.glob("/sys/class/i2c-adapter/i2c-*/name"):
        adapters[path.split("/")[-2]] = open(path).read().strip()
    stub = [bus for bus, name in adapters.items() if name == "SMBus stub driver"]
    results["stub_bus"] = stub[0] if len(stub) == 1 else None
    return {"adapters": adapters, "dev_node": os.path.exists(f"/dev/{stub[0]}") if stub else False}


SEED_ENV = {"temperature_c": 23.25, "pressure_pa": 98_765.0, "humidity_pct": 41.0}


def _bme280_register_file(**env: float) -> dict[int, int]:
    """The register file of a simulated BME280 (`Bme280(**env)`) after one forced
    measurement, read over its simulated bus (the model as a driver sees it)."""
    from wasi_hw.host import SimI2cBackend
    from wasi_hw.host._i2c_backend import Read, Write
    from wasi_hw.host.devices import Bme280

    sim = SimI2cBackend(["sim"])
    sim.attach("sim", STUB_ADDR, Bme280(**env))
    sim.transaction("sim", STUB_ADDR, False, [Write(bytes([0xF2, 0x01, 0xF4, 0x25]))])
    sim.delay_ns(20_000_000)
    regs = {}
    for start, end in ((0x88, 0xA1), (0xD0, 0xD0), (0xE1, 0xE7), (0xF2, 0xFE)):
        (data,) = sim.transaction("sim", STUB_ADDR, False,
                                  [Write(bytes([start])), Read(end - start + 1)])
        regs.update({start + i: b for i, b in enumerate(data)})
    return regs


def _write_regs(bus, regs: dict[int, int]) -> None:
    for reg, value in sorted(regs.items()):
        bus.write_byte_data(STUB_ADDR, reg, value)


@step("seed")
def _seed():
    import smbus2

    regs = _bme280_register_file(**SEED_ENV)
    bus_no = int(results["stub_bus"].split("-")[1])
    with smbus2.SMBus(bus_no) as bus:
        _write_regs(bus, regs)
        # read back with plain smbus2, independent of our backend
        readback = {reg: bus.read_byte_data(STUB_ADDR, reg) for reg in regs}
        try:
            bus.i2c_rdwr(smbus2.i2c_msg.write(STUB_ADDR, [0xD0]), smbus2.i2c_msg.read(STUB_ADDR, 1))
            rdwr = "ok"
        except OSError as err:
            rdwr = err.errno
    return {"regs": {f"{r:#04x}": v for r, v in regs.items()},
            "readback_equal": readback == regs, "i2c_rdwr_errno": rdwr}


@step("smbus2_backend")
def _smbus2_backend():
    from wasi_hw import HwError
    from wasi_hw.host import Smbus2I2cBackend
    from wasi_hw.host._i2c_backend import Read, Write

    bus = results["stub_bus"]
    backend = Smbus2I2cBackend()
    out: dict[str, object] = {"buses": backend.buses()}
    try:
        (chip,) = backend.transaction(bus, STUB_ADDR, False, [Write(b"\xd0"), Read(1)])
        (calib,) = backend.transaction(bus, STUB_ADDR, False, [Write(b"\x88"), Read(26)])
        (calib2,) = backend.transaction(bus, STUB_ADDR, False, [Write(b"\xe1"), Read(7)])
        (data,) = backend.transaction(bus, STUB_ADDR, False, [Write(b"\xf7"), Read(8)])
        backend.transaction(bus, STUB_ADDR, False, [Write(b"\xf5\xa0")])  # register write
        (config,) = backend.transaction(bus, STUB_ADDR, False, [Write(b"\xf5"), Read(1)])
        out.update(chip=chip.hex(), calib=calib.hex(), calib2=calib2.hex(), data=data.hex(),
                   config=config.hex())
        for name, addr in (("absent", 0x50),):
            try:
                backend.transaction(bus, addr, False, [Write(b"\x00"), Read(1)])
                out[name] = "no error"
            except HwError as err:
                out[name] = err.kind
        try:
            backend.transaction("i2c-99", STUB_ADDR, False, [Write(b"\x00")])
            out["no_bus"] = "no error"
        except HwError as err:
            out["no_bus"] = err.kind
    finally:
        backend.close()
    return out


@step("trace_on_stub")
def _trace_on_stub():
    """The reference BME280 driver over the real kernel's i2c-stub, recorded."""
    import base64
    import io

    from wasi_hw.apps.reference import Bme280Driver
    from wasi_hw.host import RecordingI2cBackend, Smbus2I2cBackend, TraceWriter

    buf = io.BytesIO()
    bus = results["stub_bus"]
    meta = {"source": "tests/vm/guest_checks.py", "kernel": os.uname().release,
            "device": f"i2c-stub chip_addr={STUB_ADDR:#x} seeded with a simulated BME280"}

    def run(backend):
        driver = Bme280Driver(backend, bus, STUB_ADDR)
        driver.init()
        readings = [driver.poll() for _ in range(2)]
        backend.close()
        return readings

    meta["readings"] = run(Smbus2I2cBackend([bus]))  # the stub's registers are static
    with TraceWriter(buf, meta=meta) as writer:
        readings = run(RecordingI2cBackend(Smbus2I2cBackend([bus]), writer))
    return {"readings": readings, "trace": base64.b64encode(buf.getvalue()).decode()}


@step("wasm_driver_on_stub")
def _wasm_driver_on_stub():
    """The compiled BME280 driver under the kernel, on the real i2c-stub (smbus2):
    ``wasi-hw run`` — its CLI entry point, in this process (one interpreter start less)."""
    import contextlib
    import io

    from wasi_hw.apps.cli import main

    wasm = wasm_path("bme280")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["run", wasm, "--i2c", results["stub_bus"], "--allow", f"{STUB_ADDR:#x}",
                   "--json", "--polls", "2", "--interval-ms", "10",
                   "--cache-dir", "/tmp/wasi-hw-aot"])
    return {"rc": rc, "stdout": out.getvalue()[-2000:], "stderr": err.getvalue()[-2000:]}


@step("parity_i2c")
def _parity_i2c():
    """``wasi-hw parity bme280.wasm --backends sim,smbus2,replay --reference bme280`` with the
    smbus2 leg on the real i2c-stub. i2c-stub is plain memory (no measuring bit, no
    forced-mode conversion), so it is first re-seeded with the register file the parity sim
    leg's own model (a default `Bme280()`) has after one forced measurement: every register
    the driver reads then holds what the sim answers at that point, and the whole normalised
    trace (every request, every byte read) can be compared, not only the readings."""
    import smbus2

    wasm = wasm_path("bme280")
    bus = results["stub_bus"]
    with smbus2.SMBus(int(bus.split("-")[1])) as dev:
        _write_regs(dev, _bme280_register_file())  # the parity sim leg's model, defaults
    out = parity_cli(wasm, "--i2c", bus, "--allow", f"{STUB_ADDR:#x}",
                     "--backends", "sim,smbus2,replay", "--reference", "bme280",
                     "--interval-ms", "10")
    with smbus2.SMBus(int(bus.split("-")[1])) as dev:  # what the smbus2 leg left in the stub
        out["stub_ctrl_meas_after"] = dev.read_byte_data(STUB_ADDR, 0xF4)
    return out


def _usb_echo_driver():
    """The compiled usb-echo driver under the kernel, through pyusb + libusb + usbfs +
    vhci-hcd to our USB/IP server; its USB traffic recorded."""
    import base64
    import io

    wasm_path("usb-echo")
    from wasi_hw.host import PyusbUsbBackend, RealClock, RecordingUsbBackend, TraceWriter
    from wasi_hw.kernel import run_driver
    from wasi_hw.kernel._hosts import Backends
    from wasi_hw.kernel._manifest import load_manifest

    manifest = load_manifest(os.path.join(REPO, "drivers/usb-echo/manifest.toml"))
    buf = io.BytesIO()
    meta = {"source": "tests/vm/guest_checks.py", "kernel": os.uname().release,
            "device": "EchoDevice over USB/IP (wasi-hw usbip serve), vhci-hcd, pyusb"}
    with TraceWriter(buf, meta=meta) as writer:
        usb_backend = RecordingUsbBackend(PyusbUsbBackend(), writer)
        result = run_driver(manifest, Backends(usb=usb_backend, clock=RealClock()), polls=2)
        usb_backend.shutdown()
    import cbor2

    return {"state": result.state, "errors": result.errors,
            "readings_cbor": base64.b64encode(cbor2.dumps(result.readings)).decode(),
            "events": [str(e) for e in result.events if e.kind != "report"][-5:],
            "trace": base64.b64encode(buf.getvalue()).decode()}


SERVER: list = []  # the `wasi-hw usbip serve` process, stopped by the last step


def _manifest_on_stub(driver: str) -> str:
    """drivers/DRIVER/manifest.toml with its bus moved to the stub bus (a file in /tmp)."""
    text = open(os.path.join(REPO, f"drivers/{driver}/manifest.toml")).read()
    text = text.replace('"i2c-1"', f'"{results["stub_bus"]}"')
    text = text.replace(f'"../../build/wasm/{driver}.wasm"', json.dumps(wasm_path(driver)))
    path = f"/tmp/wasi-hw-vm-{driver}.toml"
    with open(path, "w") as f:
        f.write(text)
    return path


@step("parity_lcd")
def _parity_lcd():
    """``wasi-hw parity hd44780.wasm --manifest M --backends sim,smbus2,replay`` (M: the
    driver's manifest, on the stub bus): the LCD driver only writes (every byte drives the
    PCF8574's pins), so the stub chip at 0x27 needs no seed; its bytes go through the SMBus
    fallback (send byte / write byte data / I2C block write, the same wire bytes)."""
    wasm = wasm_path("hd44780")
    return parity_cli(wasm, "--manifest", _manifest_on_stub("hd44780"), "--backends",
                      "sim,smbus2,replay", "--interval-ms", "10")


@step("parity_tmp102")
def _parity_tmp102():
    """``wasi-hw parity tmp102.wasm --manifest M --backends sim,smbus2,replay``: the driver
    reads the 16-bit temperature register (pointer 0, two bytes: an I2C block read on the
    stub), so the stub chip at 0x48 is seeded with the two bytes the sim leg's own model (a
    default `Tmp102()`) answers after its first conversion."""
    import smbus2

    from wasi_hw.host import Read, SimI2cBackend, Write
    from wasi_hw.host.devices import Tmp102

    sim = SimI2cBackend(["i2c-1"])
    sim.attach("i2c-1", TMP_ADDR, Tmp102())
    sim.delay_ns(35_000_000)                  # the driver's own wait for a conversion
    (word,) = sim.transaction("i2c-1", TMP_ADDR, False, [Write(b"\x00"), Read(2)])
    bus = results["stub_bus"]
    with smbus2.SMBus(int(bus.split("-")[1])) as dev:
        for reg, value in enumerate(word):
            dev.write_byte_data(TMP_ADDR, reg, value)
    out = parity_cli(wasm_path("tmp102"), "--manifest", _manifest_on_stub("tmp102"),
                     "--backends", "sim,smbus2,replay", "--interval-ms", "10")
    out["seed"] = list(word)
    return out


@step("usbip")
def _usbip():
    sh("modprobe", "vhci-hcd")
    out: dict[str, object] = {"vhci": sorted(os.listdir("/sys/bus/platform/drivers/vhci_hcd"))}
    from wasi_hw.host.usbdevices import EchoDevice

    server = subprocess.Popen(
        [sys.executable, "-m", "wasi_hw", "usbip", "serve", "--device", "echo"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    SERVER.append(server)
    line = server.stdout.readline()
    out["server"] = line.strip()
    attach = subprocess.run(["usbip", "attach", "-r", "127.0.0.1", "-b", "1-1"],
                            capture_output=True, text=True)
    out["attach_rc"] = attach.returncode
    out["attach_err"] = attach.stderr.strip()[-300:]
    import libusb_package
    import usb.core
    import usb.util

    be = libusb_package.get_libusb1_backend()
    dev = None
    deadline = time.monotonic() + 20
    while dev is None and time.monotonic() < deadline:
        dev = usb.core.find(idVendor=EchoDevice.VENDOR_ID, idProduct=EchoDevice.PRODUCT_ID,
                            backend=be)
        time.sleep(0.1) if dev is None else None
    out["found"] = dev is not None
    if dev is not None:
        out["product"] = usb.util.get_string(dev, dev.iProduct)
        out["serial"] = usb.util.get_string(dev, dev.iSerialNumber)
        dev.set_configuration()
        dev.write(0x01, b"ping over usbip", timeout=2000)
        out["echo"] = bytes(dev.read(0x81, 64, timeout=2000)).decode()
        usb.util.dispose_resources(dev)
    return out


@step("parity_usb")
def _parity_usb():
    """``wasi-hw parity usb-echo.wasm --backends sim,usbip,pyusb,replay``: the pyusb leg
    through libusb, usbfs and vhci-hcd to the served echo device (the usbip leg is the
    runner's own in-process server, reached by `UsbipUsbBackend`). The served device's
    interrupt counter keeps counting across sessions (the sim and usbip legs get fresh
    models), so this runs before anything else reads its interrupt endpoint."""
    return parity_cli(wasm_path("usb-echo"), "--backends", "sim,usbip,pyusb,replay")


@step("usb_driver")
def _usb_driver():
    return _usb_echo_driver()


def _vhci_port(vid_pid: str) -> str:
    """The vhci port (``usbip port``) the device VID:PID is attached to."""
    port = None
    for line in sh("usbip", "port").splitlines():
        if line.startswith("Port "):
            port = line.split()[1].rstrip(":")
        elif vid_pid in line and port is not None:
            return str(int(port))
    raise AssertionError(f"{vid_pid} on no vhci port:\n" + sh("usbip", "port"))


DETACH_POLLS = 12


@step("usbip_detach")
def _usbip_detach():
    """``wasi-hw run`` (its own process) of usb-echo through `PyusbUsbBackend`; after its
    first reading ``usbip detach -p PORT`` pulls the device out from under it."""
    wasm_path("usb-echo")
    port = _vhci_port("1209:0001")
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wasi_hw", "run",
         os.path.join(REPO, "drivers/usb-echo/manifest.toml"), "--json",
         "--polls", str(DETACH_POLLS), "--interval-ms", "100"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out: dict[str, object] = {"port": port, "polls": DETACH_POLLS}
    import threading

    watchdog = threading.Timer(150, proc.kill)  # a run that never reads must not hang us
    watchdog.start()
    try:
        first = proc.stdout.readline()  # blocks until the first reading (or the run ends)
        out["first_reading_s"] = round(time.monotonic() - start, 2)
        detach = subprocess.run(["usbip", "detach", "-p", port], capture_output=True,
                                text=True, timeout=30)
        detached = time.monotonic()
        out["detach_rc"] = detach.returncode
        out["detach_out"] = (detach.stdout + detach.stderr).strip()[-300:]
        try:
            rest, err = proc.communicate(timeout=90)
            out["hung"] = False
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, err = proc.communicate()
            out["hung"] = True
        out["after_detach_s"] = round(time.monotonic() - detached, 2)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out["rc"] = proc.returncode
    out["readings"] = [json.loads(x) for x in (first + rest).splitlines() if x.startswith("{")]
    out["stderr"] = err[-3000:]
    out["vhci_ports_after"] = sh("usbip", "port")[-500:]
    return out


@step("usbip_stop")
def _usbip_stop():
    for server in SERVER:
        server.terminate()
        server.wait(timeout=10)
    return {"server_rc": [s.returncode for s in SERVER]}


@step("parity_usb_more")
def _parity_usb_more():
    """The mass-storage and HID keyboard drivers on the kernel's USB stack: a second
    ``wasi-hw usbip serve`` with ``msc:IMAGE`` (1 MiB, the size of the sim leg's model) and
    ``hid`` (the sim leg's default keyboard), both attached through vhci-hcd, then
    ``wasi-hw parity DRIVER --backends sim,pyusb,replay`` for msc and hid-keyboard, then
    both detached and the server stopped."""
    for name in ("msc", "hid-keyboard"):
        wasm_path(name)
    image = "/tmp/wasi-hw-vm-msc.img"
    if os.path.exists(image):
        os.unlink(image)
    server = subprocess.Popen(
        [sys.executable, "-m", "wasi_hw", "usbip", "serve", "--device", f"msc:{image}",
         "--msc-size", "1M", "--device", "hid"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out: dict[str, object] = {"server": server.stdout.readline().strip()}
    try:
        out["attach_rc"] = [subprocess.run(["usbip", "attach", "-r", "127.0.0.1", "-b", b],
                                           capture_output=True, text=True).returncode
                            for b in ("1-1", "1-2")]
        from wasi_hw.host import PyusbUsbBackend

        deadline = time.monotonic() + 20
        want = {"1209:0003", "1209:0002"}
        seen: set[str] = set()
        while not want <= seen and time.monotonic() < deadline:
            backend = PyusbUsbBackend()
            seen = {f"{d.vendor_id:04x}:{d.product_id:04x}" for d in backend.devices()}
            if not want <= seen:
                time.sleep(0.2)
        out["enumerated"] = sorted(seen)
        for name in ("msc", "hid-keyboard"):
            out[name] = parity_cli(wasm_path(name), "--backends", "sim,pyusb,replay")
        out["detach_rc"] = [subprocess.run(["usbip", "detach", "-p", _vhci_port(v)],
                                           capture_output=True, text=True).returncode
                            for v in sorted(want)]
    finally:
        server.terminate()
        server.wait(timeout=10)
    out["server_rc"] = server.returncode
    return out


print("WASI-HW-CHECKS " + json.dumps(results, default=repr), flush=True)
