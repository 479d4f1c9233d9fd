"""The C extension under AddressSanitizer and UBSan: built with ``-fsanitize=address,undefined``
and loaded (``WASI_HW_CNATIVE_PATH``) into a subprocess Python with the ASan runtime
preloaded, which runs the differential tests of the C paths once: the C fused I2C and USB
calls against the generic chain, the native trampoline and memory, and the oracle's fast
path. Any report from either sanitizer fails the run. Skipped — with the reason in the
summary — where gcc or its sanitizer runtimes are missing (``./dev.sh`` installs them)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from wasi_hw.kernel import _native

ROOT = Path(__file__).resolve().parents[2]
TESTS = ["tests/kernel/test_i2c_fast.py", "tests/kernel/test_usb_fast.py",
         "tests/kernel/test_oracle_usb.py",
         "tests/kernel/test_native.py", "tests/kernel/test_oracle.py"]


def _runtime(name: str) -> str | None:
    gcc = shutil.which("gcc")
    if gcc is None:
        return None
    out = subprocess.run([gcc, f"-print-file-name={name}"], capture_output=True, text=True)
    path = out.stdout.strip()
    return os.path.realpath(path) if os.path.isabs(path) and os.path.exists(path) else None


def test_differential_tests_pass_under_asan_and_ubsan(tmp_path):
    if os.environ.get("WASI_HW_CNATIVE_PATH"):
        pytest.skip("already running under the sanitizer build")
    if not _native.available():
        pytest.skip("the C extension is not in use here (WASI_HW_NATIVE=0 or not built)")
    asan, ubsan = _runtime("libasan.so"), _runtime("libubsan.so")
    if asan is None or ubsan is None:
        pytest.skip("SANITIZER TIER NOT RUN: gcc's libasan / libubsan are missing "
                    "(apt-get install gcc libasan8 libubsan1)")
    so = tmp_path / "_cnative_asan.so"
    build = subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O1", "-g", "-fno-omit-frame-pointer", "-std=c11",
         "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
         f"-I{sysconfig.get_paths()['include']}", str(ROOT / "kernel" / "_cnative.c"),
         "-o", str(so), "-lpthread"], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    env = {**os.environ, "LD_PRELOAD": asan, "WASI_HW_CNATIVE_PATH": str(so),
           # CPython's own allocations are not instrumented: leaks are not ours to judge
           "ASAN_OPTIONS": "detect_leaks=0:halt_on_error=1:abort_on_error=0",
           "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
           "PYTHONMALLOC": "malloc", "WASI_HW_ORACLE_EXAMPLES": "40"}
    env.pop("WASI_HW_NATIVE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "no:xdist",
         "-k", "not kernel_suite_passes and not checked-path", *TESTS],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    report = proc.stdout[-4000:] + proc.stderr[-6000:]
    assert "ERROR: AddressSanitizer" not in proc.stderr, report
    assert "runtime error:" not in proc.stderr, report
    assert proc.returncode == 0, report
    assert " passed" in proc.stdout, report
