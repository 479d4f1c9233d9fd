"""`wasi-hw run / compile / inspect / kernel run`, through the real CLI entry point."""

from __future__ import annotations

import json
import re

import pytest

from wasi_hw.apps.cli import main
from kernel_testing import wat


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WASI_HW_CACHE", str(tmp_path / "aot"))


@pytest.fixture
def chipid(tmp_path):
    p = tmp_path / "chipid.wasm"
    p.write_bytes(wat("chipid"))
    return p


def test_run_sim_json(chipid, capsys):
    rc = main(["run", str(chipid), "--sim", "bme280@0x76", "--allow", "0x76", "--polls", "2", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0
    assert [json.loads(line) for line in out.splitlines()] == [{"id": 0x60}, {"id": 0x60}]
    assert "state running" in err


def test_run_human_output(chipid, capsys):
    assert main(["run", str(chipid), "--sim", "bme280@i2c-1:0x76", "--allow", "0x76"]) == 0
    assert capsys.readouterr().out == "chipid  id=96\n"


def test_run_denied_address_is_access_and_audited(chipid, tmp_path, capsys):
    audit = tmp_path / "audit.jsonl"
    rc = main(["run", str(chipid), "--sim", "bme280@0x76", "--allow", "0x77",
               "--audit", str(audit)])
    out, err = capsys.readouterr()
    assert rc == 1 and out == ""
    assert "poll returned 9" in err            # wasi_i2c access
    entry = json.loads(audit.read_text().splitlines()[0])
    assert entry["driver"] == "chipid" and entry["call"] == "wasi_i2c.write_read"
    assert entry["asked"]["address"] == 0x76 and entry["outcome"] == "access"


def test_run_absent_device_is_nack_address(chipid, capsys):
    rc = main(["run", str(chipid), "--sim", "bme280@0x77", "--allow", "0x76"])
    assert rc == 1
    assert "poll returned 3" in capsys.readouterr().err      # nack_address


@pytest.mark.parametrize("argv,fragment", [
    (["run", "nope.wasm", "--sim", "bme280@0x76"], "nope.wasm: no such file"),
    (["run", "{chipid}", "--sim", "bme280"], "expected @ADDRESS or @BUS:ADDRESS"),
    (["run", "{chipid}", "--sim", "toaster@0x10"], "no I2C device model 'toaster'"),
    (["run", "{chipid}", "--sim", "bme280@0x76", "--allow", "0x80"], "not a 7-bit I2C address"),
    (["kernel", "run", "missing.toml"], "missing.toml: no such file"),
])
def test_user_errors_are_one_line(argv, fragment, chipid, capsys):
    argv = [a.replace("{chipid}", str(chipid)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1


def test_run_garbage_wasm(tmp_path, capsys):
    p = tmp_path / "bad.wasm"
    p.write_bytes(b"\0asm\1\0\0\0junk")
    assert main(["run", str(p), "--sim", "bme280@0x76", "--allow", "0x76"]) == 2
    assert "not a valid wasm module" in capsys.readouterr().err


def test_compile_and_inspect(chipid, capsys):
    assert main(["compile", str(chipid)]) == 0
    out = capsys.readouterr().out
    assert "compiled in" in out and ".cwasm" in out
    assert main(["inspect", str(chipid)]) == 0
    out = capsys.readouterr().out
    assert "wasi_i2c.write_read" in out and "i2c address (+ register ranges)" in out
    assert "always granted: wasi_driver.report" in out and "cache load" in out
    assert main(["inspect", str(chipid), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["capabilities"]["i2c bus"] == ["wasi_i2c.open"]
    assert info["cache_load_ms"] >= 0 and info["instantiate_ms"] >= 0 and info["problems"] == []


def test_inspect_flags_unknown_imports(tmp_path, capsys):
    p = tmp_path / "u.wasm"
    p.write_bytes(wat("unknown_import"))
    assert main(["inspect", str(p)]) == 1
    out = capsys.readouterr().out
    assert "problem: import env.system is not defined by the specs" in out


@pytest.mark.parametrize("wat_text,fragment", [
    ('(module (import "wasi_driver" "report" (func (param i32) (result i32)))'
     ' (memory (export "memory") 1) (func (export "init") (result i32) (i32.const 0))'
     ' (func (export "poll") (result i32) (i32.const 0)))',
     "wasi_driver.report (signature (i32) -> (i32), spec says (i32, i32) -> (i32))"),
    ('(module (memory (export "memory") 1) (func (export "init") (result i32) (i32.const 0))'
     ' (func (export "poll") (param i32) (result i32) (i32.const 0)))',
     "export 'poll' must be a function () -> i32"),
])
def test_inspect_refuses_what_run_refuses(tmp_path, capsys, wat_text, fragment):
    import wasmtime

    p = tmp_path / "w.wasm"
    p.write_bytes(wasmtime.wat2wasm(wat_text))
    assert main(["inspect", str(p)]) == 1
    assert fragment in capsys.readouterr().out
    assert main(["run", str(p), "--sim", "bme280@0x76", "--allow", "0x76"]) != 0
    assert fragment in capsys.readouterr().err


KERNEL = """\
[kernel]
tick_ms = 2
rounds = 2

[[driver]]
name = "chipid"
wasm = "chipid.wasm"
poll_interval_ms = 10
[[driver.i2c]]
bus = "i2c-1"
addresses = [0x76]

[[driver]]
name = "echo"
wasm = "echo.wasm"
poll_interval_ms = 10

[[route]]
from = "chipid"
to = "echo"

[[sim.i2c]]
model = "bme280"
address = 0x76
"""


def test_kernel_run(chipid, tmp_path, capsys):
    (tmp_path / "echo.wasm").write_bytes(wat("inbox_echo"))
    k = tmp_path / "k.toml"
    k.write_text(KERNEL)
    assert main(["kernel", "run", str(k), "--rounds", "3", "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    chip = [e["data"] for e in events if e["driver"] == "chipid" and e["event"] == "report"]
    assert chip == [{"id": 0x60}] * 3
    assert {"id": 0x60} in [e["data"] for e in events if e["driver"] == "echo" and e["event"] == "report"]


def test_kernel_file_errors_are_located(tmp_path, capsys):
    k = tmp_path / "k.toml"
    k.write_text(KERNEL.replace('to = "echo"', 'to = "lcd"'))
    assert main(["kernel", "run", str(k)]) == 2
    assert f"{k}:20: route.to: no driver named 'lcd'" in capsys.readouterr().err


def test_kernel_run_watch_hot_updates(chipid, tmp_path, capsys):
    import threading
    import time as _time

    (tmp_path / "echo.wasm").write_bytes(wat("inbox_echo"))
    k = tmp_path / "k.toml"
    k.write_text(KERNEL)

    def replace():
        _time.sleep(0.3)
        chipid.write_bytes(wat("chipid_v2"))
    threading.Thread(target=replace).start()
    assert main(["kernel", "run", str(k), "--duration", "1.5", "--watch", "--json"]) == 0
    out, err = capsys.readouterr()
    chip = [json.loads(line)["data"] for line in out.splitlines()
            if '"report"' in line and '"chipid"' in line]
    assert chip[0] == {"id": 0x60} and chip[-1] == {"id": 0x60, "v": 2}
    assert "chipid.wasm changed, hot-updating" in err


def test_kernel_run_ctrl_c_stops_cleanly(chipid, tmp_path):
    import signal
    import subprocess
    import sys
    import time as _time

    (tmp_path / "echo.wasm").write_bytes(wat("inbox_echo"))
    k = tmp_path / "k.toml"
    k.write_text(KERNEL)
    proc = subprocess.Popen([sys.executable, "-m", "wasi_hw", "kernel", "run", str(k), "--forever"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = _time.monotonic() + 30
    first = proc.stdout.readline()          # wait for the first reading
    assert first.startswith("chipid") and _time.monotonic() < deadline
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "interrupted, stopping drivers" in err and "kernel summary:" in err
    assert re.search(r"^  chipid +\w+ +\d+ +\d+ +\d+$", err, re.M)
    assert "Traceback" not in err
