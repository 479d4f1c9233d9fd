"""SIGTERM stops a running kernel cleanly (`stop_on_signals`), in a real child process.

The child runs a driver forever under `stop_on_signals`; the test waits for its first
reading, sends SIGTERM and checks what the child saw: `run` returned, the instance was
closed (state ``stopped``), the previous handler was restored, exit status 143.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent

CHILD = r"""
import signal, sys
sys.path.insert(0, sys.argv[1])
from kernel_testing import manifest, wat
from wasi_hw.host import SimI2cBackend
from wasi_hw.kernel import Backends, Kernel, stop_on_signals

first = []
def on_event(ev):
    if ev.kind == "report" and not first:
        first.append(ev)
        print("ready", flush=True)
before = signal.getsignal(signal.SIGTERM)
k = Kernel(Backends(i2c=SimI2cBackend(["i2c-1"])), on_event=on_event, cache_dir=sys.argv[2],
           tick_ms=2)
k.add(manifest("counter", interval_ms=5), wat("counter"))
with stop_on_signals(k) as stop:
    k.run()                      # forever, until the signal
slot = k.slots["counter"]
polls = slot.polls
k.close()
print(f"stopped by {stop.name} after {polls} polls, state {slot.state}", flush=True)
print("handler restored:", signal.getsignal(signal.SIGTERM) is before, flush=True)
sys.exit(stop.exit_code)
"""


def test_sigterm_stops_the_run_loop_cleanly(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(HERE), str(tmp_path / "aot")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        time.sleep(0.05)
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM after" in out and "state stopped" in out, out + err
    assert "handler restored: True" in out
    assert "Traceback" not in err
