"""`MassStorage`: a USB mass-storage device, SCSI over Bulk-Only Transport (1209:0003).

High speed, configuration 1, interface 0 class 8/6/0x50 (mass storage, SCSI transparent,
BOT) with EP 0x01 bulk OUT and EP 0x82 bulk IN (512 bytes). One LUN backed by an image
file (size a multiple of the 512-byte block size; without one, a zero-filled temporary
image of ``blocks`` blocks that is removed by `close`).

Class requests on interface 0: GET MAX LUN (0xA1/0xFE, wLength 1) → 0; Bulk-Only Mass
Storage Reset (0x21/0xFF, no data) → back to waiting for a CBW, clears the reset-required
condition. Wire protocol per BOT 1.0:
  1. CBW, exactly 31 bytes to EP 0x01: "USBC", tag, dCBWDataTransferLength, flags
     (bit 7: data IN), LUN, CB length 1..16, CB. An invalid CBW (length, signature, LUN,
     CB length) STALLs both bulk endpoints, and they stay halted — even across
     CLEAR_FEATURE — until the Bulk-Only reset (reset recovery, BOT §5.3.4).
  2. Data phase of dCBWDataTransferLength bytes. IN: the command's data, truncated to the
     host's length; if the device has less (or nothing, e.g. after an error) it ends the
     phase with a short (possibly zero-length) packet. OUT: the device takes all the host's
     bytes; a failed command discards them. A direction the command does not match →
     CSW phase error (status 2).
  3. CSW, 13 bytes from EP 0x82: "USBS", the CBW's tag, residue (host length − bytes
     transferred as the command used them), status 0 passed / 1 failed / 2 phase error.
SCSI: TEST UNIT READY, REQUEST SENSE (fixed format, 18 bytes, clears the sense),
INQUIRY (36 bytes standard data; EVPD → ILLEGAL REQUEST), READ CAPACITY(10),
READ(10), WRITE(10), MODE SENSE(6), PREVENT ALLOW MEDIUM REMOVAL, SYNCHRONIZE CACHE(10).
Any other opcode: CSW failed, sense ILLEGAL REQUEST / INVALID COMMAND OPERATION CODE
(0x05/0x20). LBA beyond the medium: ILLEGAL REQUEST / LBA OUT OF RANGE (0x05/0x21).
Durability: WRITE(10) data is written, flushed and fsync'ed before its CSW is offered,
so every acknowledged write is on disk.
"""

from __future__ import annotations

import os
import struct
import tempfile
from pathlib import Path

from ._model import (
    BULK,
    Configuration,
    DeviceDescriptor,
    Endpoint,
    Interface,
    Setup,
    Stall,
    UsbDeviceModel,
)

__all__ = ["MassStorage", "CBW_SIGNATURE", "CSW_SIGNATURE"]

CBW_SIGNATURE, CSW_SIGNATURE = 0x43425355, 0x53425355
_GET_MAX_LUN, _BOMS_RESET = 0xFE, 0xFF
_EP_OUT, _EP_IN = 0x01, 0x82
BLOCK = 512

# sense keys / additional sense codes
_NO_SENSE, _ILLEGAL_REQUEST, _MEDIUM_ERROR = 0x00, 0x05, 0x03
_INVALID_OPCODE, _LBA_OUT_OF_RANGE, _INVALID_FIELD = 0x20, 0x21, 0x24
_PASSED, _FAILED, _PHASE_ERROR = 0, 1, 2


class MassStorage(UsbDeviceModel):
    """A BOT/SCSI disk over ``image`` (opened read-write); see the module docstring."""

    VENDOR_ID, PRODUCT_ID = 0x1209, 0x0003
    BLOCK = BLOCK           # bytes per logical block; an image is a whole number of them
    speed = "high"

    def __init__(self, image: str | os.PathLike[str] | None = None, *, blocks: int = 2048,
                 serial: str = "MSC000000001", vendor: str = "WASI-HW",
                 product: str = "Virtual Disk") -> None:
        self._temp = None
        if image is None:  # a zero-filled scratch disk of ``blocks`` blocks, gone on close
            self._temp = tempfile.NamedTemporaryFile(prefix="wasi-hw-msc-", suffix=".img")
            self._temp.truncate(blocks * BLOCK)
            image = self._temp.name
        self.path = Path(image)
        size = self.path.stat().st_size
        if size == 0 or size % BLOCK:
            raise ValueError(
                f"{self.path}: image size {size} is not a positive multiple of {BLOCK}"
            )
        self.blocks = size // BLOCK
        self._file = open(self.path, "r+b", buffering=0)  # noqa: SIM115 — lives with the model
        iface = Interface(
            0, 8, 6, 0x50, (Endpoint(_EP_OUT, BULK, 512), Endpoint(_EP_IN, BULK, 512))
        )
        super().__init__(
            DeviceDescriptor(self.VENDOR_ID, self.PRODUCT_ID, manufacturer=1, product=2,
                             serial_number=3),
            [Configuration(1, (iface,))],
            {1: "wasi-hw", 2: "Mass Storage", 3: serial},
        )
        self._inquiry = (bytes((0, 0x80, 0x04, 0x02, 31, 0, 0, 0))
                         + vendor.encode("ascii")[:8].ljust(8)
                         + product.encode("ascii")[:16].ljust(16) + b"0.1 ")
        self._sense = (_NO_SENSE, 0, 0)
        self._idle()

    @staticmethod
    def create_image(path: str | os.PathLike[str], blocks: int) -> Path:
        """Create (or truncate) a zero-filled image of ``blocks`` 512-byte blocks."""
        p = Path(path)
        with open(p, "wb") as f:
            f.truncate(blocks * BLOCK)
        return p

    def close(self) -> None:
        self._file.close()
        if self._temp is not None:
            self._temp.close()

    # -- BOT state machine --------------------------------------------------------------
    def _idle(self) -> None:
        self._phase = "cbw"  # cbw | data_in | data_out | csw
        self._tag = 0
        self._expected = 0
        self._data_in = b""
        self._out_buf = bytearray()
        self._on_out_done: str | None = None
        self._status = _PASSED
        self._residue = 0
        self._reset_required = False

    def control(self, setup: Setup, data_out: bytes) -> bytes:
        if setup.kind != "class" or setup.recipient != "interface" or setup.index != 0:
            raise Stall()
        if setup.request == _GET_MAX_LUN and setup.is_in and setup.value == 0:
            return b"\0"
        if (
            setup.request == _BOMS_RESET
            and not setup.is_in
            and setup.value == 0
            and setup.length == 0
        ):
            self._idle()
            return b""
        raise Stall()

    def halt_cleared(self, endpoint: int) -> None:
        if self._reset_required:  # BOT §6.6.1: stays stalled until reset recovery
            self.halt(endpoint)

    def reset(self) -> None:
        self._idle()

    def out(self, endpoint: int, data: bytes) -> int:
        if self._phase == "cbw":
            self._command_block(data)
            return len(data)
        if self._phase == "data_out":
            take = data[: self._expected - len(self._out_buf)]
            self._out_buf += take
            if len(self._out_buf) == self._expected:
                self._finish_out()
            return len(take) if take else len(data)
        raise Stall()  # OUT while the device expects to send: protocol error

    def in_(self, endpoint: int, max_len: int) -> bytes | None:
        if self._phase == "data_in":
            chunk = self._data_in[:max_len]
            self._data_in = self._data_in[len(chunk):]
            self._sent += len(chunk)
            # the phase ends when the host's length is reached or a short packet went out
            if self._sent >= self._expected or len(chunk) < max_len or len(chunk) % 512:
                self._residue = self._expected - self._sent
                self._phase = "csw"
            return chunk
        if self._phase == "csw":
            if max_len < 13:
                raise Stall()
            csw = struct.pack("<IIIB", CSW_SIGNATURE, self._tag, self._residue, self._status)
            self._phase = "cbw"
            return csw
        return None  # nothing to send: NAK

    def _command_block(self, cbw: bytes) -> None:
        if len(cbw) != 31:
            return self._invalid_cbw()
        sig, tag, length, flags, lun, cblen = struct.unpack_from("<IIIBBB", cbw)
        if sig != CBW_SIGNATURE or lun != 0 or not 1 <= cblen <= 16:
            return self._invalid_cbw()
        self._tag, self._expected = tag, length
        cb = cbw[15:15 + cblen]
        want_in = bool(flags & 0x80)
        status, data, out_len = self._scsi(cb)
        if status == _PASSED and cb[0] not in (0x03, 0x12):
            self._sense = (_NO_SENSE, 0, 0)  # sense describes the last failed command
        if out_len:  # the command wants data from the host
            if want_in or length < out_len:
                return self._phase_error(want_in)
            self._phase, self._out_buf = "data_out", bytearray()
            self._out_status, self._out_len = status, out_len
            return None
        self._status = status
        if length == 0:
            self._residue, self._phase = 0, "csw"
            if data:  # device wanted to send, host expected nothing: case 2
                self._status = _PHASE_ERROR
            return None
        if not want_in and data:  # host sends, the device wants to send: case 10
            return self._phase_error(want_in)
        if not want_in:  # host sends data the command does not take: accept and discard
            self._phase, self._out_buf = "data_out", bytearray()
            self._out_status, self._on_out_done = status, "discard"
            return None
        self._data_in, self._sent, self._phase = (data or b"")[:length], 0, "data_in"
        return None

    def _finish_out(self) -> None:
        data, self._out_buf = bytes(self._out_buf), bytearray()
        if self._on_out_done == "discard":
            self._on_out_done = None
            self._status, self._residue = self._out_status, self._expected
        elif self._out_status == _PASSED:
            self._status = self._write_blocks(data[: self._out_len])
            self._residue = (
                self._expected - self._out_len if self._status == _PASSED else self._expected
            )
        else:
            self._status, self._residue = self._out_status, self._expected
        self._phase = "csw"

    def _invalid_cbw(self) -> None:
        self._reset_required = True
        self.halt(_EP_OUT)
        self.halt(_EP_IN)

    def _phase_error(self, want_in: bool) -> None:
        self._status, self._residue = _PHASE_ERROR, self._expected
        if want_in:
            self._data_in, self._sent, self._phase = b"", 0, "data_in"
        else:
            self._phase, self._out_buf, self._on_out_done = "data_out", bytearray(), "discard"
            self._out_status = _PHASE_ERROR

    # -- SCSI -------------------------------------------------------------------------------
    def _check(self, key: int = _NO_SENSE, asc: int = 0, ascq: int = 0) -> tuple[int, bytes, int]:
        self._sense = (key, asc, ascq)
        return (_PASSED if key == _NO_SENSE else _FAILED), b"", 0

    def _scsi(self, cb: bytes) -> tuple[int, bytes, int]:
        """(status, data for the host, bytes wanted from the host) for one CDB."""
        op = cb[0]
        if op == 0x00:  # TEST UNIT READY
            return _PASSED, b"", 0
        if op == 0x03:  # REQUEST SENSE
            key, asc, ascq = self._sense
            self._sense = (_NO_SENSE, 0, 0)
            alloc = cb[4] if len(cb) > 4 else 18
            sense = bytes((0x70, 0, key, 0, 0, 0, 0, 10, 0, 0, 0, 0, asc, ascq, 0, 0, 0, 0))
            return _PASSED, sense[:alloc], 0
        if op == 0x12:  # INQUIRY
            if len(cb) < 6:
                return self._check(_ILLEGAL_REQUEST, _INVALID_FIELD)
            if cb[1] & 1 or cb[2]:
                return self._check(_ILLEGAL_REQUEST, _INVALID_FIELD)
            return _PASSED, self._inquiry[: struct.unpack_from(">H", cb, 3)[0]], 0
        if op == 0x25:  # READ CAPACITY(10)
            return _PASSED, struct.pack(">II", self.blocks - 1, BLOCK), 0
        if op == 0x1A:  # MODE SENSE(6): header only, not write-protected
            return _PASSED, bytes((3, 0, 0, 0))[: cb[4] if len(cb) > 4 else 4], 0
        if op in (0x1E, 0x35):  # PREVENT ALLOW MEDIUM REMOVAL, SYNCHRONIZE CACHE(10)
            return _PASSED, b"", 0
        if op in (0x28, 0x2A):  # READ(10) / WRITE(10)
            if len(cb) < 10:
                return self._check(_ILLEGAL_REQUEST, _INVALID_FIELD)
            lba, count = struct.unpack_from(">I", cb, 2)[0], struct.unpack_from(">H", cb, 7)[0]
            if lba + count > self.blocks:
                status = self._check(_ILLEGAL_REQUEST, _LBA_OUT_OF_RANGE)
                return (status[0], b"", count * BLOCK) if op == 0x2A and count else status
            if op == 0x28:
                self._file.seek(lba * BLOCK)
                return _PASSED, self._file.read(count * BLOCK), 0
            self._write_at = lba * BLOCK
            return _PASSED, b"", count * BLOCK
        return self._check(_ILLEGAL_REQUEST, _INVALID_OPCODE)

    def _write_blocks(self, data: bytes) -> int:
        try:
            self._file.seek(self._write_at)
            self._file.write(data)
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError:
            self._sense = (_MEDIUM_ERROR, 0x0C, 0)  # WRITE ERROR
            return _FAILED
        self._sense = (_NO_SENSE, 0, 0)
        return _PASSED
