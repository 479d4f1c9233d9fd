"""A Debian bookworm arm64 root run under qemu-user — the aarch64 test tier (Raspberry Pi
OS 64-bit is bookworm arm64).

Usage::

    python tests/arm64/arm64.py prepare          # build (or reuse) the cached root
    python tests/arm64/arm64.py install          # build the sdist, install it in the root
    python tests/arm64/arm64.py run -- CMD ...   # run CMD inside the root (chroot)

Contract:

- **binfmt** — aarch64 binaries run through ``qemu-aarch64-static`` registered with
  binfmt_misc. `enable_binfmt()` mounts ``binfmt_misc`` on ``/proc/sys/fs/binfmt_misc`` when
  it is not mounted and enables the ``qemu-aarch64`` entry (``update-binfmts``, else the
  registration is written directly, with the ``F`` flag so the interpreter is opened once and
  works inside a chroot). It raises `Arm64Unavailable` (one line: what is missing) when this
  cannot be had — not root, no qemu-user-static, a kernel without binfmt_misc.
- **The root** — ``debootstrap --arch=arm64 --variant=minbase`` with the packages of
  `RECIPE`, then a venv ``/opt/venv`` holding the project's runtime and test dependencies
  (read from ``pyproject.toml``) installed by pip *inside* the root (aarch64 wheels; the
  host's CA bundle and ``/etc/pip.conf`` are copied in first). It lives in
  ``<repo>/.cache/arm64/<recipe-hash>/root`` (``$WASI_HW_ARM64_CACHE`` overrides the parent)
  and is rebuilt when the recipe's hash changes (the recipe, the dependency lists, this
  tooling's `RECIPE_VERSION`); a ``complete`` marker is written last, so a broken build is
  redone. Older roots are removed when a new one completes.
- **The project** — `install()` builds an sdist of the checkout on the host and, inside the
  root, ``pip wheel`` builds the wheel from it (``kernel/_cnative.c`` compiled by the aarch64
  gcc, as on a Pi) and ``pip install`` installs that wheel (not editable) into ``/opt/venv``.
  Done again only when the sdist's content changes (stamp in the venv); a file lock
  serialises concurrent callers.
- **Runs** — `run(script)` runs ``/bin/sh -c script`` chrooted into the root, in a private
  mount namespace (``unshare --mount``) that mounts ``/proc``, binds ``/dev``, a fresh tmpfs
  on ``/tmp`` and the checkout read-only at ``/srv/wasi-hw`` (its tests, manifests and the
  host's ``build/wasm/``; run Python from another directory, or the checkout's ``wasi_hw/``
  would shadow the installed package) (and `binds`, read-write): every mount disappears with the namespace, whatever happens to the run.
  ``PATH`` starts with ``/opt/venv/bin``. Returns the `subprocess.CompletedProcess` (text);
  a run past its timeout is killed and raises `Arm64Error`.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable

__all__ = ["Arm64Unavailable", "Arm64Error", "RECIPE", "recipe_hash", "enable_binfmt",
           "prepare", "install", "run", "Root"]

REPO = Path(__file__).resolve().parents[2]
RECIPE_VERSION = 1
RECIPE = {
    "suite": "bookworm",
    "mirror": "http://deb.debian.org/debian",
    # python3-dev + gcc + libc6-dev: the C extension builds as on a Pi; libusb-1.0-0 for pyusb
    "packages": ["python3", "python3-venv", "python3-dev", "python3-pip", "gcc", "libc6-dev",
                 "ca-certificates", "libusb-1.0-0"],
    # the dev extras the tier's pytest subset needs (no xdist, umockdev, matplotlib)
    "test_deps": ["pytest", "pytest-timeout", "hypothesis"],
}
SRV = "/srv/wasi-hw"              # where the checkout's tests and drivers appear in the root
_QEMU = "/usr/bin/qemu-aarch64-static"
# binfmt_misc registration of aarch64 ELF executables (as Debian's qemu-user-static has it)
_MAGIC = r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00"
_MASK = r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"
_BINFMT = Path("/proc/sys/fs/binfmt_misc")


class Arm64Unavailable(Exception):
    """The tier cannot run on this machine (one line: why)."""


class Arm64Error(Exception):
    """Building the root or a run inside it failed."""


def _say(msg: str) -> None:
    print(f"arm64: {msg}", file=sys.stderr, flush=True)


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _deps() -> list[str]:
    """The project's runtime dependencies, its build requirements and the test tools."""
    py = _pyproject()
    return [*py["project"]["dependencies"], *py["build-system"]["requires"],
            *RECIPE["test_deps"]]


def recipe_hash() -> str:
    blob = json.dumps({"v": RECIPE_VERSION, **RECIPE, "deps": _deps()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _cache_parent() -> Path:
    return Path(os.environ.get("WASI_HW_ARM64_CACHE", REPO / ".cache" / "arm64"))


class Root:
    """A prepared root: its path and how long preparing took this time (0 if cached)."""

    def __init__(self, path: Path, built_s: float) -> None:
        self.path = path
        self.built_s = built_s


# -- binfmt ----------------------------------------------------------------------------------

def _entry_enabled() -> bool:
    try:
        return (_BINFMT / "qemu-aarch64").read_text().splitlines()[0].strip() == "enabled"
    except OSError:
        return False


def enable_binfmt() -> None:
    """Make aarch64 executables run here (module docstring), or raise `Arm64Unavailable`."""
    if os.uname().machine == "aarch64":
        return
    if os.geteuid() != 0:
        raise Arm64Unavailable("needs root (debootstrap, chroot and binfmt_misc)")
    if not Path(_QEMU).exists():
        raise Arm64Unavailable(f"{_QEMU} missing (apt-get install qemu-user-static)")
    if not (_BINFMT / "register").exists():
        r = subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(_BINFMT)],
                           capture_output=True, text=True)
        if not (_BINFMT / "register").exists():
            raise Arm64Unavailable("cannot mount binfmt_misc on /proc/sys/fs/binfmt_misc: "
                                   f"{(r.stderr or r.stdout).strip() or 'no such filesystem'}")
    if _entry_enabled():
        return
    if shutil.which("update-binfmts"):
        subprocess.run(["update-binfmts", "--enable", "qemu-aarch64"], capture_output=True)
    if not _entry_enabled():
        if (_BINFMT / "qemu-aarch64").exists():
            (_BINFMT / "qemu-aarch64").write_text("1")
        else:
            try:
                (_BINFMT / "register").write_text(
                    f":qemu-aarch64:M::{_MAGIC}:{_MASK}:{_QEMU}:F")
            except OSError as err:
                raise Arm64Unavailable(f"cannot register qemu-aarch64 with binfmt_misc: "
                                       f"{err.strerror or err}") from None
    if not _entry_enabled():
        raise Arm64Unavailable("the qemu-aarch64 binfmt_misc entry cannot be enabled")


# -- the root --------------------------------------------------------------------------------

@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _check(cmd: list[str], what: str, timeout: float, **kw) -> subprocess.CompletedProcess:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        raise Arm64Error(f"{what}: no result after {timeout:.0f} s") from None
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-25:])
        raise Arm64Error(f"{what} failed (exit {r.returncode}):\n{tail}")
    return r


def prepare() -> Root:
    """The cached root for the current recipe, built first if needed (module docstring)."""
    enable_binfmt()
    for tool in ("debootstrap", "chroot", "unshare", "mount"):
        if not shutil.which(tool):
            raise Arm64Unavailable(f"{tool} missing (apt-get install debootstrap util-linux)")
    parent = _cache_parent()
    key = recipe_hash()
    home = parent / key
    root = home / "root"
    with _locked(parent / "lock"):
        if (home / "complete").exists():
            return Root(root, 0.0)
        t0 = time.monotonic()
        if home.exists():
            _remove(home)
        home.mkdir(parents=True)
        _say(f"building the bookworm arm64 root in {home} (debootstrap, once per recipe)")
        # in its own mount namespace: the /proc it mounts in the root goes away with it
        _check(["unshare", "--mount", "--propagation", "private",
                "debootstrap", "--arch=arm64", "--variant=minbase",
                "--include=" + ",".join(RECIPE["packages"]), RECIPE["suite"], str(root),
                RECIPE["mirror"]], "debootstrap", 3600)
        _copy_host_config(root)
        _say(f"debootstrap done in {time.monotonic() - t0:.0f} s; installing the Python "
             "dependencies in the root")
        deps = " ".join(f"'{d}'" for d in _deps())
        r = run(root, f"python3 -m venv /opt/venv && /opt/venv/bin/pip install -q "
                      f"--disable-pip-version-check {deps}", timeout=3600, mount_srv=False)
        if r.returncode != 0:
            raise Arm64Error(f"pip in the root failed:\n{r.stdout}{r.stderr}")
        built = time.monotonic() - t0
        (home / "complete").write_text(json.dumps({"seconds": built, "recipe": RECIPE,
                                                   "deps": _deps()}, indent=1))
        _say(f"root ready in {built:.0f} s")
        for old in parent.iterdir():             # roots of earlier recipes
            if old.is_dir() and old.name != key:
                _remove(old)
        return Root(root, built)


def _remove(path: Path) -> None:
    """Remove a cached root — never one with something still mounted inside it."""
    inside = str(path.resolve()) + "/"
    with open("/proc/self/mountinfo") as f:
        mounted = [line.split()[4] for line in f if line.split()[4].startswith(inside)]
    if mounted:
        raise Arm64Error(f"{path}: still mounted inside ({', '.join(mounted)}); unmount first")
    shutil.rmtree(path)


def _copy_host_config(root: Path) -> None:
    """pip inside the root trusts what the host trusts and uses its index configuration."""
    ca = Path("/etc/ssl/certs/ca-certificates.crt")
    if ca.exists():
        (root / "etc/ssl/certs").mkdir(parents=True, exist_ok=True)
        shutil.copy2(ca, root / "etc/ssl/certs/ca-certificates.crt")
    for conf in (Path("/etc/pip.conf"),):
        if conf.exists():
            shutil.copy2(conf, root / conf.relative_to("/"))
    resolv = Path("/etc/resolv.conf")
    if resolv.exists():
        target = root / "etc/resolv.conf"
        if target.is_symlink():
            target.unlink()
        shutil.copy2(resolv, target)


def build_sdist(out: Path) -> Path:
    """An sdist of the checkout (setuptools' own backend; one build at a time per checkout)."""
    out.mkdir(parents=True, exist_ok=True)
    code = ("import sys, setuptools.build_meta as b; "
            "print(b.build_sdist(sys.argv[1]))")
    with _locked(REPO / ".cache" / "sdist.lock"):     # setuptools writes egg-info in the tree
        r = _check([sys.executable, "-c", code, str(out)], "building the sdist", 300, cwd=REPO)
    return out / r.stdout.strip().splitlines()[-1]


def _content_hash(sdist: Path) -> str:
    """The sdist's member contents (its mtimes vary from build to build)."""
    h = hashlib.sha256()
    with tarfile.open(sdist) as tar:
        for m in sorted(tar.getmembers(), key=lambda m: m.name):
            if m.isfile():
                h.update(m.name.encode() + b"\0" + tar.extractfile(m).read())
    return h.hexdigest()[:16]


def install(root: Root | Path) -> dict:
    """Build the sdist here, the wheel in the root, install it there (module docstring).
    Returns ``{"seconds": …, "cached": bool, "wheel": name}``."""
    path = root.path if isinstance(root, Root) else Path(root)
    with tempfile.TemporaryDirectory() as tmp:
        sdist = build_sdist(Path(tmp))
        stamp = _content_hash(sdist)
        with _locked(path.parent / "install.lock"):
            done = path / "opt/venv/.wasi-hw-installed"
            if done.exists() and json.loads(done.read_text()).get("stamp") == stamp:
                return {**json.loads(done.read_text()), "cached": True}
            t0 = time.monotonic()
            dist = path / "opt/dist"
            shutil.rmtree(dist, ignore_errors=True)
            dist.mkdir(parents=True)
            shutil.copy2(sdist, dist / sdist.name)
            r = run(path, "set -e; cd /opt/dist; "
                          f"pip wheel -q --no-deps --no-build-isolation {sdist.name} -w . ; "
                          "pip install -q --no-deps --force-reinstall wasi_hw-*.whl; ls *.whl",
                    timeout=1800, mount_srv=False)
            if r.returncode != 0:
                raise Arm64Error(f"installing the project in the root failed:\n"
                                 f"{r.stdout}{r.stderr}")
            record = {"stamp": stamp, "seconds": time.monotonic() - t0,
                      "wheel": r.stdout.strip().splitlines()[-1]}
            done.write_text(json.dumps(record))
            return {**record, "cached": False}


# -- runs ------------------------------------------------------------------------------------

def _mounts(root: Path, mount_srv: bool, binds: Iterable[tuple[Path, str]] = ()) -> str:
    q = lambda p: "'" + str(p).replace("'", "'\\''") + "'"  # noqa: E731
    lines = [
        "set -e",
        f"mount -t proc proc {q(root / 'proc')}",
        f"mount --rbind /dev {q(root / 'dev')}",
        f"mount -t tmpfs tmpfs {q(root / 'tmp')}",
    ]
    if mount_srv:
        dst = root / SRV.lstrip("/")
        lines += [f"mkdir -p {q(dst)}", f"mount --bind {q(REPO)} {q(dst)}",
                  f"mount -o remount,bind,ro {q(dst)}"]
    for src, inside in binds:                  # read-write exchange directories
        dst = root / inside.lstrip("/")
        lines += [f"mkdir -p {q(dst)}", f"mount --bind {q(src)} {q(dst)}"]
    return "\n".join(lines)


def run(root: Root | Path, script: str, *, timeout: float = 600, env: dict | None = None,
        mount_srv: bool = True, cwd: str = "/",
        binds: Iterable[tuple[Path, str]] = ()) -> subprocess.CompletedProcess:
    """Run ``/bin/sh -c script`` in the root (module docstring)."""
    path = root.path if isinstance(root, Root) else Path(root)
    genv = {"PATH": "/opt/venv/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": "/root", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
            "WASI_HW_IN_ARM64": "1", **(env or {})}
    inner = (f"{_mounts(path, mount_srv, binds)}\n"
             f"exec chroot '{path}' /bin/sh -c 'cd {cwd} && exec /bin/sh -c \"$WASI_HW_ARM64_SCRIPT\"'")
    proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                             inner], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**genv, "WASI_HW_ARM64_SCRIPT": script},
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        out, err = proc.communicate()
        raise Arm64Error(f"run in the arm64 root: no result after {timeout:.0f} s\n"
                         f"{out[-3000:]}{err[-3000:]}") from None
    except BaseException:                 # interrupted (Ctrl-C, a test timeout): leave nothing
        os.killpg(proc.pid, 9)
        proc.wait()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="arm64.py", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("prepare")
    sub.add_parser("install")
    p = sub.add_parser("run")
    p.add_argument("argv", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    try:
        root = prepare()
        if args.cmd == "prepare":
            print(root.path)
            return 0
        info = install(root)
        if args.cmd == "install":
            print(json.dumps(info))
            return 0
        import shlex
        r = run(root, " ".join(shlex.quote(a) for a in args.argv[args.argv[:1] == ["--"]:]),
                timeout=3600)
        sys.stdout.write(r.stdout)
        sys.stderr.write(r.stderr)
        return r.returncode
    except Arm64Unavailable as err:
        print(f"arm64 tier unavailable: {err}", file=sys.stderr)
        return 3
    except Arm64Error as err:
        print(f"arm64: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
