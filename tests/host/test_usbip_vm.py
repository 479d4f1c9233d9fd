"""Our USB/IP server under a real Linux kernel: vhci-hcd attaches the devices, the kernel
enumerates them, binds usbhid / usb-storage, and pyusb + libusb talk to the echo device
through usbfs — the loopback recipe of host/README-usbip.md, run in the QEMU tier. Then the
compiled msc driver takes the disk over from usb-storage through `PyusbUsbBackend`.

Skips (with the tier's one-line reason) where QEMU or the kernel package is unavailable.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.vm  # boots the VM itself (vm.run_in_vm)

_VM_PATH = Path(__file__).resolve().parents[1] / "vm" / "vm.py"

_CHECKS = r'''
import glob, json, mmap, os, time
import usb.core, libusb_package
be = libusb_package.get_libusb1_backend()
out = {}
def wait(pred, what, secs=30):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")
dev = wait(lambda: usb.core.find(idVendor=0x1209, idProduct=0x0001, backend=be), "echo")
out["strings"] = [dev.manufacturer, dev.product, dev.serial_number]
dev.ctrl_transfer(0x40, 1, 0, 0, b"hello")
out["ctrl_in"] = bytes(dev.ctrl_transfer(0xC0, 2, 0, 0, 64)).decode()
try:
    dev.ctrl_transfer(0xC0, 3, 0, 0, 1)
    out["stall"] = None
except usb.core.USBError as e:
    out["stall"] = e.errno
if dev.is_kernel_driver_active(0):
    dev.detach_kernel_driver(0)
usb.util.claim_interface(dev, 0)
payload = bytes(range(256)) * 12
out["bulk_written"] = dev.write(0x01, payload, timeout=2000)
got = b""
while len(got) < len(payload):
    got += bytes(dev.read(0x81, 4096, timeout=2000))
out["bulk_echo"] = got == payload
t = time.monotonic()
try:
    dev.read(0x81, 64, timeout=300)
    out["timeout"] = "no timeout"
except usb.core.USBTimeoutError:
    out["timeout"] = round(time.monotonic() - t, 2)
dev.write(0x01, b"again", timeout=1000)
out["after_timeout"] = bytes(dev.read(0x81, 64, timeout=1000)).decode()
out["interrupt"] = [bytes(dev.read(0x82, 8, timeout=1000)).hex() for _ in range(2)]
kbd = wait(lambda: os.path.realpath("/sys/bus/usb/devices/1-2:1.0/driver")
           if os.path.exists("/sys/bus/usb/devices/1-2:1.0/driver") else None, "usbhid")
out["hid_driver"] = os.path.basename(kbd)
# usbhid fetched and parsed the report descriptor: a HID device exists for it
out["hid_devices"] = len(wait(lambda: glob.glob("/sys/bus/hid/devices/*:1209:0002.*"), "hid"))
def disk():
    for vendor in glob.glob("/sys/block/sd*/device/vendor"):
        if open(vendor).read().strip() == "WASI-HW":
            return vendor.split("/")[3]
name = wait(disk, "the mass-storage disk")
out["disk_blocks"] = int(open(f"/sys/block/{name}/size").read())
block = bytes((i * 13) & 0xFF for i in range(65536))
buf = mmap.mmap(-1, 65536)  # page-aligned, as O_DIRECT wants: every access is a SCSI command
buf[:] = block
fd = os.open(f"/dev/{name}", os.O_RDWR | os.O_DIRECT)
out["disk_written"] = os.pwritev(fd, [buf], 8192)
os.fsync(fd)
with open(os.environ["IMG"], "rb") as f:
    f.seek(8192)
    out["image_has_write"] = f.read(65536) == block
buf[:] = bytes(65536)
out["disk_read"] = os.preadv(fd, [buf], 8192)
out["disk_reads_back"] = buf[:] == block
os.close(fd)
# msc.wasm through PyusbUsbBackend on the same disk, usb-storage still bound (as udev leaves
# it on any desktop): the driver's detach_kernel_driver grant takes the interface over.
def msc_iface():
    for dev in glob.glob("/sys/bus/usb/devices/*/idProduct"):
        d = os.path.dirname(dev)
        if open(dev).read().strip() == "0003" and open(d + "/idVendor").read().strip() == "1209":
            return glob.glob(d + "/*:1.0")[0]
def bound(iface):
    link = iface + "/driver"
    return os.path.basename(os.path.realpath(link)) if os.path.exists(link) else None
t_msc = time.monotonic()
iface = msc_iface()
out["msc_bound_before"] = bound(iface)
repo = os.environ["WASI_HW_REPO"]
if not os.path.exists(os.path.join(repo, "build/wasm/msc.wasm")):
    raise SystemExit("build/wasm/msc.wasm is not built (run `wasi-hw build msc` first)")
import io
from wasi_hw.host import PyusbUsbBackend, RealClock, RecordingUsbBackend, TraceWriter, read_trace
from wasi_hw.kernel import Backends, load_manifest, run_driver
buf = io.BytesIO()
with TraceWriter(buf) as writer:
    usb_backend = RecordingUsbBackend(PyusbUsbBackend(), writer)
    res = run_driver(load_manifest(os.path.join(repo, "drivers/msc/manifest.toml")),
                     Backends(usb=usb_backend, clock=RealClock()), polls=2)
    usb_backend.shutdown()
ops = [(r["op"], r.get("error", {}).get("kind")) for r in read_trace(buf.getvalue()).records]
out["msc"] = {"state": res.state, "faults": res.faults, "errors": res.errors,
              "readings": res.readings,
              "detach": [kind or "ok" for op, kind in ops if op == "usb.detach_kernel_driver"],
              "events": [str(e) for e in res.events if e.kind != "report"][-6:]}
out["msc_bound_after"] = bound(iface)
out["msc_disk_after"] = disk()
out["msc_seconds"] = round(time.monotonic() - t_msc, 2)
t_msc = time.monotonic()
# and `wasi-hw parity` (its CLI entry point, in this process): sim vs pyusb on this disk
import contextlib
from wasi_hw.apps.cli import main
report = io.StringIO()
with contextlib.redirect_stdout(report):
    rc = main(["parity", os.path.join(repo, "build/wasm/msc.wasm"), "--backends", "sim,pyusb",
               "--json"])
out["msc_parity"] = {"rc": rc, "report": json.loads(report.getvalue())}
out["msc_parity_seconds"] = round(time.monotonic() - t_msc, 2)
print("RESULT " + json.dumps(out))
'''


def _vm():
    spec = importlib.util.spec_from_file_location("wasi_hw_test_vm", _VM_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not _VM_PATH.exists(), reason="tests/vm/vm.py missing")
def test_linux_vhci_attaches_and_drives_our_devices():
    vm = _vm()
    py = shlex.quote(sys.executable)
    script = f"""
set -e
modprobe vhci-hcd
modprobe -a usbhid usb-storage sd_mod  # no udev in the guest: class drivers by hand
export IMG=/tmp/disk.img
{py} -m wasi_hw usbip serve --port 3240 --device echo --device hid:hi \\
    --device msc:$IMG --msc-size 1M > /tmp/serve.log 2>&1 &
for i in $(seq 1 200); do grep -q serving /tmp/serve.log && break; sleep 0.1; done
usbip list -r 127.0.0.1 | grep -c 1209:
# vhci-hcd's sysfs can lag the modprobe: `usbip attach` then fails to open it ("open
# vhci_driver") before it talks to the server at all; wait for it, and retry that step
for i in $(seq 1 50); do [ -r /sys/devices/platform/vhci_hcd.0/status ] && break; sleep 0.1; done
for b in 1-1 1-2 1-3; do
  for t in 1 2 3; do
    usbip attach -r 127.0.0.1 -b $b && break
    [ $t = 3 ] && exit 1
    sleep 0.5
  done
done
{py} - <<'WASI_HW_CHECKS'
{_CHECKS}
WASI_HW_CHECKS
"""
    try:
        result = vm.run_in_vm(script, timeout=300, cwd=Path(__file__).resolve().parents[2])
    except vm.VmUnavailable as err:
        pytest.skip(str(err))
    assert result.returncode == 0, result.output[-3000:] + result.console[-3000:]
    line = next(x for x in result.output.splitlines() if x.startswith("RESULT "))
    out = json.loads(line[len("RESULT "):])
    print(f"boot {result.seconds:.1f} s; msc driver {out.get('msc_seconds')} s, "
          f"msc parity {out.get('msc_parity_seconds')} s")
    assert out["strings"] == ["wasi-hw", "Echo", "ECHO0001"]
    assert out["ctrl_in"] == "hello"
    assert out["stall"] == 32  # EPIPE
    assert out["bulk_written"] == 3072 and out["bulk_echo"] is True
    assert isinstance(out["timeout"], float) and out["timeout"] < 2
    assert out["after_timeout"] == "again"  # the kernel's unlink left the endpoint usable
    a, b = (int.from_bytes(bytes.fromhex(x), "little") for x in out["interrupt"])
    assert b == a + 1
    assert out["hid_driver"] == "usbhid" and out["hid_devices"] == 1
    assert out["disk_blocks"] == 2048  # 1 MiB in 512-byte sectors (the sim model's size)
    assert out["disk_written"] == out["disk_read"] == 65536
    assert out["image_has_write"] is True and out["disk_reads_back"] is True
    _assert_msc_driver_matches_sim(out)


def _assert_msc_driver_matches_sim(out: dict) -> None:
    """build/wasm/msc.wasm (manifest drivers/msc/manifest.toml, whose grants include
    ``detach_kernel_driver``) ran in the guest through `PyusbUsbBackend` — libusb, usbfs,
    vhci-hcd, our USB/IP server — on the 1 MiB disk the kernel's usb-storage had bound, as
    udev leaves it on a desktop: the driver detaches usb-storage (the disk goes away) and its
    readings (inquiry strings, capacity, verified bytes, range checks, recoveries) equal the
    simulated run's on a `MassStorage` of the same 2048 blocks. Then `wasi-hw parity
    msc.wasm --backends sim,pyusb` on that disk (usb-storage now detached, so
    detach_kernel_driver answers not_found on both legs): the whole normalised USB trace —
    every CBW, data and CSW byte — readings and outcome equal."""
    from wasi_hw.apps import sim_usb
    from wasi_hw.host import VirtualClock
    from wasi_hw.kernel import Backends, SimDevice, load_manifest, run_driver

    root = Path(__file__).resolve().parents[2]
    msc = out["msc"]
    assert out["msc_bound_before"] == "usb-storage"
    assert msc["state"] == "running" and msc["faults"] == 0 and msc["errors"] == 0, msc
    assert msc["detach"] == ["ok"]  # a kernel driver was there and was detached
    assert out["msc_bound_after"] is None and out["msc_disk_after"] is None
    sim = run_driver(load_manifest(root / "drivers/msc/manifest.toml"),
                     Backends(usb=sim_usb([SimDevice("msc")]), clock=VirtualClock()),
                     polls=2)
    assert sim.state == "running" and len(sim.readings) == 2
    assert msc["readings"] == sim.readings
    last = msc["readings"][-1]
    assert (last["capacity_bytes"], last["verified_bytes"], last["ok"]) == (1 << 20, 1024, True)
    parity = out["msc_parity"]
    assert parity["rc"] == 0 and parity["report"]["ok"] is True, json.dumps(parity, indent=1)
    legs = {leg["backend"]: leg for leg in parity["report"]["legs"]}
    assert set(legs) == {"sim", "pyusb"} and legs["sim"]["operations"] > 20
    assert legs["pyusb"]["readings"] == legs["sim"]["readings"] == sim.readings
    assert legs["pyusb"]["operations"] == legs["sim"]["operations"]
