"""The USB/IP wire format: exact bytes, round trips and hostile input."""

from __future__ import annotations

import socket
import struct

import pytest

from wasi_hw.host import _usbip_proto as proto


def _pair():
    a, b = socket.socketpair()
    a.settimeout(2)
    b.settimeout(2)
    return a, b


def _device(**kw):
    base = dict(busid="1-1", path="/sys/x/1-1", busnum=1, devnum=2, speed=3, vendor_id=0x1209,
                product_id=0x0003, bcd_device=0x0100, device_class=0, device_subclass=0,
                device_protocol=0, configuration_value=1, num_configurations=1,
                interfaces=((8, 6, 0x50), (3, 1, 1)))
    base.update(kw)
    return proto.ExportedDevice(**base)


def test_cmd_submit_layout_is_big_endian_48_bytes_then_out_data():
    raw = proto.pack_submit(proto.Submit(seqnum=7, devid=0x10002, direction=proto.DIR_OUT,
                                         ep=1, flags=0, length=3, data=b"abc", interval=4))
    assert len(raw) == 48 + 3
    assert raw[:20] == struct.pack(">IIIII", 1, 7, 0x10002, 0, 1)
    assert raw[20:40] == struct.pack(">Iiiii", 0, 3, 0, 0, 4)
    assert raw[40:48] == bytes(8) and raw[48:] == b"abc"


def test_in_submit_carries_setup_and_no_data():
    setup = bytes([0x80, 6, 0, 1, 0, 0, 18, 0])
    raw = proto.pack_submit(proto.Submit(1, 2, proto.DIR_IN, 0, proto.URB_DIR_IN, 18, setup,
                                         b"ignored"))
    assert len(raw) == 48 and raw[40:48] == setup


def test_ret_unlink_and_unlink_layout():
    assert proto.pack_unlink(9, 1, 0, 2, 5) == struct.pack(">IIIIII", 2, 9, 1, 0, 2, 5) + bytes(24)
    assert proto.pack_ret_unlink(9, -104) == struct.pack(">IIIIIi", 4, 9, 0, 0, 0, -104) + bytes(24)


def test_devlist_round_trip_with_interfaces():
    a, b = _pair()
    devs = [_device(), _device(busid="1-2", devnum=3, interfaces=((0xFF, 0, 0),))]
    a.sendall(proto.pack_devlist_reply(devs))
    assert proto.read_devlist_reply(b) == devs
    raw = proto.pack_devlist_reply(devs[:1])
    assert len(raw) == 8 + 4 + 312 + 2 * 4
    assert raw[:8] == struct.pack(">HHI", 0x0111, 0x0005, 0)


def test_import_reply_refused_and_accepted():
    a, b = _pair()
    a.sendall(proto.pack_import_reply(None, 2))
    assert proto.read_import_reply(b) is None
    a.sendall(proto.pack_import_reply(_device(interfaces=())))
    assert proto.read_import_reply(b).busid == "1-1"
    assert proto.pack_import_request("1-2")[8:] == b"1-2".ljust(32, b"\0")


def test_command_round_trip_and_return_direction():
    a, b = _pair()
    sub = proto.Submit(3, 1, proto.DIR_OUT, 2, 0, 4, bytes(8), b"wxyz")
    a.sendall(proto.pack_submit(sub))
    assert proto.read_command(b) == sub
    a.sendall(proto.pack_ret_submit(proto.RetSubmit(3, 0, 2, b"hi"), proto.DIR_IN))
    got = proto.read_return(b, {3: proto.DIR_IN}.get)
    assert (got.seqnum, got.status, got.data) == (3, 0, b"hi")
    a.sendall(proto.pack_ret_unlink(4, 0))
    assert proto.read_return(b, {}.get) == proto.RetUnlink(4, 0)


def test_oversized_transfer_length_is_rejected_without_buffering():
    a, b = _pair()
    head = struct.pack(">IIIII", 1, 1, 1, 0, 1) + struct.pack(">Iiiii", 0, 1 << 30, 0, 0, 0)
    a.sendall(head + bytes(8))
    with pytest.raises(proto.ProtocolError, match="transfer_buffer_length"):
        proto.read_command(b)


def test_truncated_message_raises_connection_closed():
    a, b = _pair()
    whole = proto.pack_submit(proto.Submit(1, 1, proto.DIR_OUT, 1, 0, 10, data=b"0123456789"))
    a.sendall(whole[:55])
    a.close()
    with pytest.raises(proto.ConnectionClosed):
        proto.read_command(b)


def test_reply_data_for_unknown_urb_is_a_protocol_error():
    a, b = _pair()
    a.sendall(proto.pack_ret_submit(proto.RetSubmit(77, 0, 2, b"hi"), proto.DIR_IN))
    with pytest.raises(proto.ProtocolError, match="unknown seqnum"):
        proto.read_return(b, {}.get)


def test_unknown_command_and_bad_endpoint():
    a, b = _pair()
    a.sendall(struct.pack(">IIIII", 9, 1, 1, 0, 1) + bytes(28))
    with pytest.raises(proto.ProtocolError, match="unexpected command"):
        proto.read_command(b)
    a.sendall(struct.pack(">IIIII", 1, 1, 1, 0, 16) + bytes(28))
    with pytest.raises(proto.ProtocolError, match="endpoint"):
        proto.read_command(b)
