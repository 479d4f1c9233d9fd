"""The command line's one error boundary (`wasi_hw.apps.cli.main`) and its command registry."""

from __future__ import annotations

import argparse

import pytest

from wasi_hw import HwError, UserError
from wasi_hw.apps.cli import COMMANDS, _main, main
from wasi_hw.witx import WitxError, parse

TOP_LEVEL = {"witx", "gen", "build", "new", "devices", "usbip", "trace", "run", "compile",
             "inspect", "kernel", "parity", "bench", "doctor", "demo", "service", "gateway",
             "node", "fleet"}


def test_every_command_group_is_registered():
    """Every command is there (none silently missing), each group registering its own."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    for module in COMMANDS:
        before = set(sub.choices)
        module.register(sub)
        assert set(sub.choices) - before, f"{module.__name__} registered no command"
    assert set(sub.choices) == TOP_LEVEL


def _witx_error() -> WitxError:
    try:
        parse("(typename $x", "bad.witx")
    except WitxError as err:
        return err
    raise AssertionError("the WITX parser accepted a truncated form")


@pytest.mark.parametrize("exc, status, fragment", [
    (UserError("bad flag"), 2, "wasi-hw: bad flag"),
    (UserError("checks failed", exit_code=1), 1, "wasi-hw: checks failed"),
    (HwError("nack_address", "no device at 0x76"), 2, "wasi-hw: nack_address: no device at 0x76"),
    (FileNotFoundError(2, "No such file or directory", "x.toml"), 2,
     "wasi-hw: [Errno 2] No such file or directory: 'x.toml'"),
    (_witx_error(), 2, "wasi-hw: bad.witx:1:1: unclosed"),   # then its source line and a caret
])
def test_failures_become_one_line_and_their_exit_status(monkeypatch, capsys, exc, status,
                                                       fragment):
    def fail(args):
        raise exc

    monkeypatch.setattr(_main._devices, "_devices", fail)
    assert main(["devices"]) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[0].startswith(fragment)
    assert err.count("\n") == (3 if isinstance(exc, WitxError) else 1)


def test_a_bug_keeps_its_traceback(monkeypatch):
    """Only the failures the layers report to a person are turned into one line."""
    def fail(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(_main._devices, "_devices", fail)
    with pytest.raises(ZeroDivisionError):
        main(["devices"])


@pytest.mark.parametrize("argv, fragment", [
    ([], "no command given"),
    (["kernel"], "kernel: which command?"),
])
def test_no_command_prints_usage_and_why(capsys, argv, fragment):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "usage:" in err and f"wasi-hw: {fragment}" in err
