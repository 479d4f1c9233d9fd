"""The `fail` trampoline: one traceback per cause, then counted; every quota denial audited."""

from __future__ import annotations

import logging

from wasi_hw import HwError
from wasi_hw.kernel import AuditLog
from wasi_hw.kernel._policy import MAX_CAUSES, Violations, make_fail

ERRNO = {"other": 1, "no_mem": 2, "fault": 3, "access": 4}


def _boom(depth: int) -> None:
    if depth:
        _boom(depth - 1)
    raise RecursionError("deep")


def test_host_error_traceback_once_per_cause(caplog):
    audit, v = AuditLog(), Violations()
    fail = make_fail("drv", "wasi_driver", ERRNO, audit, v)
    with caplog.at_level(logging.ERROR, logger="wasi_hw.kernel"):
        for _ in range(500):
            try:
                _boom(200)
            except RecursionError as exc:
                assert fail(exc, "report") == ERRNO["other"]
        try:
            raise KeyError("other cause")
        except KeyError as exc:
            fail(exc, "report")
    records = [r for r in caplog.records if "host error" in r.getMessage()]
    assert len(records) == 2                        # two causes, one traceback each
    text = caplog.text
    assert text.count("_boom") <= 25                # the 200-frame traceback was cut
    assert v.host_errors == 501
    assert sorted(v.host_errors_by_cause.values()) == [1, 500]


def test_causes_are_bounded():
    audit, v = AuditLog(burst=10_000), Violations()
    fail = make_fail("drv", "wasi_driver", ERRNO, audit, v)
    for i in range(MAX_CAUSES + 50):
        fail(ValueError(i), f"call{i}")             # a distinct call each: a new cause
    assert len(v.host_errors_by_cause) == MAX_CAUSES + 1
    assert v.host_errors_by_cause[("*", "*", "*")] == 50


def test_quota_denials_are_audited():
    audit, v = AuditLog(), Violations()
    fail = make_fail("drv", "wasi_driver", ERRNO, audit, v)
    assert fail(HwError("no_mem", "copy of 4097 bytes over the quota"), "grant") == ERRNO["no_mem"]
    assert [(e["call"], e["outcome"]) for e in audit.entries] == [("wasi_driver.grant", "no_mem")]
    assert v.quota_denials == 1
