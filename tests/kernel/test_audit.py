"""The audit log: JSON lines on disk, in-memory entries, never raising into the kernel."""

from __future__ import annotations

import json

from wasi_hw.kernel import AuditLog


def test_entries_are_json_lines(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.record("bme280", "wasi_i2c.open", {"bus": "i2c-9"}, "bus 'i2c-9' is not granted")
    log.record("lcd", "wasi_i2c.write", {"address": 0x28}, "address 0x28 is not granted")
    log.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["driver"] for e in lines] == ["bme280", "lcd"]
    assert lines[0]["call"] == "wasi_i2c.open" and lines[0]["outcome"] == "access"
    assert lines[0]["asked"] == {"bus": "i2c-9"} and "not granted" in lines[0]["why"]
    assert isinstance(lines[0]["time"], float)
    assert [e["driver"] for e in log.for_driver("lcd")] == ["lcd"]


def test_appends_and_keeps_bounded_memory(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"old": 1}\n')
    log = AuditLog(path, keep=3)
    for i in range(5):
        log.record("d", "c", {"i": i}, "why")
    log.close()
    assert len(path.read_text().splitlines()) == 6
    assert [e["asked"]["i"] for e in log.entries] == [2, 3, 4]


def test_unwritable_log_never_raises(tmp_path, capsys):
    class Broken:
        def write(self, text):
            raise OSError(28, "No space left on device")

        def flush(self):
            pass

    log = AuditLog(stream=Broken())
    log.record("d", "c", {}, "why")
    log.record("d", "c", {}, "why")
    assert len(log.entries) == 2
    assert capsys.readouterr().err.count("audit log unwritable") == 1


def test_unjsonable_values_are_repr(tmp_path):
    path = tmp_path / "a.jsonl"
    log = AuditLog(path)
    log.record("d", "c", {"data": b"\x01\x02"}, "why")
    log.close()
    assert json.loads(path.read_text())["asked"]["data"] == "b'\\x01\\x02'"
