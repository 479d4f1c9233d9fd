"""Rust → wasm build route: the Cargo workspace's drivers to ``build/wasm/<name>.wasm``.

Contract:

- `select_toolchain(probe)` picks the route by itself, from what the machine has:
  a rustup toolchain with the ``wasm32-unknown-unknown`` target installed → plain
  ``cargo build --target wasm32-unknown-unknown``; otherwise Debian's ``/usr/bin/cargo``
  with ``RUSTC=/usr/bin/rustc``, ``RUSTC_BOOTSTRAP=1``, ``-Zbuild-std=core,alloc`` (std
  sources from ``rust-web-src``) and the newest ``/usr/lib/llvm-*/bin/wasm-ld`` as linker.
  Neither → `UserError` naming exactly what to install.
- Both routes link with a 64 KiB wasm stack (`STACK_SIZE`, through
  ``CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-C link-arg=-zstack-size=65536"``, added
  to any value of that variable already set) instead of rustc's 1 MiB default, so a
  driver's linear memory is its stack + data (a few pages, not ≥ 17). The stack comes first
  in memory (rustc's ``--stack-first``): an overflow runs below address 0 and traps, it
  never corrupts data. A driver that needs more stack gets a trap in its tests, not silent
  damage. (``RUSTFLAGS``, when set, overrides target rustflags in cargo: then the user
  decides the stack size.)
- `crates(root)` lists the workspace's crates: ``sdk-rust`` and every ``drivers/<dir>``
  with a ``Cargo.toml``. A crate's *name* is its directory name (``bme280``).
- `build(root, names, release=...)` runs **one** cargo invocation for the requested crates
  (all by default) in the shared ``target/``, reads cargo's JSON artifact messages to find
  each ``cdylib``'s ``.wasm``, and copies it to ``build/wasm/<name>.wasm`` only when its
  bytes changed. Cargo runs with ``--keep-going``: when some crates fail, the others are
  still copied and `BuildError` (a `UserError`) names the failed ones and carries the
  built artifacts; cargo's diagnostics go straight to stderr.
- `build_path(path)` builds any crate or workspace, anywhere: the directory's ``Cargo.toml``
  (a crate, or a workspace and all its ``cdylib`` members, listed by ``cargo metadata``),
  same route, stack size and profile as above, each module copied to
  ``<path>/build/wasm/<crate directory name>.wasm``. A directory without ``Cargo.toml`` is a
  `UserError` saying so (nothing else is built in its place).
- `cargo_config(toolchain)` renders the same settings as a ``.cargo/config.toml`` for plain
  ``cargo`` (``cargo wasm`` builds the release module); ``wasi-hw new`` writes it into new
  crates. The settings exist once, in `select_toolchain`'s `Toolchain`.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wasi_hw import UserError

__all__ = [
    "WASM_TARGET",
    "STACK_SIZE",
    "Artifact",
    "BuildError",
    "Crate",
    "Probe",
    "Toolchain",
    "build",
    "build_path",
    "cargo_config",
    "crates",
    "find_root",
    "select_toolchain",
]

WASM_TARGET = "wasm32-unknown-unknown"
OUT_DIR = Path("build/wasm")

_INSTALL_HINT = (
    "`rustup target add wasm32-unknown-unknown`, or on Debian "
    "`apt-get install rustc-web cargo-web rust-web-src lld-22`"
)


@dataclass(frozen=True)
class Toolchain:
    """How to run cargo for the wasm target."""

    route: str                      # "rustup" or "debian"
    cargo: str                      # the cargo executable
    env: dict[str, str] = field(default_factory=dict)  # added to the environment
    args: tuple[str, ...] = ()      # extra `cargo build` arguments

    def describe(self) -> str:
        if self.route == "rustup":
            return f"rustup toolchain ({self.cargo})"
        return f"Debian rustc + build-std ({self.cargo}, linker {self.env.get(_LINKER_VAR)})"


_LINKER_VAR = "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER"
_RUSTFLAGS_VAR = "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS"
STACK_SIZE = 64 * 1024   # bytes of wasm shadow stack every driver is linked with
_STACK_FLAGS = f"-C link-arg=-zstack-size={STACK_SIZE}"


class Probe:
    """What `select_toolchain` asks of the machine (tests substitute a fake)."""

    def rustup_targets(self) -> set[str] | None:
        """Installed targets of the active rustup toolchain; None without rustup."""
        rustup = shutil.which("rustup")
        if not rustup:
            return None
        try:
            out = subprocess.run(
                [rustup, "target", "list", "--installed"],
                capture_output=True, text=True, timeout=30, check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        if out.returncode != 0:
            return None
        return {line.strip() for line in out.stdout.splitlines() if line.strip()}

    def which(self, name: str) -> str | None:
        return shutil.which(name)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def glob(self, pattern: str) -> list[str]:
        return glob.glob(pattern)


def _llvm_version(path: str) -> int:
    m = re.search(r"llvm-(\d+)", path)
    return int(m.group(1)) if m else -1


def select_toolchain(probe: Probe | None = None) -> Toolchain:
    """The build route for this machine (see the module docstring)."""
    probe = probe or Probe()
    targets = probe.rustup_targets()
    if targets is not None and WASM_TARGET in targets:
        cargo = probe.which("cargo")
        if cargo:
            return Toolchain("rustup", cargo, env={_RUSTFLAGS_VAR: _STACK_FLAGS})
    missing = [p for p in ("/usr/bin/cargo", "/usr/bin/rustc") if not probe.exists(p)]
    if missing:
        have = "rustup without the wasm32 target" if targets is not None else "no rustup"
        raise UserError(f"no Rust toolchain for {WASM_TARGET} ({have}; missing "
                        f"{', '.join(missing)}): install it with {_INSTALL_HINT}")
    if not probe.exists("/usr/lib/rustlib/src/rust/library/core"):
        raise UserError("Debian rustc found but not the Rust std sources that -Zbuild-std "
                        "needs (/usr/lib/rustlib/src/rust/library): "
                        "`apt-get install rust-web-src`")
    linkers = sorted(probe.glob("/usr/lib/llvm-*/bin/wasm-ld"), key=_llvm_version)
    linker = linkers[-1] if linkers else probe.which("wasm-ld")
    if not linker:
        raise UserError("no wasm linker (wasm-ld) found: `apt-get install lld-22`")
    return Toolchain(
        "debian",
        "/usr/bin/cargo",
        env={"RUSTC": "/usr/bin/rustc", "RUSTC_BOOTSTRAP": "1", _LINKER_VAR: linker,
             _RUSTFLAGS_VAR: _STACK_FLAGS},
        args=("-Zbuild-std=core,alloc",),
    )


class BuildError(UserError):
    """Cargo failed for some crates; `artifacts` are the ones that did build."""

    def __init__(self, message: str, artifacts: list[Artifact]) -> None:
        super().__init__(message)
        self.artifacts = artifacts


@dataclass(frozen=True)
class Crate:
    """One workspace crate: `name` is its directory name, `package` its Cargo name."""

    name: str
    package: str
    path: Path
    cdylib: bool


@dataclass(frozen=True)
class Artifact:
    """One built driver: where it was put, its size, whether the copy changed."""

    name: str
    path: Path
    size: int
    changed: bool


def _read_crate(path: Path) -> Crate | None:
    manifest = path / "Cargo.toml"
    if not manifest.is_file():
        return None
    try:
        data = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{manifest}: not a valid Cargo.toml: {err}") from None
    package = data.get("package", {}).get("name")
    if not isinstance(package, str):
        raise UserError(f"{manifest}: no [package] name")
    kinds = data.get("lib", {}).get("crate-type", ["lib"])
    return Crate(path.name, package, path, "cdylib" in kinds)


def crates(root: Path) -> list[Crate]:
    """The SDK and every driver crate of the workspace at `root`, SDK first."""
    root = Path(root)
    found = []
    sdk = _read_crate(root / "sdk-rust")
    if sdk:
        found.append(sdk)
    drivers = root / "drivers"
    if drivers.is_dir():
        for d in sorted(p for p in drivers.iterdir() if p.is_dir()):
            crate = _read_crate(d)
            if crate:
                found.append(crate)
    return found


def find_root(start: Path | None = None) -> Path:
    """The workspace root: the nearest directory at or above `start` (default: the current
    directory) holding ``Cargo.toml`` and ``sdk-rust/``."""
    for base in [Path(start or Path.cwd()).resolve()]:
        for d in (base, *base.parents):
            if (d / "Cargo.toml").is_file() and (d / "sdk-rust").is_dir():
                return d
    raise UserError("not inside the wasi-hw workspace (no Cargo.toml with sdk-rust/ "
                    "above the current directory); use --root")


def _select(all_crates: list[Crate], names: Sequence[str]) -> list[Crate]:
    if not names:
        return all_crates
    by_name = {c.name: c for c in all_crates} | {c.package: c for c in all_crates}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise UserError(f"no crate named {', '.join(unknown)} "
                        f"(have: {', '.join(c.name for c in all_crates)})")
    picked: dict[str, Crate] = {}
    for n in names:
        picked[by_name[n].name] = by_name[n]
    return list(picked.values())


def _copy_if_changed(src: Path, dst: Path) -> bool:
    data = src.read_bytes()
    if dst.is_file() and dst.read_bytes() == data:
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    # A unique temporary name, then an atomic rename: concurrent builds and loaders never
    # see half a module.
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return True


def _wasm_outputs(messages: Iterable[str], by_manifest: dict[Path, Crate]) -> dict[str, Path]:
    """Crate name → its `.wasm`, from cargo's `--message-format=json` lines."""
    out: dict[str, Path] = {}
    for line in messages:
        if not line.startswith("{"):
            continue
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if msg.get("reason") != "compiler-artifact":
            continue
        if "cdylib" not in msg.get("target", {}).get("kind", []):
            continue
        crate = by_manifest.get(Path(msg.get("manifest_path", "")).resolve())
        wasm = [f for f in msg.get("filenames", []) if f.endswith(".wasm")]
        if crate and wasm:
            out[crate.name] = Path(wasm[0])
    return out


def build(
    root: Path,
    names: Sequence[str] = (),
    *,
    release: bool = True,
    toolchain: Toolchain | None = None,
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
) -> list[Artifact]:
    """Build `names` (default: every crate) for wasm; see the module docstring."""
    root = Path(root).resolve()
    if not (root / "Cargo.toml").is_file():
        raise UserError(f"{root}: no Cargo.toml (not the wasi-hw workspace root)")
    selected = _select(crates(root), names)
    if not selected:
        raise UserError(f"{root}: no crates to build (sdk-rust/ and drivers/*/ are empty)")
    tc = toolchain or select_toolchain()
    return _build_modules(tc, root, selected, release, run, "the workspace")


def _cargo_build(tc: Toolchain, cwd: Path, packages: Sequence[str], release: bool,
                 run: Callable[..., subprocess.CompletedProcess],
                 manifest: Path | None = None) -> subprocess.CompletedProcess:
    """One ``cargo build`` for the wasm target with the toolchain's settings."""
    cmd = [tc.cargo, "build", "--target", WASM_TARGET, "--keep-going",
           "--message-format=json-render-diagnostics"]
    if manifest is not None:
        cmd += ["--manifest-path", str(manifest)]
    if release:
        cmd.append("--release")
    cmd += list(tc.args)
    for p in packages:
        cmd += ["-p", p]
    env = {**os.environ, **tc.env}
    if os.environ.get(_RUSTFLAGS_VAR) and _RUSTFLAGS_VAR in tc.env:   # theirs, then ours
        env[_RUSTFLAGS_VAR] = f"{os.environ[_RUSTFLAGS_VAR]} {tc.env[_RUSTFLAGS_VAR]}"
    try:
        return run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=None, text=True,
                   check=False)
    except OSError as err:
        raise UserError(f"cannot run {tc.cargo}: {err.strerror or err}") from None


def _metadata(tc: Toolchain, manifest: Path) -> dict:
    env = {**os.environ, **{k: v for k, v in tc.env.items() if k != _RUSTFLAGS_VAR}}
    try:
        out = subprocess.run([tc.cargo, "metadata", "--no-deps", "--format-version", "1",
                              "--manifest-path", str(manifest)], env=env, capture_output=True,
                             text=True, timeout=300, check=False)
    except (OSError, subprocess.SubprocessError) as err:
        raise UserError(f"cannot run {tc.cargo} metadata: {err}") from None
    if out.returncode != 0:
        why = out.stderr.strip().splitlines()
        raise UserError(f"{manifest}: cargo cannot read it: "
                        f"{why[-1] if why else 'exit ' + str(out.returncode)}")
    return json.loads(out.stdout)


def _build_modules(tc: Toolchain, cwd: Path, selected: Sequence[Crate], release: bool,
                   run: Callable[..., subprocess.CompletedProcess], where: str,
                   manifest: Path | None = None) -> list[Artifact]:
    """One cargo build of `selected`; each driver crate's (cdylib's) wasm is copied to
    ``cwd/OUT_DIR``. Raises `BuildError` (carrying the modules that were built) if cargo
    failed or a driver's wasm is missing; `where` names what was built in that message."""
    proc = _cargo_build(tc, cwd, [c.package for c in selected], release, run, manifest)
    by_manifest = {(c.path / "Cargo.toml").resolve(): c for c in selected}
    wasm = _wasm_outputs(proc.stdout.splitlines(), by_manifest)
    artifacts, failed = [], []
    for c in selected:
        if not c.cdylib:
            continue  # the SDK: an rlib, built as a dependency, no module of its own
        src = wasm.get(c.name)
        if src is None or not src.is_file():
            failed.append(c.name)
            continue
        dst = cwd / OUT_DIR / f"{c.name}.wasm"
        changed = _copy_if_changed(src, dst)
        artifacts.append(Artifact(c.name, dst, dst.stat().st_size, changed))
    if proc.returncode != 0 or failed:
        what = ", ".join(failed) if failed else where
        raise BuildError(f"cargo build failed for {what} (exit {proc.returncode}, "
                         f"{tc.route} route); see the compiler messages above", artifacts)
    return artifacts


def build_path(
    path: Path | str,
    *,
    release: bool = True,
    toolchain: Toolchain | None = None,
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
) -> list[Artifact]:
    """Build the crate or workspace at `path` (see the module docstring)."""
    path = Path(path).resolve()
    if path.is_file() and path.name == "Cargo.toml":
        path = path.parent
    manifest = path / "Cargo.toml"
    if not manifest.is_file():
        why = "no such directory" if not path.exists() else "no Cargo.toml there"
        raise UserError(f"{path}: not a Rust crate or workspace ({why}); give the directory "
                        "of a driver crate, e.g. `wasi-hw new driver mysensor` makes one")
    tc = toolchain or select_toolchain()
    meta = _metadata(tc, manifest)
    members = set(meta.get("workspace_members") or [])
    here = [p for p in meta.get("packages", []) if p.get("id") in members or not members]
    own = [p for p in here if Path(p["manifest_path"]).resolve() == manifest.resolve()]
    chosen = own or [p for p in here
                     if Path(p["manifest_path"]).resolve().is_relative_to(path)]
    found = [Crate(Path(p["manifest_path"]).parent.name, p["name"],
                   Path(p["manifest_path"]).parent.resolve(),
                   any("cdylib" in t.get("crate_type", t.get("kind", [])) for t in p["targets"]))
             for p in chosen]
    drivers = [c for c in found if c.cdylib]
    if not drivers:
        raise UserError(f"{manifest}: no driver crate here (a driver has "
                        '`crate-type = ["cdylib", …]` under [lib])')
    return _build_modules(tc, path, drivers, release, run, str(path), manifest)


def cargo_config(tc: Toolchain | None = None) -> str:
    """The toolchain's settings as a ``.cargo/config.toml`` (see the module docstring)."""
    tc = tc or select_toolchain()
    flags = tc.env.get(_RUSTFLAGS_VAR, _STACK_FLAGS).split()
    alias = ["build", "--release", "--target", WASM_TARGET, *tc.args]
    lines = [
        f"# Generated by wasi-hw for this machine's wasm route ({tc.route}): the settings",
        "# `wasi-hw build` uses, for plain cargo. `cargo wasm` builds the release module to",
        f"# target/{WASM_TARGET}/release/*.wasm; `cargo test` stays native.",
    ]
    if tc.route == "debian":
        lines.append(
            "# Debian's cargo needs `RUSTC_BOOTSTRAP=1 /usr/bin/cargo wasm` for -Zbuild-std."
        )
    lines.append("")
    if "RUSTC" in tc.env:
        lines += ["[build]", f'rustc = "{tc.env["RUSTC"]}"', ""]
    lines.append(f"[target.{WASM_TARGET}]")
    if _LINKER_VAR in tc.env:
        lines.append(f'linker = "{tc.env[_LINKER_VAR]}"')
    lines.append("rustflags = [" + ", ".join(f'"{f}"' for f in flags) + "]   "
                 f"# {STACK_SIZE // 1024} KiB wasm stack, as every wasi-hw driver")
    lines += ["", "[alias]", "wasm = [" + ", ".join(f'"{a}"' for a in alias) + "]", ""]
    return "\n".join(lines)
