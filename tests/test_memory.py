"""GuestMemory / GuestRegion over a real wasmtime memory."""

import pytest
import wasmtime

from wasi_hw import GuestFault, HwError
from wasi_hw._memory import GuestMemory, GuestRegion

PAGE = 65536


@pytest.fixture
def env():
    store = wasmtime.Store(wasmtime.Engine())
    memory = wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(1, 4)))
    return memory, store, GuestMemory(memory, store, max_copy=4096)


def test_read_write_roundtrip(env):
    memory, store, mem = env
    mem.write(100, b"hello")
    assert mem.read(100, 5) == b"hello"
    assert memory.read(store, 100, 105) == b"hello"  # really in linear memory
    mem.write(200, bytearray(b"\x01\x02"))
    mem.write(300, memoryview(b"xyz"))
    assert mem.read(200, 2) == b"\x01\x02" and mem.read(300, 3) == b"xyz"


def test_fixed_width_little_endian(env):
    _, _, mem = env
    mem.write_u8(0, 0xAB)
    mem.write_u16(2, 0x1234)
    mem.write_u32(4, 0xDEADBEEF)
    mem.write_u64(8, 0x0102030405060708)
    assert mem.read(2, 2) == b"\x34\x12"
    assert (mem.read_u8(0), mem.read_u16(2), mem.read_u32(4), mem.read_u64(8)) == \
        (0xAB, 0x1234, 0xDEADBEEF, 0x0102030405060708)
    mem.write_struct(32, "<HBxI", 7, 8, 9)
    assert mem.read_struct(32, "<HBxI") == (7, 8, 9)


def test_last_byte_ok_one_past_faults(env):
    _, _, mem = env
    mem.write(PAGE - 1, b"z")
    assert mem.read(PAGE - 1, 1) == b"z"
    assert mem.read(PAGE, 0) == b""
    with pytest.raises(GuestFault) as e:
        mem.read(PAGE - 1, 2)
    assert e.value.kind == "fault"
    with pytest.raises(GuestFault):
        mem.write_u32(PAGE - 3, 1)
    with pytest.raises(GuestFault):
        mem.read_u64(PAGE - 7)


@pytest.mark.parametrize("ptr,n", [(-1, 1), (0xFFFFFFFF, 1), (-4, 8), (0x7FFFFFFF, 0x7FFFFFFF),
                                   (PAGE + 1, 0), (1, -1)])
def test_unsigned_and_overflow_safe(env, ptr, n):
    _, _, mem = env
    with pytest.raises(GuestFault):
        mem.read(ptr, n) if n >= 0 else mem.region(ptr, n)


def test_negative_length_from_guest_is_huge(env):
    _, _, mem = env
    # an i32 length of -1 from the guest means 4 GiB - 1: outside memory
    with pytest.raises(GuestFault):
        mem.read(0, -1)


def test_quota_no_mem_after_bounds(env):
    memory, store, mem = env
    with pytest.raises(HwError) as e:
        mem.read(0, 4097)
    assert e.value.kind == "no_mem"
    with pytest.raises(HwError) as e:
        mem.region(0, 5000)
    assert e.value.kind == "no_mem" and "4096" in str(e.value)
    with pytest.raises(HwError) as e:
        mem.write(0, b"x" * 4097)
    assert e.value.kind == "no_mem"
    with pytest.raises(GuestFault):  # out of bounds wins over quota
        mem.read(PAGE, 5000)


def test_sees_growth_without_rebinding(env):
    memory, store, mem = env
    with pytest.raises(GuestFault):
        mem.write(PAGE + 10, b"grown")
    memory.grow(store, 1)
    mem.write(PAGE + 10, b"grown")
    assert mem.read(PAGE + 10, 5) == b"grown"
    assert mem.size() == 2 * PAGE


def test_read_str(env):
    _, _, mem = env
    mem.write(0, "grüße".encode())
    assert mem.read_str(0, len("grüße".encode())) == "grüße"
    mem.write(0, b"\xff\xfe")
    with pytest.raises(HwError) as e:
        mem.read_str(0, 2)
    assert e.value.kind == "invalid_argument"


def test_region(env):
    _, _, mem = env
    r = mem.region(10, 4)
    assert isinstance(r, GuestRegion) and len(r) == 4 and r.ptr == 10
    r.write(b"ab", offset=2)
    assert r.read() == b"\x00\x00ab"
    with pytest.raises(ValueError):
        r.write(b"abc", offset=2)
    with pytest.raises(ValueError):
        r.write(b"a", offset=-1)
    ro = mem.region(10, 4, writable=False)
    assert ro.read() == b"\x00\x00ab"
    with pytest.raises(ValueError):
        ro.write(b"x")
    with pytest.raises(GuestFault):
        mem.region(PAGE - 2, 4)
    assert len(mem.region(PAGE, 0)) == 0  # an empty region at the very end is valid


def test_public_api_fallback():
    """Objects that are not wasmtime's (no private handles) go through the public API."""
    store = wasmtime.Store(wasmtime.Engine())
    memory = wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(1, 1)))

    class Wrapped:  # exposes only the public Memory API
        def data_ptr(self, s):
            return memory.data_ptr(s)

        def data_len(self, s):
            return memory.data_len(s)

    class Store:
        pass

    mem = GuestMemory(Wrapped(), store, max_copy=64)
    mem.write(5, b"pub")
    assert memory.read(store, 5, 8) == b"pub"
    with pytest.raises(GuestFault):
        mem.read(PAGE, 1)


def test_max_copy_must_be_non_negative(env):
    memory, store, _ = env
    with pytest.raises(ValueError):
        GuestMemory(memory, store, max_copy=-1)


def test_keeps_its_store_alive():
    """Host code may outlive the kernel's own references; the raw pointers must stay valid."""
    import gc

    def make():
        store = wasmtime.Store(wasmtime.Engine())
        memory = wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(1, 1)))
        return GuestMemory(memory, store, max_copy=64)

    mem = make()
    gc.collect()
    mem.write(0, b"alive")
    assert mem.read(0, 5) == b"alive"


def test_pin_reads_the_size_once_per_host_call(env):
    """Between pin() and unpin() (one host call: the guest cannot run) the size read by
    pin() is used; outside, every access sees the current size again."""
    memory, store, mem = env
    mem.pin()
    memory.grow(store, 1)          # only the guest can do this, and not during its host call
    with pytest.raises(GuestFault):
        mem.write(PAGE + 10, b"x")
    assert mem.size() == PAGE
    mem.unpin()
    mem.write(PAGE + 10, b"grown")
    assert mem.read(PAGE + 10, 5) == b"grown" and mem.size() == 2 * PAGE
    region = mem.region(PAGE + 10, 5)
    mem.pin()
    assert region.read() == b"grown"
    region.write(b"GR", 1)
    mem.unpin()
    assert memory.read(store, PAGE + 10, PAGE + 15) == b"gGRwn"


def test_generated_shims_pin_and_always_unpin(env):
    from wasi_hw._bindings import _wasi_i2c

    memory, store, mem = env
    seen = []

    class Host:
        def __getattr__(self, name):
            def method(*args):
                seen.append((name, mem._pinned))
                raise HwError("nack_address")
            return method

    shims = _wasi_i2c.bind(Host(), mem, lambda exc, name: 99)
    assert shims["write_read"](1, 0x76, 0, 0, 1, 8, 1) == 99       # host raised
    assert shims["write_read"](1, 0x76, 0, PAGE, 1, 8, 1) == 99    # bad pointer, host not run
    assert shims["close"](1) == 99                                  # no memory: not pinned
    assert seen == [("write_read", True), ("close", False)] and mem._pinned is False
