"""The supervisor: lifecycle, deadlines, restart with backoff, quarantine, hot update, routes."""

from __future__ import annotations

import time

import pytest

from kernel_testing import manifest, reports, states, wat


def test_driver_runs_and_reports(kernel):
    kernel.add(manifest("chipid"), wat("chipid"))
    kernel.run(rounds=3)
    assert reports(kernel.events, "chipid") == [{"id": 0x60}] * 3
    assert states(kernel.events, "chipid") == ["starting", "running"]


def test_two_drivers_keep_their_schedules_beside_a_runaway(kernel):
    kernel.add(manifest("counter", interval_ms=10), wat("counter"))
    kernel.add(manifest("infinite_loop", deadline_ms=20, max_faults=1000, backoff_ms=1),
               wat("infinite_loop"))
    seq = []  # counter reports and runaway faults, in order; the run ends at the 6th fault

    def watch(ev):
        kernel.events.append(ev)
        if (ev.driver, ev.kind) == ("counter", "report") or \
                (ev.driver, ev.kind, ev.data) == ("infinite_loop", "state", "backoff"):
            seq.append(ev.driver)
            if seq.count("infinite_loop") == 6:
                kernel.stop()

    kernel.on_event = watch
    kernel.run(duration=60)  # a guard only: stop() ends it
    # each runaway poll ends at its 20 ms deadline, by when the counter (due every 10 ms) is
    # overdue: it is polled before the runaway restarts — never two runaway faults in a row
    faults = seq.count("infinite_loop")
    assert faults == 6 and kernel.slots["infinite_loop"].faults == faults
    assert ("infinite_loop", "infinite_loop") not in set(zip(seq, seq[1:], strict=False)), seq
    assert seq.count("counter") >= faults - 1


def test_backoff_doubles_and_success_resets(kernel):
    slot = kernel.add(manifest("init_fails", max_faults=3, backoff_ms=10), wat("init_fails"))
    kernel.run(duration=1.0)
    assert slot.state == "quarantined" and slot.faults == 4 and slot.restarts == 3
    backoffs = [e.detail.rsplit("restart in ", 1)[1] for e in kernel.events
                if e.kind == "state" and e.data == "backoff"]
    assert backoffs == ["10 ms", "20 ms", "40 ms"]


def test_hot_update_replaces_running_driver_without_stopping_others(kernel):
    kernel.add(manifest("chipid"), wat("chipid"))
    kernel.add(manifest("counter"), wat("counter"))
    kernel.run(rounds=2)
    assert kernel.update("chipid", wat("chipid_v2")) is True
    kernel.run(rounds=4)
    got = reports(kernel.events, "chipid")
    assert got[:2] == [{"id": 0x60}] * 2 and got[-1] == {"id": 0x60, "v": 2}
    # the counter never restarted: its global count kept going
    assert [r["n"] for r in reports(kernel.events, "counter")] == [1, 2, 3, 4]


def test_hot_update_with_broken_module_keeps_old_running(kernel):
    kernel.add(manifest("chipid"), wat("chipid"))
    kernel.run(rounds=1)
    assert kernel.update("chipid", b"\0asm garbage") is False
    assert kernel.update("chipid", wat("unknown_import")) is False
    kernel.run(rounds=2)
    assert reports(kernel.events, "chipid") == [{"id": 0x60}] * 2
    details = [e.detail for e in kernel.events if "update rejected" in e.detail]
    assert len(details) == 2 and "not a valid wasm module" in details[0]
    assert "env.system" in details[1]


def test_hot_update_whose_init_fails_rolls_back(kernel):
    slot = kernel.add(manifest("counter"), wat("counter"))
    kernel.run(rounds=2)
    assert kernel.update("counter", wat("init_fails")) is False
    assert slot.state == "running" and slot.faults == 0
    kernel.run(rounds=3)
    assert any("update failed (init returned 7); old version restored" in e.detail
               for e in kernel.events)
    assert reports(kernel.events, "counter")[-1] == {"n": 1}   # the old module, restarted


def test_request_update_from_another_thread(kernel):
    import threading

    kernel.add(manifest("chipid"), wat("chipid"))
    timer = threading.Timer(0.05, kernel.request_update, ("chipid", wat("chipid_v2")))
    timer.start()
    kernel.run(duration=0.3)
    timer.join()
    assert reports(kernel.events, "chipid")[-1] == {"id": 0x60, "v": 2}


def test_routes_deliver_reports_to_inbox(kernel):
    kernel.add(manifest("chipid"), wat("chipid"))
    kernel.add(manifest("inbox_echo"), wat("inbox_echo"))
    kernel.route("chipid", "inbox_echo")
    kernel.run(rounds=3)
    assert {"id": 0x60} in reports(kernel.events, "inbox_echo")


@pytest.mark.timing  # asserts a wall-clock bound
def test_stop_from_another_thread(kernel):
    import threading

    kernel.add(manifest("counter"), wat("counter"))
    threading.Timer(0.1, kernel.stop).start()
    t0 = time.monotonic()
    kernel.run()
    assert time.monotonic() - t0 < 0.5


def test_close_releases_instances(kernel):
    slot = kernel.add(manifest("chipid"), wat("chipid"))
    kernel.run(rounds=1)
    assert slot.instance is not None
    kernel.close()
    assert slot.instance is None and slot.state == "stopped"


def test_second_add_hits_the_aot_cache(kernel):
    first = kernel.add(manifest("chipid"), wat("chipid"))
    second = kernel.add(manifest("chipid2"), wat("chipid"))
    assert (first.source, second.source) == ("compiled", "cache")
