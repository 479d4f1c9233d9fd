"""USB endpoint rights against an oracle: the endpoints the simulated device was reached on.

Random endpoint grants and random transfer sequences (bulk, interrupt, clear_halt, and
endpoint-recipient control requests, on granted and ungranted endpoints) go through the real
import path — the C ``bulk_transfer`` where built, the generic chain otherwise, and the
checked host-call path. The device model records every endpoint a transfer reached
(``touched``); each must be endpoint 0 or granted.
"""

from __future__ import annotations

import os
import struct

import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wasi_hw.host import SimUsbBackend
from wasi_hw.host.usbdevices import EchoDevice
from wasi_hw.kernel import AuditLog
from wasi_hw.kernel._engine import KernelEngine
from wasi_hw.kernel._hosts import Backends, make_hosts
from wasi_hw.kernel._manifest import Limits, Manifest, UsbGrant
from wasi_hw.kernel._sandbox import Sandbox

EXAMPLES = int(os.environ.get("WASI_HW_ORACLE_EXAMPLES", "120"))
ENDPOINTS = [0x01, 0x81, 0x82, 0x02, 0x83]

# init: open the first listed device, claim interface 0; poll: [count] at 0x0ffc, 16-byte
# commands (op, endpoint, length) at 0x1000: 1 bulk, 2 interrupt, 3 clear_halt,
# 4 CLEAR_FEATURE(ENDPOINT_HALT) control request naming the endpoint
GUEST = """
(module
  (import "wasi_usb" "list_devices" (func $list (param i32 i32 i32 i32) (result i32)))
  (import "wasi_usb" "open" (func $open (param i32 i32) (result i32)))
  (import "wasi_usb" "claim_interface" (func $claim (param i32 i32) (result i32)))
  (import "wasi_usb" "bulk_transfer" (func $bulk (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_usb" "interrupt_transfer" (func $intr (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_usb" "clear_halt" (func $halt (param i32 i32) (result i32)))
  (import "wasi_usb" "control_transfer"
    (func $ctl (param i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $h (mut i32) (i32.const 0))
  (func (export "init") (result i32) (local $e i32)
    (local.set $e (call $list (i32.const 0) (i32.const 64) (i32.const 4) (i32.const 32)))
    (if (local.get $e) (then (return (local.get $e))))
    (local.set $e (call $open (i32.load (i32.const 64)) (i32.const 36)))
    (if (local.get $e) (then (return (local.get $e))))
    (global.set $h (i32.load (i32.const 36)))
    (drop (call $claim (global.get $h) (i32.const 0)))
    (i32.const 0))
  (func (export "poll") (result i32)
    (local $i i32) (local $c i32) (local $op i32) (local $ep i32) (local $n i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.load (i32.const 0x0ffc))))
      (local.set $c (i32.add (i32.const 0x1000) (i32.shl (local.get $i) (i32.const 4))))
      (local.set $op (i32.load (local.get $c)))
      (local.set $ep (i32.load offset=4 (local.get $c)))
      (local.set $n (i32.load offset=8 (local.get $c)))
      (drop
        (if (result i32) (i32.eq (local.get $op) (i32.const 1))
          (then (call $bulk (global.get $h) (local.get $ep) (i32.const 0x8000) (local.get $n)
                  (i32.const 2) (i32.const 40)))
          (else (if (result i32) (i32.eq (local.get $op) (i32.const 2))
            (then (call $intr (global.get $h) (local.get $ep) (i32.const 0x8000) (local.get $n)
                    (i32.const 2) (i32.const 40)))
            (else (if (result i32) (i32.eq (local.get $op) (i32.const 3))
              (then (call $halt (global.get $h) (local.get $ep)))
              (else (call $ctl (global.get $h) (i32.const 0x02) (i32.const 1) (i32.const 0)
                      (local.get $ep) (i32.const 0x8000) (i32.const 0) (i32.const 2)
                      (i32.const 40)))))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i32.const 0)))
"""


@pytest.fixture(scope="module")
def world():
    with KernelEngine() as engine:
        yield engine, wasmtime.Module(engine.engine, GUEST)


def run(world, grant: UsbGrant, device, commands, *, fast: bool) -> None:
    engine, module = world
    manifest = Manifest(name="usb-oracle", wasm=None, usb=(grant,),
                        limits=Limits(max_transfer=256, deadline_ms=5000, memory_pages=2))
    sandbox = Sandbox(engine, module, manifest, fast=fast)
    backend = SimUsbBackend([device])
    hosts = make_hosts(manifest, Backends(usb=backend), report_sink=lambda i: None,
                       log_sink=lambda level, message: None)
    inst = sandbox.start(hosts, AuditLog())
    assert inst.call("init") == 0
    inst.mem.write(0x0FFC, struct.pack("<I", len(commands)))
    for i, (op, ep, n) in enumerate(commands):
        inst.mem.write(0x1000 + 16 * i, struct.pack("<3I4x", op, ep, n))
    assert inst.call("poll") == 0


command = st.tuples(st.integers(1, 4), st.sampled_from(ENDPOINTS), st.integers(0, 16))


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "checked-path"])
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(granted=st.frozensets(st.sampled_from(ENDPOINTS)),
       commands=st.lists(command, min_size=1, max_size=10))
def test_device_is_reached_only_on_granted_endpoints(world, fast, granted, commands):
    grant = UsbGrant(0x1209, 0x0001, None, frozenset({0}), granted, frozenset())
    device = EchoDevice()
    run(world, grant, device, commands, fast=fast)
    assert device.touched <= granted | {0}, (granted, commands)


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "checked-path"])
def test_granted_endpoints_are_reached_and_others_not(world, fast):
    # the oracle is not vacuous: granted transfers do reach the device
    grant = UsbGrant(0x1209, 0x0001, None, frozenset({0}), frozenset({0x01, 0x81}),
                     frozenset())
    device = EchoDevice()
    run(world, grant, device, [(1, 0x01, 4), (1, 0x81, 4), (2, 0x82, 4), (3, 0x82, 0),
                               (4, 0x82, 0), (4, 0x01, 0)], fast=fast)
    assert device.touched == {0x01, 0x81, 0}
