"""The fused bulk_transfer path (kernel/_usb_fast.py) gives exactly what the generated shim →
guard → host chain gives: same errnos, same bytes in guest memory, same audit records."""

from __future__ import annotations

import tempfile

import pytest
import wasmtime

from wasi_hw._bindings import _wasi_usb as abi
from wasi_hw.apps import _bench as B
from wasi_hw.host import SimUsbBackend
from wasi_hw.kernel import Backends, UsbGrant, _native

MAX = 4096


VARIANTS = ["installed"]   # the C Bulk where built, else the generic chain


@pytest.fixture(params=VARIANTS)
def running(request):
    bus = SimUsbBackend([B._source_device()])
    (info,) = bus.devices()
    manifest = B._manifest("usb-fast", usb=(UsbGrant(info.vendor_id, info.product_id,
                                                     interfaces=frozenset({0}),
                                                     endpoints=frozenset({0x01, 0x81})),),
                           memory_pages=3, max_transfer=MAX, deadline_ms=1000)
    wasm = wasmtime.wat2wasm(B._usb_wat("in", 1, 64))
    with tempfile.TemporaryDirectory() as cache:
        run = B._Running(manifest, wasm, Backends(usb=bus), cache)
        run.variant = request.param
        try:
            yield run
        finally:
            run.close()


def _pair(run):
    inst = run.instance
    guard = inst.guards["wasi_usb"]
    fused = inst.sandbox._shims[("wasi_usb", "bulk_transfer")]
    generic = abi.bind(guard, inst.mem, _fail(inst, guard))["bulk_transfer"]
    if _native.available():
        assert type(fused).__name__ == "Bulk"     # the C version is what the kernel installs
    handle = next(iter(guard._host._open))
    return inst, fused, generic, handle


def _fail(inst, guard):
    from wasi_hw.kernel._policy import make_fail
    return make_fail(inst.sandbox.manifest.name, "wasi_usb", abi.ERRNO, guard._audit,
                     inst.violations)


def _outcome(inst, fn, args):
    mem = inst.mem
    mem.write(40, b"\xee" * 4)
    mem.write(4096, b"\0" * 512)
    try:
        errno = fn(*args)
    except BaseException as exc:  # noqa: BLE001 — a trap is an outcome too
        errno = f"raised {type(exc).__name__}: {exc}"
    return errno, mem.read(40, 4), mem.read(4096, 512)


CASES = [
    ("in", (0x81, 4096, 512, 100, 40)),
    ("out", (0x01, 4096, 512, 100, 40)),
    ("in, timeout 0", (0x81, 4096, 64, 0, 40)),
    ("in, empty buffer", (0x81, 4096, 0, 100, 40)),
    ("over quota", (0x81, 4096, MAX + 1, 100, 40)),
    ("buffer outside memory", (0x81, 3 * 65536 - 8, 64, 100, 40)),
    ("negative pointer", (0x81, -8, 64, 100, 40)),
    ("ret outside memory", (0x81, 4096, 64, 100, 3 * 65536 - 2)),
    ("endpoint not granted", (0x82, 4096, 64, 100, 40)),
    ("endpoint out of range", (0x181, 4096, 64, 100, 40)),
]


@pytest.mark.parametrize("name,args", CASES, ids=[c[0] for c in CASES])
def test_fused_matches_generic(running, name, args):
    inst, fused, generic, handle = _pair(running)
    # twice each: the first call may run the generic chain (and prepare the fast path)
    got = [_outcome(inst, fn, (handle, *args)) for fn in (generic, fused, fused, generic)]
    assert got[0] == got[1] == got[2] == got[3], name


def test_bad_and_closed_handles(running):
    inst, fused, generic, handle = _pair(running)
    for fn in (fused, generic):
        assert _outcome(inst, fn, (handle, 0x81, 4096, 64, 100, 40))[0] == 0
    assert _outcome(inst, fused, (handle + 100, 0x81, 4096, 64, 100, 40)) == \
        _outcome(inst, generic, (handle + 100, 0x81, 4096, 64, 100, 40))
    inst.guards["wasi_usb"].close(handle)
    a = _outcome(inst, fused, (handle, 0x81, 4096, 64, 100, 40))
    assert a == _outcome(inst, generic, (handle, 0x81, 4096, 64, 100, 40))
    assert a[0] == abi.ERRNO["bad_handle"]


def test_release_drops_the_fast_path(running):
    inst, fused, generic, handle = _pair(running)
    assert _outcome(inst, fused, (handle, 0x81, 4096, 64, 100, 40))[0] == 0
    assert _outcome(inst, fused, (handle, 0x81, 4096, 64, 100, 40))[0] == 0
    inst.guards["wasi_usb"].release_interface(handle, 0)
    a = _outcome(inst, fused, (handle, 0x81, 4096, 64, 100, 40))
    assert a[0] == abi.ERRNO["not_found"] and a == _outcome(inst, generic,
                                                            (handle, 0x81, 4096, 64, 100, 40))


def test_backend_error_is_reported_once(running):
    inst, fused, generic, handle = _pair(running)
    assert _outcome(inst, fused, (handle, 0x81, 4096, 64, 100, 40))[0] == 0
    bus = inst.guards["wasi_usb"]._host.backend
    bus.fail_next("pipe", 1)
    assert _outcome(inst, fused, (handle, 0x81, 4096, 64, 100, 40))[0] == abi.ERRNO["pipe"]
    assert _outcome(inst, fused, (handle, 0x81, 4096, 64, 100, 40))[0] == 0   # not re-run


def test_audit_records_match(running):
    inst, fused, generic, handle = _pair(running)
    audit, name = inst.guards["wasi_usb"]._audit, inst.sandbox.manifest.name
    before = len(audit.for_driver(name))
    _outcome(inst, fused, (handle, 0x82, 4096, 64, 100, 40))      # endpoint not granted
    _outcome(inst, generic, (handle, 0x82, 4096, 64, 100, 40))
    recs = audit.for_driver(name)[before:]
    assert len(recs) == 2
    strip = [{k: v for k, v in r.items() if k not in ("time", "ts", "when")} for r in recs]
    assert strip[0] == strip[1]


IN_ANSWERS = {
    "too long": lambda h, ep, n, t: b"x" * (n + 1),
    "list": lambda h, ep, n, t: [1, 2, 3],
    "bytearray": lambda h, ep, n, t: bytearray(b"ab"),
    "memoryview": lambda h, ep, n, t: memoryview(b"abc"),
    "empty": lambda h, ep, n, t: b"",
    "raises": lambda h, ep, n, t: (_ for _ in ()).throw(ValueError("bad")),
}
OUT_ANSWERS = {
    "text": lambda h, ep, data, t: "x",
    "negative": lambda h, ep, data, t: -1,
    "too big": lambda h, ep, data, t: 2**33,
    "float": lambda h, ep, data, t: 1.0,
    "ok": lambda h, ep, data, t: len(data),
}


@pytest.mark.parametrize("answer", sorted(IN_ANSWERS) + sorted(OUT_ANSWERS))
def test_odd_backend_answers_match(running, answer):
    bus = running.instance.guards["wasi_usb"]._host.backend
    if answer in IN_ANSWERS:
        bus.bulk_in, ep = IN_ANSWERS[answer], 0x81
    else:
        bus.bulk_out, ep = OUT_ANSWERS[answer], 0x01
    inst, fused, generic, handle = _pair(running)
    args = (handle, ep, 4096, 64, 100, 40)
    got = [_outcome(inst, fn, args) for fn in (generic, fused, fused, generic)]
    assert got[0] == got[1] == got[2] == got[3], answer


def test_keyboard_interrupt_from_the_backend_propagates(running):
    bus = running.instance.guards["wasi_usb"]._host.backend

    def stop(*a):
        raise KeyboardInterrupt
    bus.bulk_in = stop
    inst, fused, generic, handle = _pair(running)
    for fn in (generic, fused):
        with pytest.raises(KeyboardInterrupt):
            fn(handle, 0x81, 4096, 64, 100, 40)


def test_random_calls_match(running):
    """Random arguments (edges of every range included): fused and generic agree."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    inst, fused, generic, handle = _pair(running)
    top = 3 * 65536
    i32 = st.one_of(st.integers(-(2**31), 2**31 - 1),
                    st.sampled_from([0, 1, -1, 2**31 - 1, -(2**31), top - 4, top - 1, top, MAX,
                                     MAX + 1, 4096, 40]))

    @settings(max_examples=150, deadline=None, database=None)
    @given(h=st.sampled_from([handle, handle + 1, -1, 0]),
           ep=st.sampled_from([0x81, 0x01, 0x82, 0x181, -127]),
           data=i32, n=i32, timeout=i32, ret=i32)
    def check(h, ep, data, n, timeout, ret):
        args = (h, ep, data, n, timeout, ret)
        got = [_outcome(inst, fn, args) for fn in (generic, fused)]
        assert got[0] == got[1], args

    check()
