"""NatsBridge on its own: framing, a server that is not there, reconnect state."""

from __future__ import annotations

import time

import pytest

from wasi_hw import HwError, UserError
from wasi_hw.fleet import NatsBridge, free_port
from wasi_hw.fleet._bridge import decode_reply, encode_error


def test_reply_framing_round_trips_every_kind():
    assert decode_reply(b"\0abc") == b"abc"
    for kind in ("unavailable", "timeout", "access", "too_large", "provider_failed", "no_mem"):
        with pytest.raises(HwError) as info:
            decode_reply(encode_error(HwError(kind, "why")))
        assert info.value.kind == kind and info.value.message == "why"
    with pytest.raises(HwError) as info:
        decode_reply(b"")
    assert info.value.kind == "provider_failed"
    with pytest.raises(HwError) as info:
        decode_reply(bytes([200]) + b"?")
    assert info.value.kind == "other"


def test_no_server_is_a_user_error_in_bounded_time():
    t0 = time.monotonic()
    with pytest.raises(UserError, match="cannot connect to NATS"):
        NatsBridge(f"nats://127.0.0.1:{free_port()}", connect_timeout=1).start()
    assert time.monotonic() - t0 < 5


def test_calls_while_disconnected_are_unavailable_at_once(nats_server):
    bridge = NatsBridge(nats_server.url, connect_timeout=2).start()
    try:
        assert bridge.connected
        nats_server.kill()
        end = time.monotonic() + 5
        while bridge.connected and time.monotonic() < end:
            time.sleep(0.01)
        t0 = time.monotonic()
        with pytest.raises(HwError) as info:
            bridge.request("x", "me", b"", 2.0)
        assert info.value.kind == "unavailable" and time.monotonic() - t0 < 0.5
        nats_server.restart()
        end = time.monotonic() + 10
        while not bridge.connected and time.monotonic() < end:
            time.sleep(0.02)
        assert bridge.connected                      # reconnected by itself
        with pytest.raises(HwError) as info:
            bridge.request("x", "me", b"", 2.0)
        assert info.value.kind == "unavailable"       # no responders, answered by the server
    finally:
        bridge.close()
