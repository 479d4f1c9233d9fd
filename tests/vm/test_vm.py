"""The real-kernel tier: QEMU boots Debian's kernel, i2c-stub and vhci-hcd answer our backends.

The tooling's pure parts (cpio, vmlinux extraction, module order) are tested without a VM.
The VM checks boot once per session (`guest_checks.py` does every in-guest step and prints
JSON); the tooling itself gets three short boots: exit code and isolation, the CLI, the
timeout.
"""

from __future__ import annotations

import errno
import json
import lzma
import shlex
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from wasi_hw.host.devices import Bme280Calibration, bme280_compensate

import vm

HERE = Path(__file__).parent
REPO = HERE.parents[1]


# --------------------------------------------------------------------------- no VM needed


@pytest.mark.skipif(shutil.which("cpio") is None, reason="cpio not installed")
def test_initramfs_cpio_is_read_by_gnu_cpio(tmp_path):
    archive = vm._Cpio()
    archive.file("init", b"#!/bin/sh\necho hi\n", 0o755)
    archive.file("boot-modules/a.ko", b"\x7fELF" + b"x" * 1001)
    archive.chardev("dev/console", 5, 1)
    data = archive.finish()
    assert len(data) % 512 == 0
    listing = subprocess.run(["cpio", "-itv", "--quiet"], input=data, capture_output=True,
                             check=True).stdout.decode()
    lines = {line.split()[-1]: line for line in listing.splitlines()}
    assert set(lines) == {"init", "boot-modules", "boot-modules/a.ko", "dev", "dev/console"}
    assert lines["init"].startswith("-rwxr-xr-x") and lines["dev/console"].startswith("crw")
    assert lines["dev/console"].split()[4:6] == ["5,", "1"]  # major, minor
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["cpio", "-id", "--quiet", "--no-absolute-filenames", "boot-modules/a.ko"],
                   input=data, cwd=out, check=True)
    assert (out / "boot-modules/a.ko").read_bytes() == b"\x7fELF" + b"x" * 1001


def test_extract_vmlinux_finds_the_elf_stream():
    elf = b"\x7fELF" + bytes(range(256)) * 40
    decoy = lzma.compress(b"not a kernel", format=lzma.FORMAT_XZ)
    bz = b"MZ setup code" + b"\0" * 300 + decoy + b"pad" + lzma.compress(elf) + b"\0" * 64
    assert vm.extract_vmlinux(bz) == elf


@pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd not installed")
def test_extract_vmlinux_zstd():
    elf = b"\x7fELF" + b"kernel" * 500
    z = subprocess.run(["zstd", "-q", "-c"], input=elf, capture_output=True, check=True).stdout
    assert vm.extract_vmlinux(b"setup" * 100 + z + b"trailer") == elf


def test_extract_vmlinux_without_kernel_is_one_line():
    with pytest.raises(vm.VmUnavailable) as err:
        vm.extract_vmlinux(b"MZ" + b"\0" * 1000)
    assert "\n" not in str(err.value) and "no XZ/zstd" in str(err.value)


def test_module_closure_loads_dependencies_first(tmp_path):
    base = tmp_path / "lib/modules/9.9"
    (base / "kernel").mkdir(parents=True)
    (base / "modules.dep").write_text(
        "kernel/fs/9p.ko: kernel/net/9pnet.ko kernel/fs/netfs.ko\n"
        "kernel/net/9pnet_virtio.ko: kernel/net/9pnet.ko kernel/virtio/virtio_ring.ko\n"
        "kernel/net/9pnet.ko:\n"
        "kernel/fs/netfs.ko:\n"
        "kernel/virtio/virtio_ring.ko:\n"
        "kernel/fs/overlay.ko:\n")
    (base / "modules.builtin").write_text("kernel/drivers/virtio/virtio_pci.ko\n")
    kernel = vm.Kernel("9.9", tmp_path / "vmlinux", tmp_path / "lib/modules")
    mods = [p.name for p in vm._module_closure(kernel, vm._BOOT_MODULES)]
    assert mods == ["virtio_ring.ko", "9pnet.ko", "9pnet_virtio.ko", "netfs.ko", "9p.ko",
                    "overlay.ko"]  # virtio_pci is built in
    with pytest.raises(vm.VmUnavailable, match="lacks i2c_stub"):
        vm._module_closure(kernel, ["i2c_stub"])


def test_busybox_must_be_static(monkeypatch):
    monkeypatch.setattr(vm, "_busybox", lambda: sys.executable)  # a dynamic executable
    with pytest.raises(vm.VmUnavailable,
                       match="dynamically linked .apt-get install busybox-static"):
        vm._static_busybox()


def test_prepare_without_apt_uses_the_cache(vm_kernel, monkeypatch):
    def no_apt():
        raise vm.VmUnavailable("VM tier unavailable: apt-cache failed")

    monkeypatch.setattr(vm, "_kernel_package", no_apt)
    assert vm.prepare() == vm_kernel
    monkeypatch.setenv("WASI_HW_VM_CACHE", "/nonexistent/wasi-hw-vm-cache")
    with pytest.raises(vm.VmUnavailable, match="apt-cache failed"):
        vm.prepare()


def test_cli_run_needs_a_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        vm.main(["run", "--"])
    assert exit_.value.code == 2 and "needs a command" in capsys.readouterr().err


# --------------------------------------------------------------------------- the tooling


def test_exit_code_output_and_isolation(run_in_vm, tmp_path):
    probe = Path.cwd() / f".vm-probe-{uuid.uuid4().hex}"
    script = f"""
echo "to stdout"
echo "to stderr" >&2
uname -r
pwd
echo "$GREETING"
touch {probe} && echo "guest wrote the probe"
mkdir -p /lib/modules/extra && echo "root is writable"
while read -r _ mnt type _; do
  case $mnt in /proc|/sys|/dev|/dev/pts|/dev/shm|/tmp|/run) echo "mount $mnt $type";; esac
done < /proc/mounts
test -c /dev/null && test -r /proc/self/status && test -d /sys/class && echo "kernel interfaces"
exit 7
"""
    result = run_in_vm(script, 90, env={"GREETING": "hello 'quoted' world"})
    assert result.returncode == 7
    lines = result.output.splitlines()
    assert lines[:2] == ["to stdout", "to stderr"]
    assert lines[2].endswith("-amd64") and lines[3] == str(Path.cwd())
    assert lines[4] == "hello 'quoted' world"
    assert "guest wrote the probe" in lines and "root is writable" in lines
    # the chroot has the kernel's interfaces (no udev, see vm.py), /tmp and /run its own
    assert sorted(line for line in lines if line.startswith("mount ")) == [
        "mount /dev devtmpfs", "mount /dev/pts devpts", "mount /dev/shm tmpfs",
        "mount /proc proc", "mount /run tmpfs", "mount /sys sysfs", "mount /tmp tmpfs"]
    assert "kernel interfaces" in lines
    assert not probe.exists()  # the guest's writes land in its tmpfs overlay only
    assert "@@WASI-HW-VM" not in result.output and "@@WASI-HW-VM-EXIT 7@@" in result.console


def test_a_checkout_under_tmp_stays_reachable(run_in_vm):
    """The guest's /tmp is a fresh tmpfs, yet a working directory (a checkout) under the
    host's /tmp is there at the same path, writable in the guest only; the rest of the host's
    /tmp is not."""
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="wasi-hw-vm-cwd-") as tmp:
        here = Path(tmp, "checkout")
        here.mkdir()
        (here / "marker").write_text("from the host\n")
        with tempfile.NamedTemporaryFile(dir="/tmp", prefix="wasi-hw-vm-other-") as other:
            script = f"""
pwd
cat marker
echo guest > written && echo "wrote in the checkout"
test -e {shlex.quote(other.name)} || echo "the rest of /tmp is the guest's own"
while read -r _ mnt type _; do [ "$mnt" = /tmp ] && echo "mount $mnt $type"; done < /proc/mounts
exit 0
"""
            result = run_in_vm(script, 90, cwd=here)
        assert result.returncode == 0, result.output
        assert result.output.splitlines() == [
            str(here), "from the host", "wrote in the checkout",
            "the rest of /tmp is the guest's own", "mount /tmp tmpfs"]
        assert not (here / "written").exists()


@pytest.mark.vm
def test_cli_run_returns_the_guest_status():
    proc = subprocess.run([sys.executable, str(HERE / "vm.py"), "run", "--", "sh", "-c",
                           "echo via-cli; exit 3"], capture_output=True, text=True, timeout=120)
    if proc.returncode == 77:
        pytest.skip(proc.stderr.strip())
    assert (proc.returncode, proc.stdout) == (3, "via-cli\n")


def test_qemu_that_cannot_start_is_one_line_unavailable(vm_kernel, monkeypatch):
    monkeypatch.setenv("ACCEL", "no-such-accelerator")
    with pytest.raises(vm.VmUnavailable) as err:
        vm.run_in_vm("true", 30)
    msg = str(err.value)
    assert msg.startswith("VM tier unavailable: QEMU failed: ") and "\n" not in msg


def test_timeout_kills_the_guest(run_in_vm):
    with pytest.raises(vm.VmError, match="timed out after 6 s"):
        run_in_vm("sleep 600", 6)


# --------------------------------------------------------------------------- in-guest checks


@pytest.fixture(scope="module")
def checks(run_in_vm) -> dict:
    # 900 s: a hang guard (TCG on a loaded 2-core host took 423 s for all the steps)
    result = run_in_vm(f"exec {sys.executable} {HERE / 'guest_checks.py'}", 900)
    for line in result.output.splitlines():
        if line.startswith("WASI-HW-CHECKS "):
            return json.loads(line.split(" ", 1)[1])
    raise AssertionError(f"guest checks printed no result (exit {result.returncode}):\n"
                         + result.console[-3000:])


def _ok(value):
    if isinstance(value, dict) and "error" in value:
        pytest.fail(f"in-guest step failed: {value['error']}\n{value.get('trace', '')}")
    return value


def test_guest_runs_the_debian_kernel(checks, vm_kernel):
    assert _ok(checks["kernel"]) == {"release": vm_kernel.release, "uid": 0}


def test_i2c_stub_bus_is_found_by_name(checks):
    mod = _ok(checks["modprobe_i2c"])
    bus = checks["stub_bus"]
    assert mod["adapters"][bus] == "SMBus stub driver" and mod["dev_node"] is True


def test_stub_seeded_with_the_bme280_register_file(checks):
    seed = _ok(checks["seed"])
    regs = {int(k, 16): v for k, v in seed["regs"].items()}
    assert regs[0xD0] == 0x60  # chip id
    block1, block2 = Bme280Calibration().to_nvm()  # the model's calibration image
    assert bytes(regs[0x88 + i] for i in range(len(block1))) == block1
    assert bytes(regs[0xE1 + i] for i in range(len(block2))) == block2
    assert seed["readback_equal"] is True
    # an SMBus-only adapter: a combined transaction cannot be expressed
    assert seed["i2c_rdwr_errno"] == errno.EOPNOTSUPP


def test_smbus2_backend_reads_the_stub(checks):
    out = _ok(checks["smbus2_backend"])
    regs = {int(k, 16): v for k, v in _ok(checks["seed"])["regs"].items()}
    assert checks["stub_bus"] in out["buses"]
    assert out["chip"] == "60"
    assert bytes.fromhex(out["calib"]) == bytes(regs[r] for r in range(0x88, 0x88 + 26))
    assert bytes.fromhex(out["calib2"]) == bytes(regs[r] for r in range(0xE1, 0xE8))
    data = bytes.fromhex(out["data"])
    assert data == bytes(regs[r] for r in range(0xF7, 0xFF))
    assert out["config"] == "a0"  # a register write went through
    # the read-back measurement compensates to the environment the model was given
    adc_p = data[0] << 12 | data[1] << 4 | data[2] >> 4
    adc_t = data[3] << 12 | data[4] << 4 | data[5] >> 4
    adc_h = data[6] << 8 | data[7]
    cal = Bme280Calibration.from_nvm(bytes.fromhex(out["calib"]), bytes.fromhex(out["calib2"]))
    t, p, h = bme280_compensate(cal, adc_t, adc_p, adc_h)
    assert abs(t / 100 - 23.25) < 0.05
    assert abs(p / 256 - 98_765) < 20
    assert abs(h / 1024 - 41.0) < 0.5
    assert out["absent"] == "nack_address"
    assert out["no_bus"] == "no_such_bus"


def test_trace_recorded_on_the_real_kernel_replays_on_the_host(checks):
    """The reference BME280 driver ran over i2c-stub (smbus2 backend) in the guest,
    recorded; replaying that trace here gives the driver the same answers."""
    import base64

    from wasi_hw.apps.reference import Bme280Driver
    from wasi_hw.host import ReplayI2cBackend, read_trace

    out = _ok(checks["trace_on_stub"])
    trace = read_trace(base64.b64decode(out["trace"]))
    assert trace.header["backends"]["i2c"]["name"] == "smbus2"
    assert trace.header["meta"]["readings"] == out["readings"]
    first = out["readings"][0]
    assert abs(first["temperature_c"] - 23.25) < 0.05 and abs(first["humidity_pct"] - 41) < 0.5
    replay = ReplayI2cBackend(trace)
    driver = Bme280Driver(replay, checks["stub_bus"], 0x76)
    driver.init()
    assert [driver.poll(), driver.poll()] == out["readings"]
    replay.close()
    replay.done()


def test_compiled_driver_runs_on_the_real_kernel_bus(checks):
    """`wasi-hw run build/wasm/bme280.wasm` in the guest: the kernel, the Rust driver, the
    smbus2 backend and i2c-stub — the reading is the seeded BME280's environment."""
    out = _ok(checks["wasm_driver_on_stub"])
    assert out["rc"] == 0, out["stderr"]
    readings = [json.loads(line) for line in out["stdout"].splitlines() if line.startswith("{")]
    assert len(readings) == 2, out
    trace = checks["trace_on_stub"]["readings"]  # the reference driver, same bus
    assert readings == trace


def test_usbip_attach_in_the_guest(checks):
    out = _ok(checks["usbip"])
    assert "vhci_hcd.0" in out["vhci"]
    assert out["server"].startswith("serving USB/IP on 127.0.0.1:3240")
    assert out["attach_rc"] == 0, out["attach_err"]
    assert out["found"] is True
    assert (out["product"], out["serial"]) == ("Echo", "ECHO0001")
    assert out["echo"] == "ping over usbip"


def test_compiled_usb_driver_over_vhci_and_its_trace_replays(checks):
    """usb-echo.wasm under the kernel with the pyusb backend, through a real kernel's usbfs
    and vhci-hcd to our USB/IP server — then its recorded traffic, replayed on the host,
    gives the same driver the same readings."""
    import base64

    import cbor2

    from wasi_hw.host import ReplayUsbBackend, VirtualClock, read_trace
    from wasi_hw.kernel import run_driver
    from wasi_hw.kernel._hosts import Backends
    from wasi_hw.kernel._manifest import load_manifest

    out = _ok(checks["usb_driver"])
    readings = cbor2.loads(base64.b64decode(out["readings_cbor"]))
    assert out["state"] == "running" and out["errors"] == 0, out["events"]
    assert len(readings) == 2 and all(r["ok"] and r["connected"] for r in readings)
    assert readings[0]["serial"] == "ECHO0001" and readings[1]["round_trips"] > 0
    trace = read_trace(base64.b64decode(out["trace"]))
    assert trace.header["backends"]["usb"]["name"] == "pyusb"
    replay = ReplayUsbBackend(trace)
    manifest = load_manifest(REPO / "drivers/usb-echo/manifest.toml")
    result = run_driver(manifest, Backends(usb=replay, clock=VirtualClock()), polls=2)
    assert replay.divergence is None, str(replay.divergence)
    assert result.readings == readings


def _parity_legs(out: dict, expected: set[str], min_ops: int = 10) -> dict:
    report = out["report"]
    assert out["rc"] == 0 and report["ok"] is True, json.dumps(report, indent=1)
    legs = {leg["backend"]: leg for leg in report["legs"]}
    assert set(legs) == expected
    sim = legs["sim"]
    assert sim["outcome"] == {"state": "running", "faults": 0, "errors": 0}
    assert len(sim["readings"]) == 2 and sim["operations"] > min_ops
    for leg in legs.values():
        assert (leg["readings"], leg["operations"]) == (sim["readings"], sim["operations"])
        assert leg["outcome"] == sim["outcome"]
        assert leg["difference"] is None and not leg["failure"]
    return legs


def test_parity_with_the_smbus2_leg_on_the_real_i2c_stub(checks):
    """`wasi-hw parity bme280.wasm --backends sim,smbus2,replay --reference bme280` in the
    guest, the smbus2 leg on the real kernel's i2c-stub through the SMBus fallback (the
    adapter cannot do combined transfers). What is compared: the whole normalised trace —
    every request (register writes, write-then-read pairs, delays) and every byte read —
    plus the readings and the outcome, of each leg against the sim leg. i2c-stub is plain
    memory: it has no measuring bit and does not convert when forced mode is written, so
    before the parity run the stub is seeded with the register file the sim leg's own model
    (a default `Bme280()`) holds after one forced measurement; the driver reads status and
    data only after its conversion delay, when the sim answers exactly that. The replay leg
    replays the sim leg's trace; ref:bme280 is the Python reference driver on the sim."""
    out = _ok(checks["parity_i2c"])
    legs = _parity_legs(out, {"sim", "smbus2", "replay", "ref:bme280"})
    first = legs["smbus2"]["readings"][0]  # the default model's environment
    assert abs(first["temperature_c"] - 22.5) < 0.05 and abs(first["humidity_pct"] - 45) < 0.5
    assert abs(first["pressure_pa"] - 101_325) < 20
    # the smbus2 leg really wrote the stub: forced mode (0x25) where the seed had sleep (0x24)
    assert out["stub_ctrl_meas_after"] == 0x25


def test_parity_with_the_pyusb_leg_on_vhci(checks):
    """`wasi-hw parity usb-echo.wasm --backends sim,usbip,pyusb,replay` in the guest: the
    pyusb leg through libusb, usbfs and vhci-hcd to `wasi-hw usbip serve` (the usbip leg is
    the runner's in-process server). Compared: the normalised USB trace (every request and
    result byte; enumeration snapshots and teardown left out), readings and outcome."""
    legs = _parity_legs(_ok(checks["parity_usb"]), {"sim", "usbip", "pyusb", "replay"})
    assert all(r["connected"] and r["ok"] and r["serial"] == "ECHO0001"
               for r in legs["pyusb"]["readings"])


def test_parity_of_the_lcd_driver_on_the_real_i2c_stub(checks):
    """`wasi-hw parity hd44780.wasm --manifest M --backends sim,smbus2,replay` in the guest
    (M: the driver's manifest moved to the stub bus): a second
    i2c-stub chip at 0x27 takes the LCD driver's writes through the SMBus fallback; the whole
    normalised trace (every byte it drives onto the PCF8574) equals the sim leg's, whose
    HD44780 model shows the text."""
    out = _ok(checks["parity_lcd"])
    report = out["report"]
    assert out["rc"] == 0 and report["ok"] is True, json.dumps(report, indent=1)
    legs = {leg["backend"]: leg for leg in report["legs"]}
    assert set(legs) == {"sim", "smbus2", "replay"}
    sim = legs["sim"]
    assert sim["outcome"] == {"state": "running", "faults": 0, "errors": 0}
    assert sim["readings"] and sim["operations"] > 20       # the LCD reports on change only
    for leg in legs.values():
        assert (leg["readings"], leg["operations"]) == (sim["readings"], sim["operations"])
        assert leg["difference"] is None and not leg["failure"]


def test_parity_of_the_tmp102_driver_on_the_real_i2c_stub(checks):
    """`wasi-hw parity tmp102.wasm --manifest M --backends sim,smbus2,replay` in the guest:
    a third i2c-stub chip at 0x48, seeded with the temperature register the sim leg's model
    answers; the driver (the crates.io `tmp1x2` crate over our embedded-hal bus) reads it
    through the SMBus fallback and reports the same temperature on every leg."""
    out = _ok(checks["parity_tmp102"])
    legs = _parity_legs(out, {"sim", "smbus2", "replay"}, min_ops=2)
    assert out["seed"] == [0x19, 0x00]                     # 25.0 °C, the model's default
    assert legs["smbus2"]["readings"] == legs["sim"]["readings"]


@pytest.mark.parametrize("driver", ["msc", "hid-keyboard"])
def test_parity_of_msc_and_hid_with_the_pyusb_leg_on_vhci(checks, driver):
    """A second `wasi-hw usbip serve` in the guest with the mass-storage model (a 1 MiB
    image, the sim model's size) and the HID keyboard, both attached through vhci-hcd;
    `wasi-hw parity DRIVER --backends sim,pyusb,replay`: the pyusb leg through libusb, usbfs
    and the kernel's USB stack gives the sim leg's readings and normalised trace (msc: SCSI
    capacity, block writes and read-back verification; hid: interrupt reports)."""
    out = _ok(checks["parity_usb_more"])
    assert out["attach_rc"] == [0, 0], out
    assert {"1209:0002", "1209:0003"} <= set(out["enumerated"]), out
    # the default keyboard types nothing: its driver's polls are interrupt INs that time out
    legs = _parity_legs(out[driver], {"sim", "pyusb", "replay"},
                        min_ops=5 if driver == "hid-keyboard" else 10)
    assert legs["pyusb"]["readings"] == legs["sim"]["readings"]
    assert out["detach_rc"] == [0, 0] and out["server_rc"] == -15, out


def test_usbip_detach_mid_run_is_no_device_and_nothing_hangs(checks):
    """`wasi-hw run drivers/usb-echo/manifest.toml --polls N` (its own process) through
    `PyusbUsbBackend` on vhci; after its first reading `usbip detach -p PORT`. The driver
    sees no_device (its failure names NoDevice, or it counts the departure), reports
    `connected: false` from then on, the run still takes all N readings and ends soon after
    (exit 1 when a poll failed on it, else 0 or 1 — never a signal or a traceback), and the
    USB/IP server lives on."""
    out = _ok(checks["usbip_detach"])
    assert out["detach_rc"] == 0, out["detach_out"]
    assert out["hung"] is False and out["after_detach_s"] < 30, out
    readings = out["readings"]
    assert len(readings) == out["polls"], out["stderr"]
    assert readings[0]["connected"] is True and readings[0]["ok"] is True
    gone = next(i for i, r in enumerate(readings) if not r["connected"])
    seen = readings[gone]
    assert "NoDevice" in seen.get("failure", "") or seen["departures"] == 1, seen
    assert all(not r["connected"] and not r["ok"] for r in readings[gone:])
    assert "NoDevice" in out["stderr"] or "echo device left" in out["stderr"], out["stderr"]
    failed = "NoDevice" in seen.get("failure", "")
    assert out["rc"] in ((1,) if failed else (0, 1)), out  # poll errors → 1; never a signal
    assert "Traceback" not in out["stderr"], out["stderr"]
    assert out["first_reading_s"] < 120
    assert "1209:0001" not in out["vhci_ports_after"]
    assert _ok(checks["usbip_stop"])["server_rc"] == [-15]  # alive until we stopped it
