"""`wasi-hw doctor`'s checks against fake /dev and /sys trees (permissions judged for a given
uid and groups), and once against this machine (the real trees)."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import pytest

from wasi_hw.apps._doctor import diagnose, format_checks

USER, GROUP, I2C_GID = 4242, 4242, 4243


def by_name(checks):
    return {c.name: c for c in checks}


def node(path: Path, mode: int, uid: int = 0, gid: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    os.chmod(path, mode)
    os.chown(path, uid, gid)
    return path


@pytest.fixture
def trees(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("building fake device nodes owned by other users needs root")
    dev, sys_ = tmp_path / "dev", tmp_path / "sys"
    dev.mkdir()
    sys_.mkdir()
    return dev, sys_


def run(dev, sys_, tmp_path, gids=(GROUP,), **kw):
    kw.setdefault("cache_dir", tmp_path / "aot")
    return by_name(diagnose(dev=dev, sys=sys_, uid=USER, gids=gids, engine=False, **kw))


def test_no_i2c_names_the_fix(trees, tmp_path):
    dev, sys_ = trees
    c = run(dev, sys_, tmp_path)["i2c-dev"]
    assert c.status == "fail" and "not loaded" in c.detail
    assert "raspi-config nonint do_i2c 0" in c.fix and "modprobe i2c-dev" in c.fix
    (sys_ / "module/i2c_dev").mkdir(parents=True)
    c = run(dev, sys_, tmp_path)["i2c-dev"]
    assert c.status == "fail" and "no I2C controller is enabled" in c.detail


def test_bus_permissions_follow_the_groups(trees, tmp_path):
    dev, sys_ = trees
    node(dev / "i2c-1", 0o660, 0, I2C_GID)
    node(dev / "i2c-20", 0o660, 0, I2C_GID)
    checks = run(dev, sys_, tmp_path)
    assert checks["i2c-dev"].status == "ok" and checks["i2c-dev"].detail == "buses: i2c-1, i2c-20"
    access = checks["i2c access"]
    assert access.status == "fail" and str(dev / "i2c-1") in access.detail
    assert "usermod -aG" in access.fix
    assert run(dev, sys_, tmp_path, gids=(GROUP, I2C_GID))["i2c access"].status == "ok"
    node(dev / "i2c-1", 0o600, USER, 0)                         # owned by the user
    node(dev / "i2c-20", 0o644, 0, 0)                          # readable only
    access = run(dev, sys_, tmp_path, gids=(GROUP, I2C_GID))["i2c access"]
    assert access.status == "fail" and "i2c-20" in access.detail and "i2c-1," not in access.detail


def test_usbfs_counts_the_writable_nodes_and_vhci(trees, tmp_path):
    dev, sys_ = trees
    checks = run(dev, sys_, tmp_path)
    assert checks["usbfs"].status == "warn" and "no " in checks["usbfs"].detail
    assert checks["vhci-hcd"].status == "info" and "modprobe vhci-hcd" in checks["vhci-hcd"].fix
    node(dev / "bus/usb/001/001", 0o664)
    node(dev / "bus/usb/001/004", 0o660, 0, GROUP)
    c = run(dev, sys_, tmp_path)["usbfs"]
    assert c.status == "warn" and c.detail.startswith("1 of 2 USB device nodes writable")
    assert "udev rule" in c.fix
    node(dev / "bus/usb/001/001", 0o666)
    (sys_ / "module/vhci_hcd").mkdir(parents=True)
    checks = run(dev, sys_, tmp_path)
    assert checks["usbfs"].status == "ok" and checks["vhci-hcd"].status == "ok"


def test_aot_cache_must_be_private(trees, tmp_path):
    dev, sys_ = trees
    cache = tmp_path / "aot"
    assert run(dev, sys_, tmp_path)["aot cache"].status == "ok"       # created on first use
    cache.mkdir(mode=0o700)
    os.chown(cache, USER, GROUP)
    (cache / "x.cwasm").write_bytes(b"")
    c = run(dev, sys_, tmp_path)["aot cache"]
    assert c.status == "ok" and "1 compiled module" in c.detail
    os.chmod(cache, 0o777)
    c = run(dev, sys_, tmp_path)["aot cache"]
    assert c.status == "warn" and "writable by others" in c.detail and "chmod 700" in c.fix
    os.chmod(cache, 0o700)
    os.chown(cache, 0, 0)
    c = run(dev, sys_, tmp_path)["aot cache"]
    assert c.status == "warn" and "another user" in c.detail and "chown" in c.fix


def test_this_machine(tmp_path):
    """The real /dev and /sys: the verdicts agree with what is there; the engine runs."""
    checks = by_name(diagnose(cache_dir=tmp_path / "aot"))
    has_i2c = bool([p for p in glob.glob("/dev/i2c-*") if p[9:].isdigit()])
    assert (checks["i2c-dev"].status == "ok") == has_i2c
    assert checks["engine"].status == "ok", checks["engine"]
    assert (checks["usbfs"].status == "warn") == (not Path("/dev/bus/usb").is_dir()
                                                  or checks["usbfs"].detail[0].isdigit())
    text = format_checks(checks.values())
    assert "\x1b" not in text and all(line.startswith(("[", "       fix: "))
                                      for line in text.splitlines())
