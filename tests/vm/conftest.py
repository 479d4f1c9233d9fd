"""Fixtures of the real-kernel tier: `run_in_vm` (boot, run a shell script, get a `VmResult`)
and `run_python_in_vm`; both skip the test with the tooling's one-line reason when QEMU or
the kernel cannot be had on this machine."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import vm


@pytest.fixture(scope="session")
def vm_kernel() -> vm.Kernel:
    try:
        return vm.prepare()
    except vm.VmUnavailable as err:
        pytest.skip(str(err))


def _skipping(fn):
    def run(*args, **kw):
        try:
            return fn(*args, **kw)
        except vm.VmUnavailable as err:  # e.g. QEMU cannot start with this ACCEL
            pytest.skip(str(err))
    return run


@pytest.fixture(scope="session")
def run_in_vm(vm_kernel):
    """`vm.run_in_vm(script, timeout, env=, cwd=)` once the kernel is known to be ready."""
    return _skipping(vm.run_in_vm)


@pytest.fixture(scope="session")
def run_python_in_vm(vm_kernel):
    """`vm.run_python_in_vm(source, timeout)`: Python source, run by this venv's interpreter."""
    return _skipping(vm.run_python_in_vm)
