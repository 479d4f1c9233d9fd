#!/usr/bin/env bash
# wasi-hw developer entry point. The README's two commands:
#   ./dev.sh demo   build every driver and run the demo kernel on simulated devices
#   ./dev.sh test   run every test
# Each installs what it needs first (Debian packages, the venv, the Rust wasm
# toolchain) and skips what is already in place. Other verbs: setup, build, shell,
# dist (sdist + wheel in dist/, drivers included: what a Raspberry Pi installs).
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
    setup; build
    exec "$VENV/bin/python" -m pytest -n 2 "$@" ;;
  dist)
    setup; build
    mkdir -p dist
    exec "$VENV/bin/python" -c 'import setuptools.build_meta as b
for f in (b.build_sdist, b.build_wheel): print("dist/" + f("dist"))' ;;
  shell) setup; exec bash --rcfile <(echo "source '$VENV/bin/activate'") ;;
  *) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
