"""Run one command inside a real Debian kernel under QEMU — the real-kernel test tier.

Usage::

    python tests/vm/vm.py prepare            # fetch + unpack the kernel into the cache
    python tests/vm/vm.py run -- CMD ARGS... # boot, run CMD in the host's root, exit with its code

From Python: ``run_in_vm(script, timeout)`` runs a ``/bin/sh`` script and returns a
`VmResult` (exit code, the command's output, the whole console log); ``run_python_in_vm``
does the same for Python source run by the interpreter that calls it (the repo's venv).

How a run works (contract):

- **Kernel** — the real ``linux-image-<abi>-amd64`` package that ``linux-image-amd64``
  depends on (or ``$WASI_HW_VM_KERNEL``) is fetched with ``apt-get download``, unpacked with
  ``dpkg -x`` and indexed with ``depmod -b`` into ``<repo>/.cache/vm/<package>_<version>/``
  (``$WASI_HW_VM_CACHE`` overrides the parent). The uncompressed ELF ``vmlinux`` is cut out of
  the bzImage (the XZ or zstd stream after the setup code, as ``extract-vmlinux`` does) so
  QEMU boots it directly through its PVH note. All of this happens once per kernel version;
  without apt (or offline) the newest kernel already in the cache is used.
- **Initramfs** — built in Python per run (newc cpio): a statically linked busybox, the
  modules that mounting needs (virtio-pci, 9p over virtio, overlayfs, with their
  ``modules.dep`` closure), ``/dev/console``, and the run's script and environment.
- **Guest** — ``/init`` mounts the host's ``/`` read-only over 9p, puts a tmpfs-backed
  overlay on top (the guest may write anywhere; nothing reaches the host), links the cached
  module tree at ``/lib/modules``, brings ``lo`` up, chroots, ``cd``\\s to the caller's
  working directory and runs the script with ``/bin/sh``. Inside the chroot ``/proc``
  (proc), ``/sys`` (sysfs) and ``/dev`` (devtmpfs, with ``/dev/pts`` and ``/dev/shm``) are
  mounted afresh and ``/tmp`` and ``/run`` are fresh tmpfs — except for the host
  directories right below them that the run needs (this checkout, the working directory, the
  interpreter's prefix, the kernel cache), which stay bound through at the same path.
  Its stdout and stderr go to the serial console between two marker lines; the exit code
  follows in the second marker, then the guest powers off.
- **QEMU** — ``qemu-system-x86_64 -M q35 -accel tcg -nographic`` (``ACCEL=kvm`` selects KVM),
  the host root exported with ``-virtfs …,multidevs=remap`` (without it the roots of the
  host's separate filesystems — ``/proc``, ``/sys``, … — share one 9p inode number, the
  guest takes those directories for one, and the chroot's ``/proc`` showed the sysfs
  mounted on ``/sys``), ``-no-reboot``, one CPU, ``$WASI_HW_VM_MEM`` MiB (default 1024), a
  hard wall-clock timeout after which QEMU is killed and `VmError` raised.

Inside the guest: ``WASI_HW_IN_VM=1``, ``WASI_HW_REPO`` (this checkout), ``HOME=/tmp``,
``PYTHONDONTWRITEBYTECODE=1``, plus the ``env`` given; the network has only ``lo`` (a
USB/IP server and ``usbip attach`` meet on 127.0.0.1); modules load with ``modprobe``.

No udev runs in the guest. devtmpfs still creates the device nodes (``/dev/i2c-N``,
``/dev/bus/usb/BBB/DDD``, ``/dev/sdX``), but nothing loads a class driver when a device
appears: a script that needs one loads it by hand before attaching the device, e.g.
``modprobe -a usbhid usb-storage sd_mod`` (without ``-a`` modprobe takes one module and
reads the other words as its parameters).

Errors: `VmUnavailable` (one line) when the tier cannot run on this machine — a missing
tool, no kernel package, QEMU failing to start; tests skip with that line. `VmError` when
the guest booted but the run broke (timeout, no exit marker); it carries the console tail.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import hashlib
import lzma
import os
import re
import shlex
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = [
    "VmError",
    "VmUnavailable",
    "VmResult",
    "Kernel",
    "prepare",
    "run_in_vm",
    "run_python_in_vm",
    "main",
]

REPO = Path(__file__).resolve().parents[2]
_BEGIN = "@@WASI-HW-VM-BEGIN@@"
_EXIT_RE = re.compile(r"@@WASI-HW-VM-EXIT (\d+)@@")
# Modules /init loads before it can mount the host root; their dependencies come from
# modules.dep (in dependency order).
_BOOT_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay")
_TOOLS = {
    "qemu-system-x86_64": "qemu-system-x86",
    "busybox": "busybox-static",
    "apt-get": "apt",
    "dpkg": "dpkg",
    "depmod": "kmod",
}


class VmUnavailable(Exception):
    """The VM tier cannot run on this machine (the message is one line)."""


class VmError(Exception):
    """The guest booted but the run failed (timeout, crash); carries the console."""

    def __init__(self, message: str, console: str = "") -> None:
        tail = "\n".join(console.splitlines()[-40:])
        super().__init__(f"{message}\n--- console (tail) ---\n{tail}" if tail else message)
        self.console = console


@dataclasses.dataclass(frozen=True)
class VmResult:
    returncode: int
    output: str  # the command's stdout+stderr (as the serial console carried it)
    console: str  # everything the console printed, kernel and init included
    seconds: float


@dataclasses.dataclass(frozen=True)
class Kernel:
    release: str  # uname -r, e.g. "6.1.0-56-amd64"
    vmlinux: Path
    modules: Path  # the directory holding <release>/ (to appear as /lib/modules)


# --------------------------------------------------------------------------- prepare


def _cache_root() -> Path:
    return Path(os.environ.get("WASI_HW_VM_CACHE", REPO / ".cache" / "vm"))


def _check_tools(names) -> None:
    for name in names:
        if shutil.which(name) is None and not Path("/usr/sbin", name).exists():
            raise VmUnavailable(
                f"VM tier unavailable: `{name}` not found (apt-get install {_TOOLS[name]})"
            )


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)
    except subprocess.CalledProcessError as err:
        msg = (err.stderr or err.stdout or "").strip().splitlines()
        raise VmUnavailable(
            f"VM tier unavailable: `{shlex.join(cmd)}` failed: {msg[-1] if msg else err}"
        ) from None


def _busybox() -> str:
    return shutil.which("busybox") or "/bin/busybox"


def _static_busybox() -> None:
    """The initramfs has no libc: busybox must be linked statically (no PT_INTERP)."""
    with open(_busybox(), "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            raise VmUnavailable(f"VM tier unavailable: {_busybox()} is not a 64-bit ELF")
        phoff, = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        if struct.unpack_from("<I", table, i * phentsize)[0] == 3:  # PT_INTERP
            raise VmUnavailable(f"VM tier unavailable: {_busybox()} is dynamically linked "
                                "(apt-get install busybox-static)")


def _kernel_package() -> str:
    pkg = os.environ.get("WASI_HW_VM_KERNEL")
    if pkg:
        return pkg
    out = _run(["apt-cache", "depends", "linux-image-amd64"]).stdout
    found = re.findall(r"Depends:\s+(linux-image-\S+-amd64)", out)
    if not found:
        raise VmUnavailable("VM tier unavailable: linux-image-amd64 has no kernel dependency")
    return found[0]


def _depmod() -> str:
    return shutil.which("depmod") or "/usr/sbin/depmod"


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The uncompressed ELF kernel inside a bzImage: the first XZ or zstd stream that
    decompresses to an ELF image (what scripts/extract-vmlinux does)."""
    for magic, kind in ((b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd")):
        start = bzimage.find(magic)
        while start != -1:
            data = _decompress(bzimage[start:], kind)
            if data[:4] == b"\x7fELF":
                return data
            start = bzimage.find(magic, start + 1)
    raise VmUnavailable("VM tier unavailable: no XZ/zstd-compressed ELF kernel in the bzImage")


def _decompress(stream: bytes, kind: str) -> bytes:
    if kind == "xz":
        try:
            return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(stream)
        except lzma.LZMAError:
            return b""
    if shutil.which("zstd") is None:
        return b""
    proc = subprocess.run(["zstd", "-dcq"], input=stream, capture_output=True)
    return proc.stdout  # trailing data after the frame makes zstd complain; the output stands


def prepare(*, quiet: bool = True) -> Kernel:
    """Make sure the kernel is in the cache (download + unpack once); return it."""
    _check_tools(["qemu-system-x86_64", "busybox"])
    _static_busybox()
    root = _cache_root()
    try:
        package = _kernel_package()
    except VmUnavailable:  # no apt here (or offline): any kernel prepared before will do
        cached = sorted(root.glob("*/complete"))
        if cached:
            return _load_kernel(cached[-1].parent)
        raise
    for done in sorted(root.glob(f"{package}_*/complete")):
        return _load_kernel(done.parent)
    _check_tools(["apt-get", "dpkg", "depmod"])
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be preparing the same kernel
        for done in sorted(root.glob(f"{package}_*/complete")):
            return _load_kernel(done.parent)
        if not quiet:
            print(f"vm: fetching {package} …", file=sys.stderr)
        with tempfile.TemporaryDirectory(dir=root, prefix=".prep-") as tmp:
            tmpdir = Path(tmp)
            _run(["apt-get", "download", package], cwd=tmpdir)
            debs = list(tmpdir.glob("*.deb"))
            if len(debs) != 1:
                raise VmUnavailable(f"VM tier unavailable: apt-get download gave {debs}")
            version = debs[0].name.split("_")[1]
            staging = tmpdir / "kernel"
            staging.mkdir()
            _run(["dpkg", "-x", str(debs[0]), str(staging / "root")])
            releases = [p.name for p in (staging / "root/lib/modules").iterdir()]
            if len(releases) != 1:
                raise VmUnavailable(f"VM tier unavailable: {package} has modules {releases}")
            release = releases[0]
            _run([_depmod(), "-b", str(staging / "root"), release])
            bz = staging / "root/boot" / f"vmlinuz-{release}"
            (staging / "vmlinux").write_bytes(extract_vmlinux(bz.read_bytes()))
            bz.unlink()  # the ELF replaces it
            (staging / "release").write_text(release + "\n")
            (staging / "complete").write_text(f"{package} {version}\n")
            final = root / f"{package}_{version}"
            os.rename(staging, final)
        return _load_kernel(final)


def _load_kernel(path: Path) -> Kernel:
    release = (path / "release").read_text().strip()
    return Kernel(release, path / "vmlinux", path / "root/lib/modules")


# --------------------------------------------------------------------------- initramfs


class _Cpio:
    """A newc ("070701") cpio archive, as the kernel's initramfs unpacker reads it."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._ino = 1
        self._dirs: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev=(0, 0)) -> None:
        name_b = name.encode() + b"\0"
        fields = (self._ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0)
        self._ino += 1
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        self._parts += [header, name_b, b"\0" * (-(len(header) + len(name_b)) % 4)]
        self._parts += [data, b"\0" * (-len(data) % 4)]

    def dir(self, name: str) -> None:
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if sub not in self._dirs:
                self._dirs.add(sub)
                self._entry(sub, stat.S_IFDIR | 0o755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        parent = os.path.dirname(name.strip("/"))
        if parent:
            self.dir(parent)
        self._entry(name.strip("/"), stat.S_IFREG | mode, data)

    def chardev(self, name: str, major: int, minor: int) -> None:
        parent = os.path.dirname(name.strip("/"))
        if parent:
            self.dir(parent)
        self._entry(name.strip("/"), stat.S_IFCHR | 0o600, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        data = b"".join(self._parts)
        return data + b"\0" * (-len(data) % 512)


def _module_closure(kernel: Kernel, names) -> list[Path]:
    """Module files for `names` and their dependencies, each after what it needs."""
    base = kernel.modules / kernel.release
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (base / "modules.dep").read_text().splitlines():
        mod, _, rest = line.partition(":")
        deps[mod] = rest.split()
        stem = os.path.basename(mod).split(".ko")[0]
        by_name[stem.replace("-", "_")] = mod
    order: list[str] = []

    def visit(mod: str) -> None:
        if mod in order:
            return
        for dep in reversed(deps[mod]):  # modules.dep lists the deepest dependency last
            visit(dep)
        order.append(mod)

    for name in names:
        mod = by_name.get(name.replace("-", "_"))
        if mod is None:
            builtin = (base / "modules.builtin").read_text()
            if f"/{name}.ko" in builtin:
                continue
            raise VmUnavailable(f"VM tier unavailable: kernel {kernel.release} lacks {name}")
        visit(mod)
    return [base / mod for mod in order]


_INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
die() { echo "wasi-hw-vm init: $*"; echo "@@WASI-HW-VM-EXIT 255@@"; poweroff -f; }
for m in $(cat /boot-modules/order); do insmod "/boot-modules/$m" || die "insmod $m failed"; done
mkdir -p /host /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 root /host \
    || die "cannot mount the host root over 9p"
mount -t tmpfs -o size=75% tmpfs /rw && mkdir /rw/upper /rw/work
mount -t overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work overlay /newroot \
    || die "cannot mount the overlay"
mount -t proc proc /newroot/proc || die "cannot mount /proc in the guest root"
mount -t sysfs sysfs /newroot/sys || die "cannot mount /sys in the guest root"
mount -t devtmpfs devtmpfs /newroot/dev || die "cannot mount /dev in the guest root"
for d in /tmp /run; do  # fresh tmpfs, but what the run needs from the host's stays reachable
    mkdir -p "/rw/under$d" && mount -o bind "/newroot$d" "/rw/under$d" \
        || die "cannot keep the host's $d"
    mount -t tmpfs tmpfs "/newroot$d"
done
while IFS= read -r p; do
    [ -n "$p" ] || continue
    mkdir -p "/newroot$p" && mount -o bind "/rw/under$p" "/newroot$p" || die "cannot bind $p"
done < /keep-paths
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs tmpfs /newroot/dev/shm
rm -rf /newroot/usr/lib/modules
ln -sfn "$MODULES" /newroot/usr/lib/modules
cp /run-script /newroot/tmp/wasi-hw-vm-script
cp /run-env /newroot/tmp/wasi-hw-vm-env
ip link set lo up
hostname wasi-hw-vm
echo "@@WASI-HW-VM-BEGIN@@"
chroot /newroot /bin/sh -c \
    '. /tmp/wasi-hw-vm-env; cd "$WASI_HW_VM_CWD" || exit 254; exec /bin/sh /tmp/wasi-hw-vm-script' \
    </dev/null 2>&1
echo "@@WASI-HW-VM-EXIT $?@@"
sync
poweroff -f
"""


def _initramfs(kernel: Kernel, script: str, env: dict[str, str]) -> bytes:
    cpio = _Cpio()
    for d in ("bin", "dev", "proc", "sys", "tmp"):
        cpio.dir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.chardev("dev/null", 1, 3)
    cpio.file("bin/busybox", Path(_busybox()).read_bytes(), 0o755)
    mods = _module_closure(kernel, _BOOT_MODULES)
    for mod in mods:
        cpio.file(f"boot-modules/{mod.name}", mod.read_bytes())
    cpio.file("boot-modules/order", "".join(f"{m.name}\n" for m in mods).encode())
    head, _, body = _INIT.partition("\n")
    init = f"{head}\nMODULES={shlex.quote(str(kernel.modules))}\n{body}"
    cpio.file("init", init.encode(), 0o755)
    cpio.file("run-script", script.encode())
    cpio.file("run-env", "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items()).encode())
    cpio.file("keep-paths", "".join(f"{p}\n" for p in _kept(kernel, env)).encode())
    return cpio.finish()


_FRESH = ("/tmp", "/run")
"""Directories the guest mounts a fresh tmpfs on (see `_INIT`)."""


def _kept(kernel: Kernel, env: dict[str, str]) -> list[str]:
    """The host directories right below a `_FRESH` one that the run needs (this checkout, the
    working directory, the interpreter's prefix, the kernel's module tree): bound through the
    guest's fresh tmpfs at the same path, so a checkout under /tmp works as anywhere else."""
    needed = [REPO, env["WASI_HW_VM_CWD"], sys.prefix, sys.executable, kernel.modules]
    kept = set()
    for path in needed:
        for p in {os.path.abspath(path), os.path.realpath(path)}:
            for fresh in _FRESH:
                if p.startswith(fresh + "/"):
                    kept.add(fresh + "/" + p[len(fresh) + 1 :].split("/")[0])
    return sorted(kept)


# --------------------------------------------------------------------------- run


def _guest_env(cwd: str, extra: dict[str, str] | None) -> dict[str, str]:
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "WASI_HW_IN_VM": "1",
        "WASI_HW_REPO": str(REPO),
        "WASI_HW_VM_CWD": cwd,
    }
    env.update(extra or {})
    return env


def _qemu_argv(kernel: Kernel, initrd: Path) -> list[str]:
    accel = os.environ.get("ACCEL", "tcg")
    mem = os.environ.get("WASI_HW_VM_MEM", "1024")
    # no_timer_check: on a loaded host TCG can be too slow for the kernel's IO-APIC timer
    # probe, which then panics ("IO-APIC + timer doesn't work") — seen on 2 shared cores
    cmdline = ("console=ttyS0 quiet loglevel=1 panic=-1 reboot=t rdinit=/init mitigations=off "
               "no_timer_check")
    return [
        "qemu-system-x86_64",
        "-M", "q35", "-accel", accel, "-cpu", "host" if accel == "kvm" else "max",
        "-smp", "1", "-m", mem,
        "-nographic", "-nodefaults", "-no-reboot", "-monitor", "none", "-serial", "stdio",
        "-net", "none",
        "-kernel", str(kernel.vmlinux), "-initrd", str(initrd), "-append", cmdline,
        "-virtfs", "local,path=/,mount_tag=root,security_model=none,readonly=on,multidevs=remap",
    ]  # fmt: skip


def run_in_vm(
    script: str,
    timeout: float = 120.0,
    *,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
) -> VmResult:
    """Boot the kernel, run `script` with /bin/sh in the host's root (chrooted, writable
    overlay), return its exit code and output. Raises `VmUnavailable` / `VmError`."""
    kernel = prepare()
    cwd = os.fspath(cwd or os.getcwd())
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="wasi-hw-vm-") as tmp:
        initrd = Path(tmp) / "initramfs.cpio"
        initrd.write_bytes(_initramfs(kernel, script, _guest_env(cwd, env)))
        try:
            proc = subprocess.Popen(
                _qemu_argv(kernel, initrd),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as err:
            raise VmUnavailable(f"VM tier unavailable: cannot start QEMU: {err}") from None
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise VmError(
                f"VM run timed out after {timeout:g} s", _text(out) + _text(err)
            ) from None
    console = _text(out)
    seconds = time.monotonic() - start
    exited = _EXIT_RE.search(console)
    if exited is None:
        errtext = _text(err).strip()
        if _BEGIN not in console and proc.returncode != 0 and errtext:
            raise VmUnavailable(f"VM tier unavailable: QEMU failed: {errtext.splitlines()[-1]}")
        raise VmError(f"the guest stopped without an exit code (QEMU status {proc.returncode})",
                      console + errtext)
    begin = console.find(_BEGIN)
    output = console[begin + len(_BEGIN) + 1 : exited.start()] if begin != -1 else ""
    return VmResult(int(exited.group(1)), output, console, seconds)


def run_python_in_vm(source: str, timeout: float = 120.0, **kw) -> VmResult:
    """Run Python `source` inside the VM with this process's interpreter (the venv)."""
    delim = "WASI_HW_PY_" + hashlib.sha256(source.encode()).hexdigest()[:16]
    script = f"{shlex.quote(sys.executable)} - <<'{delim}'\n{source}\n{delim}\n"
    return run_in_vm(script, timeout, **kw)


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "")


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vm.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("prepare", help="fetch and unpack the kernel into the cache")
    run = sub.add_parser("run", help="boot and run CMD inside; exit with its code")
    run.add_argument("--timeout", type=float, default=300.0)
    run.add_argument("--console", action="store_true", help="print the whole console log")
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "prepare":
            kernel = prepare(quiet=False)
            print(f"vm: kernel {kernel.release} ready: {kernel.vmlinux}")
            return 0
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            parser.error("run needs a command: vm.py run -- CMD ARGS...")
        result = run_in_vm(shlex.join(command), args.timeout)
    except VmUnavailable as err:
        print(f"vm: {err}", file=sys.stderr)
        return 77
    except VmError as err:
        print(f"vm: {err}", file=sys.stderr)
        return 124
    sys.stdout.write(result.console if args.console else result.output)
    sys.stdout.flush()
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
