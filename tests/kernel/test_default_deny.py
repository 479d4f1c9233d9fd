"""Default-deny: every function of every spec module is classified by its kernel guard —
checked (a method of the guard) or listed as needing no grant (``NO_GRANT``) — and a
function nobody classified is refused at run time with errno ``access`` and an audit entry."""

from __future__ import annotations

import pytest

from wasi_hw.kernel import AuditLog
from wasi_hw.kernel._guard import Denied, DriverGuard, classification
from wasi_hw.kernel._manifest import Manifest
from wasi_hw.kernel._sandbox import SPEC_MODULES, bindings_for


def test_every_spec_function_is_classified():
    unclassified = []
    for module, (_, guard) in SPEC_MODULES.items():
        for name, how in classification(guard, bindings_for(module).IMPORTS).items():
            if how == "unclassified":
                unclassified.append(f"{module}.{name}")
    assert not unclassified, ("spec functions no kernel guard classified (add a checking "
                              f"method or list them in NO_GRANT): {', '.join(unclassified)}")


def test_no_grant_lists_name_only_spec_functions():
    for module, (_, guard) in SPEC_MODULES.items():
        stale = guard.NO_GRANT - set(bindings_for(module).IMPORTS)
        assert not stale, f"{guard.__name__}.NO_GRANT names no spec function: {stale}"


def test_the_classification_sees_a_new_function():
    assert classification(DriverGuard, ["report", "now_ns", "teleport"]) == {
        "report": "checked", "now_ns": "no_grant", "teleport": "unclassified"}


class _Host:
    def teleport(self, *args):       # what a host module would offer for a new spec function
        raise AssertionError("an unclassified function reached the host")

    def now_ns(self):
        return 7


def test_an_unclassified_function_is_refused_and_audited():
    audit = AuditLog()
    guard = DriverGuard(_Host(), Manifest(name="drv", wasm=None), audit)
    assert guard.now_ns() == 7                                  # no_grant: passed through
    with pytest.raises(Denied) as err:
        guard.teleport(1, 2)
    assert err.value.kind == "access"
    assert [(e["call"], e["outcome"]) for e in audit.entries] == [("wasi_driver.teleport",
                                                                   "access")]
    assert "not classified" in audit.entries[0]["why"]
    with pytest.raises(AttributeError):
        guard._private                                          # noqa: B018
