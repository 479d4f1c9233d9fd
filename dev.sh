#!/usr/bin/env bash
# wasi-hw developer entry point. The README's two commands:
#   ./dev.sh demo   build every driver and run the demo kernel on simulated devices
#   ./dev.sh test   run every test and the gates (ruff, mypy, clippy), then the kernel
#                   suite again on the host-call path's fallback (WASI_HW_NATIVE=0)
# Each installs what it needs first (Debian packages, the venv, the Rust wasm
# toolchain) and skips what is already in place. Other verbs: setup, build, shell,
# dist (sdist + wheel in dist/, drivers included: what a Raspberry Pi installs), gates
# (just ruff, mypy and clippy: tests/test_gates.py) and fix (their mechanical fixes).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
VENV=$ROOT/.venv

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# ---- Debian packages ---------------------------------------------------------
# Python venv support and build deps for pygobject (umockdev's bindings), libusb,
# umockdev (emulated /dev/i2c-N and usbfs), Debian's usbip client, and QEMU +
# busybox for the real-kernel test tier, and wasi-libc (the C runtime that the
# wasm32-wasip1 reference binary of tests/witx/test_witx_preview1_abi.py links against).
APT_PKGS=(python3-venv python3-dev gcc pkg-config libgirepository1.0-dev libcairo2-dev
          libusb-1.0-0 umockdev gir1.2-umockdev-1.0 usbip
          qemu-system-x86 busybox-static cpio kmod xz-utils zstd wasi-libc)
APT_PKGS+=(debootstrap qemu-user-static binfmt-support)  # the aarch64 tier: a bookworm arm64 root run under qemu-user
APT_PKGS+=(libasan8 libubsan1)  # the C extension's sanitizer test tier (tests/kernel/test_sanitizers.py)
APT_PKGS+=(nats-server)  # IMC remote path and fleet tests start a real NATS server
# The Rust wasm toolchain: a rustup toolchain that already has the
# wasm32 target, else Debian's rustc-web + std sources + wasm-ld.
RUST_PKGS=(rustc-web cargo-web rust-web-src lld-22)
RUST_PKGS+=(rust-web-clippy)  # clippy for that toolchain: the Rust lint gate (tests/test_gates.py)

rustup_has_wasm() {
  command -v rustup >/dev/null 2>&1 &&
    rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown
}

apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  say "installing Debian packages: ${missing[*]}"
  if [ ! -f "$ROOT/.cache/apt-updated" ]; then
    $sudo apt-get update -q >/dev/null
    mkdir -p "$ROOT/.cache" && touch "$ROOT/.cache/apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}" >/dev/null
}

setup() {
  apt_install "${APT_PKGS[@]}"
  rustup_has_wasm || apt_install "${RUST_PKGS[@]}"
  local stamp=$VENV/.wasi-hw-stamp want
  # the editable install builds kernel/_cnative.c in place: redo it when either changes
  want=$(cat pyproject.toml kernel/_cnative.c | sha256sum | cut -c1-16)
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating the venv"
    python3 -m venv "$VENV"
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! compgen -G "kernel/_cnative*.so" >/dev/null; then
    say "installing wasi-hw and its Python dependencies into .venv"
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null
    "$VENV/bin/pip" install -q -e '.[dev]'
    echo "$want" > "$stamp"
  fi
}

build() {
  "$VENV/bin/wasi-hw" build
}

cmd=${1:-help}; shift || true
case "$cmd" in
  setup) setup ;;
  build) setup; build ;;
  demo)
    setup; build
    exec "$VENV/bin/wasi-hw" kernel run drivers/demo.kernel.toml "$@" ;;
  test)
    # Every test, the gates (ruff, mypy, clippy: tests/test_gates.py) among them; then the
    # kernel suite again on the ctypes fallback of the host-call path (WASI_HW_NATIVE=0).
    # With arguments: just `pytest ARGS`.
    setup; build
    [ $# -gt 0 ] && exec "$VENV/bin/python" -m pytest -n 2 "$@"
    "$VENV/bin/python" -m pytest -n 2
    say "the kernel suite without the native host-call path (WASI_HW_NATIVE=0)"
    WASI_HW_NATIVE=0 exec "$VENV/bin/python" -m pytest -n 2 tests/kernel \
      --ignore=tests/kernel/test_fuzz_shims.py ;;
  dist)
    setup; build
    mkdir -p dist
    exec "$VENV/bin/python" -c 'import setuptools.build_meta as b
for f in (b.build_sdist, b.build_wheel): print("dist/" + f("dist"))' ;;
  gates)
    setup
    exec "$VENV/bin/python" -m pytest -n 2 tests/test_gates.py "$@" ;;
  fix)  # the mechanical fixes: bindings regenerated, ruff's fixes, long lines split by ruff format
    setup
    "$VENV/bin/wasi-hw" gen
    "$VENV/bin/ruff" check --fix --exit-zero -q .
    { "$VENV/bin/ruff" check --select E501 --output-format concise . || true; } |
      sed -n 's/^\([^:]*\):\([0-9]*\):.*/\1 \2/p' | sort -k1,1 -k2,2nr |
      while read -r f l; do
        "$VENV/bin/ruff" format -q --config 'format.quote-style="preserve"' --range "$l:1-$l:1000" "$f"
      done
    exec "$VENV/bin/ruff" check --fix . ;;
  shell) setup; exec bash --rcfile <(echo "source '$VENV/bin/activate'") ;;
  *) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
