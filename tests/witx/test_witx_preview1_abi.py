"""The preview1 lowering equals what rustc's wasm32-wasip1 std actually imports.

A std program exercising args, env, clocks, sleep, files, directories, links and stdin is
built for wasm32-wasip1 (cached under build/); every ``wasi_snapshot_preview1`` import of
the binary must have exactly the core signature our lowering computes.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import wasmtime

from wasi_hw.witx import load, lower_document

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build" / "wasip1-imports"
WASM = BUILD / "target" / "wasm32-wasip1" / "release" / "wasip1-imports.wasm"

MAIN_RS = r"""
use std::collections::HashMap;
use std::io::{Read, Write};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let vars: HashMap<String, String> = std::env::vars().collect();
    let now = std::time::SystemTime::now();
    let t = std::time::Instant::now();
    std::thread::sleep(std::time::Duration::from_millis(1));
    let mut f = std::fs::File::create("out.txt").unwrap();
    f.write_all(b"hello").unwrap();
    f.sync_all().unwrap();
    let mut s = String::new();
    std::fs::File::open("out.txt").unwrap().read_to_string(&mut s).unwrap();
    let md = std::fs::metadata("out.txt").unwrap();
    for e in std::fs::read_dir(".").unwrap() { let _ = e.unwrap().file_name(); }
    std::fs::create_dir_all("d/e").unwrap();
    std::fs::rename("out.txt", "d/o.txt").unwrap();
    let _ = std::fs::hard_link("d/o.txt", "d/l.txt");
    let _ = std::fs::read_link("d/l.txt");
    std::fs::remove_file("d/o.txt").unwrap();
    std::fs::remove_dir("d/e").unwrap();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    println!("{} {} {:?} {:?} {} {}", args.len(), vars.len(), now, t.elapsed(), s, md.len());
    std::process::exit(3);
}
"""

CARGO_TOML = """[package]
name = "wasip1-imports"
version = "0.0.0"
edition = "2021"
[profile.release]
panic = "abort"
[workspace]
"""


def _build() -> Path:
    src = BUILD / "src" / "main.rs"
    if WASM.is_file() and src.is_file() and src.read_text() == MAIN_RS:
        return WASM
    if not Path("/usr/lib/wasm32-wasi/crt1-command.o").is_file():
        pytest.fail("wasi-libc is not installed (apt-get install wasi-libc); it is needed to "
                    "build the wasm32-wasip1 reference binary")
    src.parent.mkdir(parents=True, exist_ok=True)
    (BUILD / "Cargo.toml").write_text(CARGO_TOML)
    src.write_text(MAIN_RS)
    env = {**os.environ, "RUSTC": "/usr/bin/rustc", "RUSTC_BOOTSTRAP": "1",
           "CARGO_TARGET_DIR": str(BUILD / "target"),
           "RUSTFLAGS": "-L /usr/lib/wasm32-wasi -C link-self-contained=no "
                        "-C link-arg=/usr/lib/wasm32-wasi/crt1-command.o"}
    cargo = "/usr/bin/cargo" if Path("/usr/bin/cargo").exists() else shutil.which("cargo")
    proc = subprocess.run([cargo, "build", "--release", "-q", "-Zbuild-std=std,panic_abort",
                           "--target", "wasm32-wasip1"], cwd=BUILD, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return WASM


@pytest.mark.wasm  # rustc builds a wasm32-wasip1 reference binary
def test_lowering_matches_rustc_wasip1_imports(preview1_dir):
    abis = {a.name: a for a in lower_document(load(preview1_dir / "wasi_snapshot_preview1.witx"))}
    module = wasmtime.Module.from_file(wasmtime.Engine(), str(_build()))
    imports = [i for i in module.imports if i.module == "wasi_snapshot_preview1"]
    assert len(imports) >= 20  # the program reaches most of preview1
    for imp in imports:
        assert imp.name in abis, f"rustc imports {imp.name}, which the WITX lacks"
        abi = abis[imp.name]
        got = ([str(p) for p in imp.type.params], [str(r) for r in imp.type.results])
        want = ([c.type for c in abi.core_params], list(abi.core_results))
        assert got == want, f"{imp.name}: rustc {got} vs lowering {want}"
    assert "proc_exit" in {i.name for i in imports}  # the noreturn case is covered
