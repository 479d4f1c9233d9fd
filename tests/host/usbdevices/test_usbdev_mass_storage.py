"""The Bulk-Only Transport mass-storage device (host/usbdevices/_mass_storage.py)."""

import struct

import pytest

from wasi_hw.host.usbdevices import MassStorage, Setup, Stall

BLOCKS = 64


@pytest.fixture
def msc(tmp_path):
    img = MassStorage.create_image(tmp_path / "disk.img", BLOCKS)
    img.write_bytes(bytes(range(256)) * (BLOCKS * 2))
    m = MassStorage(img)
    m.handle_control(Setup(0, 9, 1, 0, 0))
    yield m
    m.close()


def cbw(cb, length=0, data_in=True, tag=7, lun=0, sig=0x43425355):
    return struct.pack(
        "<IIIBBB", sig, tag, length, 0x80 if data_in else 0, lun, len(cb)
    ) + cb.ljust(16, b"\0")


def csw(m):
    raw = m.handle_in(0x82, 13)
    sig, tag, residue, status = struct.unpack("<IIIB", raw)
    assert sig == 0x53425355
    return tag, residue, status


def run_in(m, cb, length, tag=7):
    assert m.handle_out(0x01, cbw(cb, length, True, tag)) == 31
    data = m.handle_in(0x82, length) if length else b""
    return data, csw(m)


def sense(m):
    data, status = run_in(m, bytes((0x03, 0, 0, 0, 18, 0)), 18)
    assert status[2] == 0
    return data[2] & 0xF, data[12], data[13]


def test_class_requests(msc):
    assert msc.handle_control(Setup(0xA1, 0xFE, 0, 0, 1)) == b"\0"
    assert msc.handle_control(Setup(0x21, 0xFF, 0, 0, 0)) == b""
    with pytest.raises(Stall):
        msc.handle_control(Setup(0xA1, 0xFE, 0, 1, 1))


def test_inquiry_capacity_tur(msc):
    data, (tag, residue, status) = run_in(msc, bytes((0x12, 0, 0, 0, 36, 0)), 36, tag=0x1234)
    assert tag == 0x1234 and residue == 0 and status == 0
    assert data[0] == 0 and data[8:16] == b"WASI-HW " and len(data) == 36
    data, (_, residue, status) = run_in(msc, bytes(10).replace(b"\0", b"\x25", 1), 8)
    assert struct.unpack(">II", data) == (BLOCKS - 1, 512) and status == 0
    assert run_in(msc, bytes(6), 0)[1] == (7, 0, 0)


def test_short_data_sets_residue(msc):
    data, (_, residue, status) = run_in(msc, bytes((0x12, 0, 0, 0, 36, 0)), 64)
    assert len(data) == 36 and residue == 28 and status == 0


def test_read10(msc):
    data, (_, residue, status) = run_in(msc, bytes((0x28, 0, 0, 0, 0, 2, 0, 0, 1, 0)), 512)
    assert status == 0 and residue == 0 and data == bytes(range(256)) * 2


def test_write10_is_durable_before_csw(msc, tmp_path):
    payload = b"\xAB" * 1024
    assert msc.handle_out(0x01, cbw(bytes((0x2A, 0, 0, 0, 0, 3, 0, 0, 2, 0)), 1024, False)) == 31
    assert msc.handle_in(0x82, 13) is None  # no CSW before the data phase
    assert msc.handle_out(0x01, payload[:600]) == 600
    assert msc.handle_out(0x01, payload[600:]) == 424
    assert csw(msc) == (7, 0, 0)
    raw = (tmp_path / "disk.img").read_bytes()  # what is on disk right now
    assert raw[3 * 512:5 * 512] == payload and raw[5 * 512:5 * 512 + 4] == bytes(range(4))


def test_unsupported_opcode_fails_with_illegal_request(msc):
    data, (_, residue, status) = run_in(msc, bytes((0xA0,) + (0,) * 11), 16)
    assert data == b"" and status == 1 and residue == 16
    assert sense(msc) == (0x05, 0x20, 0x00)
    assert sense(msc) == (0x00, 0x00, 0x00)  # REQUEST SENSE consumed it


def test_read_out_of_range(msc):
    data, (_, _, status) = run_in(msc, bytes((0x28, 0, 0, 0, 0, BLOCKS - 1, 0, 0, 2, 0)), 1024)
    assert status == 1 and data == b""
    assert sense(msc) == (0x05, 0x21, 0x00)


def test_write_out_of_range_discards_data(msc, tmp_path):
    before = (tmp_path / "disk.img").read_bytes()
    msc.handle_out(0x01, cbw(bytes((0x2A, 0, 0, 0, 0, BLOCKS, 0, 0, 1, 0)), 512, False))
    assert msc.handle_out(0x01, b"\xFF" * 512) == 512
    assert csw(msc)[1:] == (512, 1)
    assert (tmp_path / "disk.img").read_bytes() == before


@pytest.mark.parametrize("bad", [
    cbw(bytes(6))[:30],                 # wrong length
    cbw(bytes(6), sig=0x12345678),      # wrong signature
    cbw(bytes(6), lun=1),               # no such LUN
])
def test_invalid_cbw_stalls_until_reset_recovery(msc, bad):
    msc.handle_out(0x01, bad)
    for ep in (0x01, 0x82):
        assert msc.is_halted(ep)
    msc.handle_control(Setup(0x02, 1, 0, 0x82, 0))  # CLEAR_FEATURE alone is not enough
    assert msc.is_halted(0x82)
    msc.handle_control(Setup(0x21, 0xFF, 0, 0, 0))  # Bulk-Only Mass Storage Reset
    msc.handle_control(Setup(0x02, 1, 0, 0x82, 0))
    msc.handle_control(Setup(0x02, 1, 0, 0x01, 0))
    assert run_in(msc, bytes(6), 0)[1] == (7, 0, 0)


def test_direction_mismatch_is_phase_error(msc):
    # READ(10) but the host announces an OUT data phase
    msc.handle_out(0x01, cbw(bytes((0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0)), 512, False))
    assert msc.handle_out(0x01, bytes(512)) == 512
    assert csw(msc)[2] == 2


def test_image_size_validated(tmp_path):
    p = tmp_path / "odd.img"
    p.write_bytes(b"x" * 100)
    with pytest.raises(ValueError):
        MassStorage(p)


def test_scratch_image_without_a_file():
    m = MassStorage(blocks=16)
    m.handle_control(Setup(0, 9, 1, 0, 0))
    data, (_, _, status) = run_in(m, bytes((0x25,) + (0,) * 9), 8)
    assert struct.unpack(">II", data) == (15, 512) and status == 0
    path = m.path
    m.close()
    assert not path.exists()
