"""`--plot`: readings over time (`wasi-hw run`, `wasi-hw kernel run`) and a trace's bus
operations on a timeline (`wasi-hw trace show`), as image files."""

from __future__ import annotations

from pathlib import Path

import pytest

from wasi_hw import UserError
from wasi_hw.apps._plot import plot_readings, reading_series
from wasi_hw.apps.cli import main
from wasi_hw.kernel import Event

pytest.importorskip("matplotlib")
ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_series_take_every_numeric_field_per_driver():
    events = [Event(0.1, "a", "report", {"t": 1.5, "name": "x", "ok": True}),
              Event(0.2, "a", "log", ("info", "hi")),
              Event(0.3, "a", "report", {"t": 2}),
              Event(0.3, "b", "report", {"rh": 40.0})]
    assert reading_series(events) == {("a", "t"): [(0.1, 1.5), (0.3, 2.0)],
                                      ("b", "rh"): [(0.3, 40.0)]}
    with pytest.raises(UserError, match="no numeric reading"):
        plot_readings([Event(0, "a", "report", {"s": "text"})], "x.png")


def test_run_plot_writes_an_image(build_drivers, tmp_path, capsys):
    wasm = build_drivers("bme280")["bme280"]
    out = tmp_path / "bme280.png"
    assert main(["run", str(wasm), "--allow", "0x76", "--sim", "bme280@0x76", "--polls", "4",
                 "--plot", str(out)]) == 0
    assert out.read_bytes().startswith(PNG)
    assert f"readings drawn in {out}" in capsys.readouterr().err


def test_kernel_run_plot(build_drivers, tmp_path):
    build_drivers()
    out = tmp_path / "demo.svg"
    assert main(["kernel", "run", str(ROOT / "drivers" / "demo.kernel.toml"), "--rounds", "2",
                 "--plot", str(out)]) == 0
    assert b"<svg" in out.read_bytes()[:400]


def test_trace_show_plot(build_drivers, tmp_path, capsys):
    wasm = build_drivers("bme280")["bme280"]
    trace = tmp_path / "t.cbor"
    assert main(["trace", "record", str(trace), "--", "run", str(wasm), "--allow", "0x76",
                 "--sim", "bme280@0x76", "--polls", "2"]) == 0
    out = tmp_path / "timeline.png"
    assert main(["trace", "show", str(trace), "--plot", str(out)]) == 0
    assert out.read_bytes().startswith(PNG)
    assert "lane(s) drawn in" in capsys.readouterr().out
