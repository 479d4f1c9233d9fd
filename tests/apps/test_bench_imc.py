"""`end_child`: ends a child process that stops when its stdin closes, or kills it."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from wasi_hw.apps import end_child


def _child(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_child_that_reads_stdin_exits_on_its_own():
    proc = _child("import sys; sys.stdin.read(); print('bye')")
    end_child(proc)
    assert proc.returncode == 0
    assert proc.stdout.read() == "bye\n"


@pytest.mark.timing   # waits out the grace period
def test_a_child_that_ignores_stdin_is_killed_after_the_grace():
    proc = _child("import time; print('up', flush=True); time.sleep(60)")
    assert proc.stdout.readline() == "up\n"
    t0 = time.monotonic()
    end_child(proc, grace=0.3)
    assert proc.returncode is not None and proc.returncode < 0   # killed by a signal
    assert time.monotonic() - t0 < 10


def test_a_child_already_gone_is_left_alone():
    proc = _child("pass")
    proc.wait(10)
    end_child(proc)
    assert proc.returncode == 0
