"""PyusbUsbBackend under emulated usbfs: the unmodified pyusb + libusb talk to the same
device models as SimUsbBackend, and every step of one conversation gives the same result."""

import pytest

from wasi_hw.host import SimUsbBackend

from umockdev_usb import available, run_under_umockdev
from usb_scenarios import DRIVERS, REPO, driver_models, run_usb_driver, under_sim

pytestmark = pytest.mark.skipif(available() is not None, reason=str(available()))


@pytest.fixture(scope="module")
def transcripts(tmp_path_factory):
    sim_dir, emu_dir = tmp_path_factory.mktemp("sim"), tmp_path_factory.mktemp("emu")
    sim = under_sim(str(sim_dir))
    emulated = run_under_umockdev("usb_scenarios:under_pyusb", str(emu_dir))
    return sim, emulated, sim_dir, emu_dir


def test_same_conversation_same_results(transcripts):
    sim, emulated, _, _ = transcripts
    assert len(sim) == len(emulated)
    for s, e in zip(sim, emulated, strict=True):
        assert s == e, f"step {s[0]!r}: sim {s[1:]} != pyusb/umockdev {e[1:]}"


def test_conversation_covers_the_failure_kinds(transcripts):
    sim, _, _, _ = transcripts
    kinds = {step[2] for step in sim if step[1] == "error"}
    assert {"pipe", "timeout", "not_found", "busy", "overflow", "no_device"} <= kinds


def test_msc_writes_reached_both_images(transcripts):
    _, _, sim_dir, emu_dir = transcripts
    a, b = (sim_dir / "disk.img").read_bytes(), (emu_dir / "disk.img").read_bytes()
    assert a == b and a[5 * 512:7 * 512] == b"\xC3" * 1024


@pytest.mark.parametrize("driver", DRIVERS)
def test_wasm_driver_same_readings_on_sim_and_pyusb(driver):
    """A compiled driver (build/wasm/<driver>.wasm) under the kernel reports the same over
    SimUsbBackend and over the unmodified pyusb + libusb against emulated usbfs."""
    if not (REPO / "build" / "wasm" / f"{driver}.wasm").exists():
        pytest.skip(f"build/wasm/{driver}.wasm not built (wasi-hw build)")
    sim = run_usb_driver(driver, SimUsbBackend(driver_models(driver)), 3)
    emulated = run_under_umockdev("usb_scenarios:driver_under_pyusb", driver, 3)
    assert sim["state"] == "running" and sim["errors"] == 0 and len(sim["readings"]) == 3
    assert emulated == sim
