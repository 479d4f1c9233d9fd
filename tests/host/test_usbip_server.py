"""`UsbipServer` on the wire: Debian's `usbip` client, raw USB/IP sessions, robustness."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time

import pytest

from wasi_hw.host import _usbip_proto as proto
from wasi_hw.host._usbip_server import UsbipServer
from wasi_hw.host.usbdevices import EchoDevice
from wasi_hw.host.usbdevices._keyboard import HidKeyboard
from wasi_hw.host.usbdevices._mass_storage import MassStorage

pytestmark = pytest.mark.engine  # a USB/IP server per test, and Debian's usbip client

GET_DEVICE = bytes([0x80, 6, 0, 1, 0, 0, 18, 0])
SET_CONFIG_1 = bytes([0, 9, 1, 0, 0, 0, 0, 0])


@pytest.fixture
def server(tmp_path):
    img = MassStorage.create_image(tmp_path / "disk.img", 64)
    msc = MassStorage(img)
    with UsbipServer([EchoDevice(), HidKeyboard("hi"), msc], port=0) as srv:
        yield srv
    msc.close()


def _connect(srv) -> socket.socket:
    s = socket.create_connection(srv.address, timeout=3)
    return s


def _import(srv, busid="1-1") -> socket.socket:
    s = _connect(srv)
    s.sendall(proto.pack_import_request(busid))
    assert proto.read_import_reply(s) is not None
    return s


def _submit(s, seq, direction, ep, length=0, setup=bytes(8), data=b""):
    s.sendall(proto.pack_submit(proto.Submit(seq, 0x10002, direction, ep, 0, length, setup, data)))


def _reply(s, directions):
    """The next reply; ``directions`` maps the seqnums of IN URBs in flight."""
    return proto.read_return(s, lambda seq: directions.get(seq, proto.DIR_OUT))


@pytest.mark.skipif(shutil.which("usbip") is None, reason="Debian's usbip client not installed")
def test_debian_usbip_list_shows_every_device(server):
    host, port = server.address
    out = subprocess.run(["usbip", "--tcp-port", str(port), "list", "-r", host],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    found = dict(re.findall(r"^\s+(\d+-\d+): .*\((\w{4}:\w{4})\)$", out.stdout, re.M))
    assert found == {"1-1": "1209:0001", "1-2": "1209:0002", "1-3": "1209:0003"}
    ifaces = re.findall(r":\s+(\d+) - .*\((\w\w/\w\w/\w\w)\)$", out.stdout, re.M)
    assert ifaces == [("0", "ff/00/00"), ("0", "03/01/01"), ("0", "08/06/50")]
    assert "/sys/devices/platform/wasi-hw/usb1/1-3" in out.stdout


def test_devlist_reports_speed_and_configuration(server):
    with _connect(server) as s:
        s.sendall(proto.pack_op(proto.OP_REQ_DEVLIST))
        devs = proto.read_devlist_reply(s)
    assert [d.busid for d in devs] == ["1-1", "1-2", "1-3"]
    full, high = proto.SPEED["full"], proto.SPEED["high"]
    assert [d.speed for d in devs] == [full, full, high]
    assert [(d.busnum, d.devnum) for d in devs] == [(1, 2), (1, 3), (1, 4)]
    assert all(d.num_configurations == 1 and d.configuration_value == 0 for d in devs)


def test_import_is_exclusive_and_unknown_busid_refused(server):
    with _import(server) as first:
        with _connect(server) as s:
            s.sendall(proto.pack_import_request("1-1"))
            _v, code, status = proto.unpack_op(proto.recv_exact(s, 8))
            assert (code, status) == (proto.OP_REP_IMPORT, 2)  # busy
        with _connect(server) as s:
            s.sendall(proto.pack_import_request("9-9"))
            _v, code, status = proto.unpack_op(proto.recv_exact(s, 8))
            assert (code, status) == (proto.OP_REP_IMPORT, 4)  # no such device
        _submit(first, 1, proto.DIR_IN, 0, 18, GET_DEVICE)
        r = _reply(first, {1: proto.DIR_IN})
        assert r.status == 0 and r.data == server.model("1-1").device_descriptor
    deadline = time.monotonic() + 3  # released when the connection ends
    while True:
        try:
            _import(server).close()
            break
        except AssertionError:
            assert time.monotonic() < deadline
            time.sleep(0.02)


def test_unlink_pending_in_answers_econnreset_and_no_ret_submit(server):
    with _import(server) as s:
        _submit(s, 1, proto.DIR_OUT, 0, 0, SET_CONFIG_1)
        assert _reply(s, {}).status == 0
        _submit(s, 2, proto.DIR_IN, 1, 64)  # echo queue empty: NAKs
        time.sleep(0.05)
        s.sendall(proto.pack_unlink(3, 0x10002, proto.DIR_IN, 1, 2))
        assert _reply(s, {2: proto.DIR_IN}) == proto.RetUnlink(3, -proto.ERRNO["ECONNRESET"])
        # the unlinked URB must not complete later: queue data, expect only URB 4's reply
        _submit(s, 4, proto.DIR_OUT, 1, 3, data=b"xyz")
        assert _reply(s, {}).seqnum == 4
        _submit(s, 5, proto.DIR_IN, 1, 64)
        r = _reply(s, {5: proto.DIR_IN})
        assert (r.seqnum, r.data) == (5, b"xyz")
        s.sendall(proto.pack_unlink(6, 0x10002, proto.DIR_IN, 1, 5))  # already done
        assert _reply(s, {}) == proto.RetUnlink(6, 0)


def test_pending_in_completes_when_data_arrives(server):
    with _import(server) as s:
        _submit(s, 1, proto.DIR_OUT, 0, 0, SET_CONFIG_1)
        _reply(s, {})
        _submit(s, 2, proto.DIR_IN, 1, 64)
        _submit(s, 3, proto.DIR_OUT, 1, 5, data=b"later")
        got = {r.seqnum: r for r in (_reply(s, {2: proto.DIR_IN}), _reply(s, {2: proto.DIR_IN}))}
        assert got[2].data == b"later" and got[3].actual == 5


def test_stall_is_epipe_and_model_failure_is_eproto(server, monkeypatch):
    with _import(server) as s:
        _submit(s, 1, proto.DIR_IN, 0, 1, bytes([0xC0, 3, 0, 0, 0, 0, 1, 0]))
        assert _reply(s, {1: proto.DIR_IN}).status == -proto.ERRNO["EPIPE"]
        model = server.model("1-1")

        def broken(setup, data_out):
            raise RuntimeError("model bug")

        monkeypatch.setattr(model, "control", broken)
        _submit(s, 2, proto.DIR_IN, 0, 1, bytes([0xC0, 2, 0, 0, 0, 0, 1, 0]))
        assert _reply(s, {2: proto.DIR_IN}).status == -proto.ERRNO["EPROTO"]
        _submit(s, 3, proto.DIR_IN, 0, 18, GET_DEVICE)  # the session goes on
        assert _reply(s, {3: proto.DIR_IN}).status == 0


def test_port_reset_request_resets_the_model(server):
    with _import(server) as s:
        _submit(s, 1, proto.DIR_OUT, 0, 0, SET_CONFIG_1)
        _reply(s, {})
        assert server.model("1-1").configuration == 1
        _submit(s, 2, proto.DIR_OUT, 0, 0, bytes([0x23, 3, 4, 0, 1, 0, 0, 0]))
        assert _reply(s, {}).status == 0
        assert server.model("1-1").configuration == 0


def test_garbage_ends_only_that_connection_and_disconnect_resets(server):
    with _import(server, "1-2") as bad:
        bad.sendall(b"\xff" * 48)
        assert bad.recv(1) == b""  # closed by the server
    with _import(server) as s:
        _submit(s, 1, proto.DIR_OUT, 0, 0, SET_CONFIG_1)
        _reply(s, {})
        assert server.disconnect("1-1")
        assert s.recv(1) == b""
    deadline = time.monotonic() + 3
    while server.model("1-1").configuration != 0:  # unplugged → bus reset
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not server.disconnect("1-1")


def test_stop_closes_listener_and_connections():
    srv = UsbipServer([EchoDevice()], port=0).start()
    addr = srv.address
    s = _import(srv)
    srv.stop()
    assert s.recv(1) == b""
    with pytest.raises(OSError):
        socket.create_connection(addr, timeout=1)
    with pytest.raises(RuntimeError):
        _ = srv.address



def test_isochronous_in_is_packed_with_per_packet_descriptors():
    from usb_testing import IsoSource

    with UsbipServer([IsoSource()], port=0) as srv, _import(srv) as s:
        _submit(s, 1, proto.DIR_OUT, 0, 0, SET_CONFIG_1)
        _reply(s, {})
        iso = [(0, 8, 0, 0), (8, 8, 0, 0), (16, 8, 0, 0)]
        s.sendall(proto.pack_submit(proto.Submit(2, 0x10002, proto.DIR_IN, 1, 0, 24, iso=iso)))
        r = _reply(s, {2: proto.DIR_IN})
        assert (r.status, r.actual, r.error_count) == (0, 11, 0)
        assert r.data == b"\x00" * 3 + b"\x01" * 8  # short packets packed, not padded
        assert r.iso == [(0, 8, 3, 0), (8, 8, 8, 0), (16, 8, 0, 0)]
        bad = [(0, 8, 0, 0), (20, 8, 0, 0)]  # second packet beyond the 16-byte buffer
        s.sendall(proto.pack_submit(proto.Submit(3, 0x10002, proto.DIR_OUT, 2, 0, 16,
                                                 data=bytes(16), iso=bad)))
        assert _reply(s, {}).status == -proto.ERRNO["EINVAL"]
