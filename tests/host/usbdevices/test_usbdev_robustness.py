"""Any bytes a host may send leave every model answering or stalling — never raising
anything else, never wedging the standard requests (property tests)."""

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wasi_hw.host.usbdevices import EchoDevice, HidKeyboard, MassStorage, Setup, Stall

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

setups = st.builds(Setup, st.integers(0, 255), st.integers(0, 255), st.integers(0, 0xFFFF),
                   st.integers(0, 0xFFFF), st.integers(0, 300))
ops = st.lists(st.one_of(
    st.tuples(st.just("control"), setups, st.binary(max_size=300)),
    st.tuples(st.just("out"), st.sampled_from([0x01, 0x02, 0x81, 0x82]), st.binary(max_size=600)),
    st.tuples(st.just("in"), st.sampled_from([0x01, 0x81, 0x82, 0x83]), st.integers(0, 1024)),
    st.tuples(st.just("reset"), st.none(), st.none()),
), max_size=40)


def drive(model, steps):
    model.handle_control(Setup(0, 9, 1, 0, 0))
    for kind, a, b in steps:
        try:
            if kind == "control":
                data = b"" if a.request_type & 0x80 else b[: a.length].ljust(a.length, b"\0")
                reply = model.handle_control(a, data)
                assert len(reply) <= a.length
            elif kind == "out":
                assert 0 <= model.handle_out(a, b) <= len(b)
            elif kind == "in":
                got = model.handle_in(a, b)
                assert got is None or len(got) <= b
            else:
                model.handle_reset()
                model.handle_control(Setup(0, 9, 1, 0, 0))
        except Stall:
            pass
    # the device still enumerates afterwards
    assert model.handle_control(Setup(0x80, 6, 0x0100, 0, 18)) == model.device_descriptor


@SETTINGS
@given(ops)
def test_echo_survives_anything(steps):
    drive(EchoDevice(), steps)


@SETTINGS
@given(ops)
def test_keyboard_survives_anything(steps):
    drive(HidKeyboard("abc", clock_ns=lambda: 0), steps)


cbws = st.builds(
    lambda sig, tag, length, flags, lun, cb: struct.pack("<IIIBBB", sig, tag, length, flags, lun,
                                                        len(cb)) + cb.ljust(16, b"\0"),
    st.sampled_from([0x43425355, 0x43425355, 0x12345678]), st.integers(0, 2**32 - 1),
    st.integers(0, 4096), st.sampled_from([0, 0x80]), st.sampled_from([0, 0, 1]),
    st.binary(min_size=1, max_size=16))
msc_ops = st.lists(
    st.one_of(
        st.tuples(st.just("out"), st.just(0x01), cbws),
        st.tuples(st.just("out"), st.just(0x01), st.binary(max_size=1100)),
        st.tuples(st.just("in"), st.just(0x82), st.integers(0, 2048)),
        st.tuples(
            st.just("control"),
            st.sampled_from(
                [
                    Setup(0x21, 0xFF, 0, 0, 0),
                    Setup(0x02, 1, 0, 0x82, 0),
                    Setup(0x02, 1, 0, 0x01, 0),
                    Setup(0xA1, 0xFE, 0, 0, 1),
                ]
            ),
            st.just(b""),
        ),
    ),
    max_size=30,
)


@SETTINGS
@given(msc_ops)
def test_mass_storage_survives_anything(steps):
    m = MassStorage(blocks=8)
    try:
        drive(m, steps)
        # reset recovery always brings back a working device
        m.handle_control(Setup(0x21, 0xFF, 0, 0, 0))
        m.handle_control(Setup(0x02, 1, 0, 0x82, 0))
        m.handle_control(Setup(0x02, 1, 0, 0x01, 0))
        m.handle_out(0x01, struct.pack("<IIIBBB", 0x43425355, 9, 0, 0, 0, 6) + bytes(16))
        assert m.handle_in(0x82, 13) == struct.pack("<IIIB", 0x53425355, 9, 0, 0)
    finally:
        m.close()
