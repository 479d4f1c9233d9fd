"""Event lines for the journal: a priority prefix only when stderr is the journal stream,
one line per event whatever the text holds, no colour."""

from __future__ import annotations

import os
import subprocess
import sys

from wasi_hw.apps._journal import LogStyle, under_journal


def test_one_line_per_event_and_priorities():
    assert LogStyle(journal=False).line("error", "a\nb\tc\x1b[31m") == "a\\nb\\tc\\x1b[31m"
    j = LogStyle(journal=True)
    assert j.line("error", "x") == "<3>x" and j.line("warn", "x") == "<4>x"
    assert j.line("info", "x") == "<6>x" and j.line("trace", "x") == "<7>x"
    assert j.line("whatever", "x") == "<6>x"


def test_journal_stream_must_name_our_stderr(tmp_path, monkeypatch):
    log = open(tmp_path / "log", "w")
    st = os.fstat(log.fileno())
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    assert under_journal(log)
    monkeypatch.setenv("JOURNAL_STREAM", "garbage")
    assert not under_journal(log)
    log.close()


def test_a_child_whose_stderr_is_the_stream_detects_it(tmp_path):
    """What systemd does: stderr is a socket/file whose dev:inode is in JOURNAL_STREAM."""
    path = tmp_path / "stderr"
    with open(path, "w") as f:
        st = os.fstat(f.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        code = ("import sys; from wasi_hw.apps._journal import LogStyle; "
                "print(LogStyle.detect().line('warn', 'hello'), file=sys.stderr)")
        subprocess.run([sys.executable, "-c", code], stderr=f, env=env, check=True)
    assert path.read_text() == "<4>hello\n"
