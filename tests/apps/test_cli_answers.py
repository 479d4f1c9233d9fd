"""The command line never misleads: each case here gave a wrong answer before (an "OK" that
proved nothing, a traceback, a silent exit 1, a failure without its cause)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from wasi_hw.apps.cli import main


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def wasm(build_drivers):
    return build_drivers("bme280", "hd44780")


def test_parity_fails_when_every_leg_was_quarantined(wasm, capsys):
    # the sensor is at 0x77, the driver talks to 0x76: every leg faults the same way
    rc = main(["parity", str(wasm["bme280"]), "--sim", "bme280@0x77", "--backends", "sim,replay"])
    out, err = capsys.readouterr()
    assert rc == 1
    assert "parity: OK" not in out
    assert "proves nothing" in err and "quarantined" in err and "no readings" in err


def test_parity_still_passes_when_the_legs_work(wasm, capsys):
    assert main(["parity", str(wasm["bme280"]), "--backends", "sim,replay"]) == 0
    assert "parity: OK" in capsys.readouterr().out


def test_usbip_serve_bad_port_is_one_line():
    out = subprocess.run([sys.executable, "-m", "wasi_hw", "usbip", "serve", "--port", "99999"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "'99999' is not a TCP port (0..65535)" in out.stderr


def test_usbip_serve_devices_come_from_the_model_registry(capsys):
    assert main(["usbip", "serve", "--device", "toaster"]) == 2
    assert "no USB device model 'toaster'" in capsys.readouterr().err
    assert main(["usbip", "serve", "--device", "msc"]) == 2
    assert "msc needs its disk image" in capsys.readouterr().err


def test_lcd_without_text_says_what_is_missing(wasm, capsys):
    rc = main(["run", str(wasm["hd44780"]), "--allow", "0x27", "--sim", "lcd@0x27"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "hd44780: no reading in 1 poll(s)" in err
    assert "configuration that is not set: " in err and "text" in err.split("not set:")[1]


def test_unread_config_keys_and_ungranted_sims_are_warned(wasm, capsys):
    rc = main(["run", str(wasm["bme280"]), "--allow", "0x76", "--sim", "bme280@0x76",
               "--sim", "sht3x@0x44", "--config", "adress=0x76"])
    err = capsys.readouterr().err
    assert rc == 0
    warn_sim = err.index("--sim sht3x@0x44: i2c-1 address 0x44 is not granted to bme280")
    assert warn_sim < err.index("state starting")          # before running
    assert "configuration key 'adress' was never read by the driver (did you mean address?)" in err


def test_sim_parameters_reach_the_model(wasm, capsys):
    rc = main(["run", str(wasm["bme280"]), "--allow", "0x76",
               "--sim", "bme280(temperature_c=31.25, humidity_pct=70)@0x76", "--json"])
    assert rc == 0
    import json

    reading = json.loads(capsys.readouterr().out.splitlines()[0])
    assert abs(reading["temperature_c"] - 31.25) < 0.02
    assert abs(reading["humidity_pct"] - 70) < 0.1


@pytest.mark.parametrize("spec, fragment", [
    ("bme280(temprature_c=3)@0x76", "has no parameter 'temprature_c' (did you mean temperature_c?)"),
    ("bme280(temperature_c=hot)@0x76", "parameter temperature_c must be a number, got hot"),
    ("bme28@0x76", "no I2C device model 'bme28' (did you mean bme280?)"),
])
def test_sim_mistakes_are_named(wasm, capsys, spec, fragment):
    assert main(["run", str(wasm["bme280"]), "--allow", "0x76", "--sim", spec]) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1


def test_kernel_file_model_mistakes_have_file_and_line(tmp_path, capsys):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    k = tmp_path / "k.toml"
    k.write_text(f'[[driver]]\nmanifest = "{root}/drivers/bme280/manifest.toml"\n\n'
                 '[[sim.i2c]]\nmodel = "bme280"\naddress = 0x76\n'
                 'params = {{ temprature_c = 21.0 }}\n'.replace("{{", "{").replace("}}", "}"))
    assert main(["kernel", "run", str(k)]) == 2
    err = capsys.readouterr().err
    assert f"{k}:7: sim.i2c: bme280 has no parameter 'temprature_c'" in err


def test_trace_replay_does_not_wait_real_poll_intervals(wasm, tmp_path, monkeypatch, capsys):
    import wasi_hw.apps.cli._run as run_cli

    trace = tmp_path / "t.cbor"
    assert main(["trace", "record", str(trace), "--", "run", str(wasm["bme280"]), "--allow",
                 "0x76", "--sim", "bme280@0x76", "--polls", "3", "--interval-ms", "20"]) == 0
    intervals = []
    real = run_cli.run_driver

    def spy(manifest, *a, **kw):
        intervals.append(manifest.poll_interval_ms)
        return real(manifest, *a, **kw)

    monkeypatch.setattr(run_cli, "run_driver", spy)
    assert main(["trace", "replay", str(trace), "--", "run", str(wasm["bme280"]), "--allow",
                 "0x76", "--polls", "3"]) == 0
    assert intervals == [1]
    assert "replay matched" in capsys.readouterr().err


def test_readings_read_as_text_not_python_reprs():
    from wasi_hw.apps.cli._run import _human

    assert _human({"port": b"\x01\xff", "events": [], "text": "", "t": 21.23456,
                   "nested": {"a": [1, b"\x02"]}, "name": "two words"}) == (
        'port=01 ff events=[] text="" t=21.235 nested={a=[1, 02]} name="two words"')
    long = _human({"blob": b"\x00" * 100})
    assert "more characters; --json shows all" in long and "b'" not in long


def test_kernel_run_marks_repeats_and_ends_with_a_table(build_drivers, capsys):
    from pathlib import Path

    build_drivers()
    root = Path(__file__).resolve().parents[2]
    assert main(["kernel", "run", str(root / "drivers" / "demo.kernel.toml"), "--rounds", "3"]) == 0
    out, err = capsys.readouterr()
    assert "bme280        = same reading, 2 more time(s)" in out
    lines = err[err.index("kernel summary:"):].splitlines()
    assert lines[1].split() == ["driver", "state", "polls", "faults", "restarts"]
    assert any(l.split()[:3] == ["bme280", "stopped", "3"] for l in lines[2:])


def test_unknown_manifest_key_has_a_did_you_mean(tmp_path, capsys):
    m = tmp_path / "m.toml"
    m.write_text('name = "x"\nwasm = "x.wasm"\npoll_intervall_ms = 5\n')
    assert main(["run", str(m)]) == 2
    err = capsys.readouterr().err
    assert (f"{m}:3: manifest: unknown key 'poll_intervall_ms' (did you mean "
            "'poll_interval_ms'?); known keys: config, i2c, ") in err
    known = err.split("known keys: ", 1)[1].strip().split(", ")
    assert {"limits", "poll_interval_ms", "usb"} <= set(known) and known == sorted(known)


def _all_help(parser, prefix=()):
    import argparse

    yield " ".join(prefix), parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _all_help(sub, (*prefix, name))


def test_help_is_plain_text_without_markup_or_class_names():
    import re

    from wasi_hw.apps.cli._main import _parser

    for command, text in _all_help(_parser()):
        assert "`" not in text, f"wasi-hw {command} --help shows reST markup"
        assert not re.search(r"\b[A-Z][a-z]+(?:[A-Z][a-z]+)*(?:Error|Backend)\b", text), \
            f"wasi-hw {command} --help names a class"
        assert "wasi_hw." not in text, f"wasi-hw {command} --help names a module"


@pytest.mark.parametrize("extra, said", [
    (["--sim", "bme280@0x77"], "nack_address: i2c-1: no ACK from address 0x76"),
    (["--sim", "bme280@0x76", "--config", "bus=i2c-7"], "access: bus 'i2c-7' is not granted"),
    (["--sim", "bme280@0x76", "--config", "address=0x77"],
     "access: address 0x77 is not granted on i2c-1"),
])
def test_deterministic_init_failures_are_reported_once_not_retried(wasm, capsys, extra, said):
    rc = main(["run", str(wasm["bme280"]), "--allow", "0x76", *extra])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.count("state starting") == 1 and "backoff" not in err
    assert said in err and "not restartable" in err
    assert "address=119" not in err                        # audit lines in hex, too


def test_memory_over_the_manifest_limit_names_the_likely_cause(tmp_path, capsys):
    import wasmtime

    big = tmp_path / "big.wasm"
    big.write_bytes(wasmtime.wat2wasm(
        '(module (memory (export "memory") 17)'
        ' (func (export "init") (result i32) i32.const 0)'
        ' (func (export "poll") (result i32) i32.const 0))'))
    assert main(["run", str(big), "--allow", "0x76", "--sim", "bme280@0x76"]) == 1
    err = capsys.readouterr().err
    assert "asks for 17 pages (1088 KiB) at start, the manifest allows 8" in err
    assert "default 1 MiB stack" in err and "wasi-hw build" in err


def test_kernel_run_warns_about_config_keys_never_read(wasm, tmp_path, capsys):
    k = tmp_path / "k.toml"
    k.write_text(f'[[driver]]\nname = "bme280"\nwasm = "{wasm["bme280"]}"\n'
                 '[driver.config]\naddress = "0x76"\nadress = "0x76"\n'
                 '[[driver.i2c]]\nbus = "i2c-1"\naddresses = [0x76]\n\n'
                 '[[sim.i2c]]\nmodel = "bme280"\naddress = 0x76\n')
    assert main(["kernel", "run", str(k), "--rounds", "1"]) == 0
    assert ("configuration key 'adress' was never read by bme280 (did you mean address?)"
            in capsys.readouterr().err)
