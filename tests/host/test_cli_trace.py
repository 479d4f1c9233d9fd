"""``wasi-hw trace show / record / replay`` (host/_cli_trace.py)."""

from __future__ import annotations

from pathlib import Path

import cbor2
import pytest

from wasi_hw.apps.cli import main
from wasi_hw.host import read_trace

REPO = Path(__file__).resolve().parents[2]
BME280 = REPO / "tests/fixtures/traces/bme280_sim.cbor"


def test_show_lists_header_and_records(capsys):
    n = len(read_trace(BME280).records)
    assert main(["trace", "show", str(BME280)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{BME280}: wasi-hw trace v1, created 2026-11-22T00:00:00Z, {n} records"
    assert "  i2c backend: sim (buses: i2c-1)" in out
    records = [line for line in out if line[:3].strip().isdigit()]
    assert [int(r.split()[0]) for r in records] == list(range(1, n + 1))
    assert records[0].split(None, 3)[1:] == [
        "0.000",
        "ms",
        "i2c  i2c-1 0x76: write [D0], read 1  -> [[60]]",
    ]
    assert records[1].endswith("i2c  i2c-1 0x76: write [E0 B6]  -> []")
    assert records[2].endswith("i2c  delay 2 ms")
    assert records[-1].endswith("i2c  close")


def test_show_limit_and_truncated(tmp_path, capsys):
    cut = tmp_path / "cut.cbor"
    cut.write_bytes(BME280.read_bytes()[:-2])
    n = len(read_trace(BME280).records) - 1  # the cut record is lost
    assert main(["trace", "show", str(cut), "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert f"… {n - 2} more" in out
    assert "cut short" in out


@pytest.mark.parametrize("content, message", [
    (b"", "empty file, not a wasi-hw trace"),
    (cbor2.dumps({"format": "wasi-hw-trace", "version": 2}), "version 2 is not supported"),
    (cbor2.dumps({"format": "wasi-hw-trace", "version": 1}) + cbor2.dumps({"op": 5}),
     "record 1: not a map with a text 'op'"),
])
def test_show_bad_file_is_one_line(tmp_path, capsys, content, message):
    bad = tmp_path / "bad.cbor"
    bad.write_bytes(content)
    assert main(["trace", "show", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and str(bad) in err


def test_show_missing_file(tmp_path, capsys):
    assert main(["trace", "show", str(tmp_path / "nope.cbor")]) == 2
    assert "cannot read trace" in capsys.readouterr().err


@pytest.mark.parametrize("sub", ["record", "replay"])
def test_record_and_replay_take_a_run(tmp_path, capsys, sub):
    target = tmp_path / "t.cbor" if sub == "record" else BME280
    assert main(["trace", sub, str(target), "--", "devices"]) == 2
    assert f"trace {sub} takes a run" in capsys.readouterr().err
    assert main(["trace", sub, str(target)]) == 2


@pytest.fixture(scope="module")
def bme280_wasm(build_drivers) -> Path:
    return build_drivers("bme280")["bme280"]


def test_record_then_replay_a_run(tmp_path, capsys, bme280_wasm):
    """The real path: `wasi-hw run` with the recording active (the kernel passes its
    backends through `wasi_hw.host.traced`), then replayed."""
    out = tmp_path / "run.cbor"
    run = ["run", str(bme280_wasm), "--allow", "0x76", "--sim", "bme280@0x76", "--polls", "2",
           "--cache-dir", str(tmp_path / "aot")]
    status = main(["trace", "record", str(out), "--", *run])
    err = capsys.readouterr().err
    assert "nothing recorded" not in err
    assert status == 0, err
    trace = read_trace(out)
    assert trace.header["backends"]["i2c"]["name"] == "sim"
    assert trace.header["meta"]["command"] == ["wasi-hw", *run]
    ops = [r["op"] for r in trace.records]
    assert ops.count("i2c.transaction") >= 5 and "i2c.delay" in ops
    assert main(["trace", "replay", str(out), "--", *run]) == 0
    assert "replay matched" in capsys.readouterr().err
    # a different driver configuration asks other questions: a loud divergence, exit 1
    more = [*run[:run.index("--polls") + 1], "3", *run[run.index("--polls") + 2:]]
    assert main(["trace", "replay", str(out), "--", *more]) == 1
    assert "replay diverged" in capsys.readouterr().err
