"""``wasi-hw witx check`` and ``wasi-hw witx abi`` through the real CLI entry point."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(*args):
    return subprocess.run([sys.executable, "-m", "wasi_hw", *args], capture_output=True,
                          text=True, cwd=REPO)


def test_check_accepts_project_and_preview1(preview1_dir):
    files = sorted(str(p) for p in (REPO / "witx").glob("*.witx"))
    files += sorted(str(p) for p in preview1_dir.glob("*.witx"))
    assert len(files) >= 6
    p = run("witx", "check", *files)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count(": ok (") == len(files)
    assert "wasi_snapshot_preview1.witx: ok (1 module, 46 functions" in p.stdout


def test_abi_prints_one_line_per_function():
    p = run("witx", "abi", "witx/wasi_i2c.witx")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "wasi_i2c.open: (i32, i32, i32) -> i32"
    assert "wasi_i2c.delay_ns: (i64) -> i32" in lines
    assert len(lines) == 7


def test_abi_noreturn(preview1_dir):
    p = run("witx", "abi", str(preview1_dir / "wasi_snapshot_preview1.witx"))
    assert "wasi_snapshot_preview1.proc_exit: (i32) -> ()" in p.stdout.splitlines()
    assert "wasi_snapshot_preview1.fd_write: (i32, i32, i32, i32) -> i32" in p.stdout


def test_malformed_file(tmp_path):
    bad = tmp_path / "bad.witx"
    bad.write_text("(typename $a u32)\n(typename $b (enum (@witx tag u8) $x $x))\n")
    p = run("witx", "check", str(bad))
    assert p.returncode == 1
    assert "Traceback" not in p.stderr
    first = p.stderr.splitlines()[0]
    assert first == f"wasi-hw: {bad}:2:38: duplicate enum case `$x` (first at {bad}:2:35)"
    assert p.stderr.splitlines()[2].endswith("^")


def test_unknown_path_and_continue_after_failure(tmp_path):
    p = run("witx", "check", str(tmp_path / "nope.witx"), "witx/wasi_i2c.witx")
    assert p.returncode == 1
    assert p.stderr.strip() == f"wasi-hw: cannot read {tmp_path / 'nope.witx'}: " \
                               "No such file or directory"
    assert "wasi_i2c.witx: ok" in p.stdout
    p = run("witx", "abi", str(tmp_path / "nope.witx"))
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr


def test_gen_check_clean_in_repo():
    p = run("gen", "--check")
    assert p.returncode == 0, p.stderr
    assert "up to date" in p.stdout


def test_check_directory_is_one_clear_line(tmp_path):
    p = run("witx", "check", str(tmp_path))
    assert p.returncode == 1
    assert p.stderr.strip() == f"wasi-hw: cannot read {tmp_path}: Is a directory"


def test_gen_reports_malformed_spec_located(tmp_path):
    (tmp_path / "witx").mkdir()
    (tmp_path / "wasi_hw").mkdir()
    bad = tmp_path / "witx" / "wasi_x.witx"
    bad.write_text('(module $wasi_x\n  (@interface func (export "f") (param $p $nope)))\n')
    p = run("gen", "--root", str(tmp_path))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.splitlines()[0] == (f"wasi-hw: {bad}:2:43: unknown type `$nope` "
                                        "(a typename must be defined before it is used)")
    assert not (tmp_path / "sdk-rust").exists()  # nothing written on failure
