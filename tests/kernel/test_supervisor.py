"""The supervisor: lifecycle, deadlines, restart with backoff, quarantine, hot update, routes."""

from __future__ import annotations

import time

from conftest import manifest, reports, states, wat


def test_driver_runs_and_reports(kernel):
    kernel.add(manifest("chipid"), wat("chipid"))
    kernel.run(rounds=3)
    assert reports(kernel.events, "chipid") == [{"id": 0x60}] * 3
    assert states(kernel.events, "chipid") == ["starting", "running"]
