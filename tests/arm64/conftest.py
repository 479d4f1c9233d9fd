"""Fixtures of the aarch64 tier: `arm64_root` (the cached bookworm arm64 root with this
checkout installed from its sdist) — the tier is skipped, loudly and with the reason, only
where aarch64 binaries cannot be run here (no binfmt_misc, no qemu-user-static, not root)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import arm64  # noqa: E402  (tests/arm64/arm64.py, the tooling)


def pytest_configure(config):
    config.addinivalue_line("markers", "arm64: runs inside the emulated Debian arm64 root")


@pytest.fixture(scope="session")
def arm64_root(build_drivers) -> arm64.Root:
    """Built once per recipe (cold: debootstrap + pip under emulation), then cached."""
    build_drivers("bme280", "sht3x", "tmp102", "hd44780", "usb-echo", "hid-keyboard", "msc")
    try:
        t0 = time.monotonic()
        root = arm64.prepare()
    except arm64.Arm64Unavailable as err:
        msg = f"arm64 tier SKIPPED: {err}"
        print(f"\n*** {msg} ***", file=sys.stderr)
        pytest.skip(msg)
    info = arm64.install(root)
    print(f"\narm64 root: {'built in %.0f s' % root.built_s if root.built_s else 'cached'}; "
          f"project {'already installed' if info['cached'] else 'installed in %.0f s' % info['seconds']}"
          f" (total {time.monotonic() - t0:.0f} s)", file=sys.stderr)
    return root


@pytest.fixture(scope="session")
def in_root(arm64_root):
    """``in_root(script, timeout=…)`` → CompletedProcess; fails the test on a timeout."""
    def run(script: str, timeout: float = 900, **kw):
        try:
            return arm64.run(arm64_root, script, timeout=timeout, **kw)
        except arm64.Arm64Error as err:
            pytest.fail(str(err))
    return run
