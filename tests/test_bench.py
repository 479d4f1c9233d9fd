"""`wasi-hw bench --quick --json` runs every figure and reports each one completely.

Benchmarks are never timed tests: this checks that the suite runs through its real paths
and that its JSON has every figure, each a positive finite ratio with both sides' absolute
figures — not what the values are.
"""

from __future__ import annotations

import json
import math

import pytest

from wasi_hw.apps._bench import FIGURES, format_table, measure_pair
from wasi_hw.apps.cli import main

pytestmark = pytest.mark.wasm  # runs the benchmarks over compiled drivers


@pytest.fixture(scope="module")
def results():
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["bench", "--quick", "--json"])
    assert rc == 0
    return json.loads(out.getvalue())


def finite_positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def test_every_figure_present(results):
    assert [f["name"] for f in results["figures"]] == [f.name for f in FIGURES]
    assert results["quick"] is True
    m = results["machine"]
    assert m["wasmtime"] and m["python"] and isinstance(m["fast_path"], bool)


@pytest.mark.parametrize("name", [f.name for f in FIGURES])
def test_figure_is_sane(results, name):
    (fig,) = [f for f in results["figures"] if f["name"] == name]
    assert finite_positive(fig["ratio"]), fig
    assert finite_positive(fig["goal"]) and fig["goal_op"] in ("<=", ">=")
    assert fig["met"] == (fig["ratio"] <= fig["goal"] if fig["goal_op"] == "<="
                          else fig["ratio"] >= fig["goal"])
    assert fig["rounds"] >= 1
    for side in (fig["subject"], fig["baseline"]):
        assert side["label"] and side["per"]
        value = side.get("median_s", side.get("bytes"))
        assert finite_positive(value), side
    # the ratio is the ratio of the two sides (throughput figures: inverted)
    s = fig["subject"].get("median_s", fig["subject"].get("bytes"))
    b = fig["baseline"].get("median_s", fig["baseline"].get("bytes"))
    assert fig["ratio"] == pytest.approx(s / b, rel=1e-6) or \
        fig["ratio"] == pytest.approx(b / s, rel=1e-6)


def test_write_read_breakdown_has_every_layer(results):
    (fig,) = [f for f in results["figures"] if f["name"] == "i2c_write_read"]
    layers = fig["subject"]["layers_s"]
    assert len(layers) == 4 and all(finite_positive(v) for v in layers.values())


def test_table_lists_every_figure(results):
    table = format_table(results)
    assert "this machine's" in table
    for f in FIGURES:
        assert f.name in table


def test_measure_pair_tells_slow_from_fast():
    import time

    slow, fast = measure_pair(lambda: time.sleep(0.002), lambda: None, rounds=3, warmup=1)
    assert slow > 0.0015 and fast < slow / 10


def test_unknown_figure_is_a_user_error(capsys):
    assert main(["bench", "--only", "nope"]) == 2
    assert "unknown figure" in capsys.readouterr().err


def test_plot_and_reload(results, tmp_path, capsys):
    saved = tmp_path / "bench.json"
    saved.write_text(json.dumps(results))
    png = tmp_path / "ratios.png"
    assert main(["bench", "--from", str(saved), "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "bme280_read" in capsys.readouterr().out
