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


def test_rate_bound_drops_and_counts(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl", burst=3, rate=0.001)
    got = [log.record("flood", "c", {}, "w") for _ in range(10)]
    assert sum(e is not None for e in got) == 3
    assert log.dropped == {"flood": 7}
    assert log.record("other", "c", {}, "w") is not None      # per driver
    log._buckets["flood"][0] = 5                              # tokens again (as if time passed)
    entry = log.record("flood", "c", {}, "w")
    assert entry["suppressed"] == 7
    log.close()
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    assert len(lines) == 5 and json.loads(lines[-1])["suppressed"] == 7


def test_file_rotates_at_max_bytes(tmp_path):
    path = tmp_path / "a.jsonl"
    log = AuditLog(path, max_bytes=2000, burst=10_000)
    for i in range(200):
        log.record("d", "c", {"i": i}, "x" * 40)
    log.close()
    rotated = tmp_path / "a.jsonl.1"
    assert rotated.exists() and path.stat().st_size <= 2000 and rotated.stat().st_size <= 2000
    assert json.loads(path.read_text().splitlines()[-1])["asked"] == {"i": 199}


def test_long_lines_are_cut(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl", max_line=300)
    entry = log.record("d", "c", {"blob": "y" * 10_000}, "z" * 10_000)
    assert len(entry["why"]) < 600
    log.close()
    line = (tmp_path / "a.jsonl").read_text().splitlines()[0]
    assert len(line) <= 300
