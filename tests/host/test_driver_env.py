"""DriverEnv: report (CBOR), log (rate limit), config, inbox, time."""

from __future__ import annotations

import cbor2
import pytest

from i2c_testing import Region
from wasi_hw import HwError
from wasi_hw.host import DriverEnv, VirtualClock


def make(**kw):
    got = {"reports": [], "logs": []}
    env = DriverEnv(report_sink=got["reports"].append,
                    log_sink=lambda lvl, msg: got["logs"].append((lvl, msg)), **kw)
    return env, got


def test_report_decodes_one_item():
    env, got = make()
    env.report(cbor2.dumps({"temperature_c": 21.5, "ok": True}))
    assert got["reports"] == [{"temperature_c": 21.5, "ok": True}]


@pytest.mark.parametrize("data", [b"", b"\xa1\x61a", b"\x01\x02", b"\xff", b"\x5b" + b"\xff" * 8,
                                  b"\x81" * 40 + b"\x00", cbor2.dumps({"t": 1.5}) + b"\x00",
                                  cbor2.dumps("x" * 5000) + b"\xf6"])
def test_report_malformed(data):
    env, got = make(max_report=1 << 16)
    with pytest.raises(HwError) as e:
        env.report(data)
    assert e.value.kind == "invalid_argument"
    assert got["reports"] == []


def _outcome(decode, data):
    try:
        return ("ok", repr(decode(data)))
    except HwError as err:
        return ("error", err.kind)


def _samples(seed: int, count: int):
    import random
    rng = random.Random(seed)
    valid = [cbor2.dumps(v) for v in (0, -1, 2**70, 1.5, float("nan"), "x", b"\x00\x01",
                                       [1, [2, [3]]], {"a": {"b": [None, True]}}, "é" * 30)]
    valid += [b"\x81" * d + b"\x00" for d in (30, 31, 32, 33)]          # around the depth limit
    valid += [b"\x9f" * d + b"\x00" + b"\xff" * d for d in (31, 32, 33)]  # indefinite nesting
    valid += [b"\xd8\x1c\x81\x01", b"\xd8\x1d\x00", b"\xd9\x01\x00\x82\x61a\xd8\x19\x00"]
    for _ in range(count):
        base = bytearray(rng.choice(valid))
        op = rng.randrange(5)
        if op == 0 and base:                  # truncate
            del base[rng.randrange(len(base)):]
        elif op == 1:                          # trailing bytes, sometimes the framing's own
            base += rng.choice([b"\x00", b"\xff", b"\x50", b"\x82", bytes(rng.randrange(256)
                                                                      for _ in range(3))])
        elif op == 2 and base:                 # flip a byte
            base[rng.randrange(len(base))] = rng.randrange(256)
        elif op == 3:                          # random bytes
            base = bytearray(rng.randrange(256) for _ in range(rng.randrange(1, 12)))
        yield bytes(base)


@pytest.mark.parametrize("seed", range(4))
def test_report_fast_decode_matches_the_exact_decoder(seed):
    """The framed `cbor2.loads` fast path accepts exactly what the stream decoder accepts,
    with the same value (or falls back to it for the error)."""
    from wasi_hw.host._driver_env import _decode_exactly, decode_cbor_item
    for data in _samples(seed, 2500):
        assert _outcome(decode_cbor_item, data) == \
            _outcome(lambda d: _decode_exactly(d, 32), data), data.hex()


def test_report_quota():
    env, got = make(max_report=8)
    with pytest.raises(HwError) as e:
        env.report(cbor2.dumps("x" * 20))
    assert e.value.kind == "no_mem"


def test_log_levels_truncation_and_rate_limit():
    clock = VirtualClock()
    env, got = make(clock=clock, log_burst=2, log_rate=1.0, max_log=5)
    env.log(0, "boom")
    env.log(4, "0123456789")
    assert got["logs"] == [("error", "boom"), ("trace", "01234… [5 more]")]
    with pytest.raises(HwError) as e:
        env.log(2, "dropped")
    assert e.value.kind == "no_mem" and env.dropped_logs == 1
    clock.advance(1_000_000_000)
    env.log(2, "again")
    assert got["logs"][-1] == ("info", "again")
    with pytest.raises(HwError) as e:
        env.log(5, "bad level")
    assert e.value.kind == "invalid_argument"


def test_log_cannot_forge_lines_or_drive_the_terminal():
    env, got = make()
    env.log(2, "ok\nERROR fake\x1b[2J\ttab\x85")
    assert got["logs"] == [("info", "ok\\x0aERROR fake\\x1b[2J\ttab\\x85")]


def test_config_values_must_be_strings():
    with pytest.raises(TypeError):
        DriverEnv(config={"address": 0x76})


def test_config_get():
    env, _ = make(config={"bus": "i2c-1", "address": "0x76"})
    buf = Region(8)
    assert env.config_get("bus", buf) == 5 and buf.read()[:5] == b"i2c-1"
    with pytest.raises(HwError) as e:
        env.config_get("nope", buf)
    assert e.value.kind == "not_found"
    small = Region(2)
    with pytest.raises(HwError) as e:
        env.config_get("address", small)
    assert e.value.kind == "too_large" and small.writes == 0


def test_inbox_newest_wins_and_is_taken():
    env, _ = make()
    buf = Region(32)
    assert env.inbox(buf) == 0
    env.deliver({"n": 1})
    env.deliver({"n": 2})
    small = Region(2)
    with pytest.raises(HwError) as e:
        env.inbox(small)
    assert e.value.kind == "too_large"
    n = env.inbox(buf)
    assert cbor2.loads(buf.read()[:n]) == {"n": 2}
    assert env.inbox(buf) == 0


def test_now_ns_is_the_clock():
    clock = VirtualClock(123)
    env, _ = make(clock=clock)
    assert env.now_ns() == 123
    clock.advance(7)
    assert env.now_ns() == 130


def test_report_fast_decode_takes_well_formed_items_itself(monkeypatch):
    from wasi_hw.host import _driver_env

    def unused(*a):
        raise AssertionError("the exact decoder was used")
    monkeypatch.setattr(_driver_env, "_decode_exactly", unused)
    for value in ({"temperature_c": 22.49, "pressure_pa": 101327.17}, [1, [2, [3]]], "x" * 300):
        assert _driver_env.decode_cbor_item(cbor2.dumps(value)) == value
    with pytest.raises(AssertionError):    # anything else goes to it
        _driver_env.decode_cbor_item(cbor2.dumps(1) + b"\x00")


@pytest.mark.parametrize("hexdata,why", [
    ("d81c81d81d00", "shares values"),                     # a list that contains itself
    ("d9001c81d9001d00", "shares values"),                 # the same, non-minimal tag heads
    ("DAG", "shares values"),              # 30 levels of [x, x]: 2^30 nodes when printed
    ("c25908" + "00" + "ff" * 2048, "more than 4000 digits"),
    ("d81e82c25908" + "00" + "ff" * 2048 + "01", "more than 4000 digits"),   # a fraction
])
def test_unroutable_reports_are_invalid_argument(hexdata, why):
    env, got = make(max_report=8192)
    if hexdata == "DAG":
        x: object = 0
        for _ in range(30):
            x = [x, x]
        data = cbor2.dumps(x, value_sharing=True)
    else:
        data = bytes.fromhex(hexdata)
    with pytest.raises(HwError) as err:
        env.report(data)
    assert err.value.kind == "invalid_argument" and why in err.value.message
    assert got["reports"] == []


def test_shared_but_small_items_and_plain_items_pass():
    env, got = make()
    env.report(cbor2.dumps({"t": 21.5, "n": [1, 2, 3], "big": 2 ** 70}))
    assert got["reports"] == [{"t": 21.5, "n": [1, 2, 3], "big": 2 ** 70}]


def test_reports_are_rate_limited():
    clock = VirtualClock()
    env = DriverEnv(report_sink=lambda item: None, clock=clock, report_burst=5,
                    report_rate=10.0)
    for _ in range(5):
        env.report(b"\x01")
    with pytest.raises(HwError) as err:
        env.report(b"\x01")
    assert err.value.kind == "no_mem" and env.dropped_reports == 1
    clock.sleep_ns(100_000_000)                 # 0.1 s at 10/s: one more
    env.report(b"\x01")
    with pytest.raises(HwError):
        env.report(b"\x01")
