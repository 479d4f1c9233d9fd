"""drivers/README.md's worked example works as written, outside the repository.

The "Writing one" section is followed in order in a scratch directory: each ``sh`` block's
lines run in bash (the venv's ``wasi-hw`` and ``python`` first on PATH), each code block whose
first line names a file (``// mcp9808/src/lib.rs``, ``# mcp9808/manifest.toml``) is written
there. So the scaffold, the MCP9808 driver, its unit tests, the manifest, the simulated chip,
the pytest tests through the plugin and the final ``wasi-hw run`` all have to work. The
manifest reference table is checked against the manifest parser's defaults.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from wasi_hw import UserError
from wasi_hw.apps._build import select_toolchain

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "drivers" / "README.md").read_text()
_START = TEXT.index("## Writing one")
SECTION = TEXT[_START:TEXT.index("\n## ", _START)]     # up to the next section


def _blocks() -> list[tuple[str, str]]:
    return re.findall(r"```(\w+)\n(.*?)```", SECTION, re.S)


def test_the_example_has_every_step():
    kinds = [k for k, _ in _blocks()]
    files = [b.splitlines()[0] for k, b in _blocks() if k != "sh"]
    assert kinds[0] == "sh" and kinds[-1] == "sh"
    assert {"// mcp9808/src/lib.rs", "# mcp9808/manifest.toml", "# mcp9808/tests/sim_mcp9808.py",
            "# mcp9808/tests/test_mcp9808.py"} <= set(files)


@pytest.mark.wasm
def test_worked_example_runs_as_written(tmp_path):
    try:
        tc = select_toolchain()
    except UserError as err:
        pytest.skip(f"no Rust toolchain: {err}")
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}",
           "CARGO_TARGET_DIR": str(ROOT / "target")}
    if tc.route == "debian":          # `cargo test` on the host target with Debian's rustc
        env["PATH"] = f"{venv_bin}:/usr/bin:{os.environ.get('PATH', '')}"
    outputs = []
    for kind, body in _blocks():
        first = body.splitlines()[0]
        m = re.match(r"(?://|#) (mcp9808/\S+)$", first)
        if kind != "sh":
            assert m, f"a {kind} block without a file name: {first}"
            path = tmp_path / m.group(1)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body)
            continue
        for line in body.splitlines():
            cmd = line.split("  #")[0].strip()
            out = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, env=env,
                                 capture_output=True, text=True, timeout=900)
            assert out.returncode == 0, f"{cmd}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
            assert "Traceback" not in out.stderr
            outputs.append((cmd, out.stdout + out.stderr))
    by_cmd = dict(outputs)
    assert "checks_the_chip_then_reads_ambient ... ok" in next(
        v for k, v in by_cmd.items() if "cargo test" in k)
    assert "3 passed" in next(v for k, v in by_cmd.items() if "pytest" in k)
    assert "temperature_c=30.0" in next(v for k, v in by_cmd.items() if "wasi-hw run" in k)


def test_manifest_table_matches_the_parser_defaults():
    from wasi_hw.kernel import Limits, RestartPolicy

    table = TEXT[TEXT.index("## Manifest keys"):]
    for field, value in [*vars(Limits()).items(), *vars(RestartPolicy()).items()]:
        row = next((ln for ln in table.splitlines() if re.search(rf"[`\] ]{field}`", ln)), None)
        assert row is not None, f"{field} missing from the table"
        assert str(value) in row, f"{field}: default {value} not in {row!r}"
