"""Grants between drivers (kernel/_sharing.py) through the real path: two .wat drivers in one
`Kernel`, calling ``wasi_driver.grant`` / ``revoke`` / ``granted_*`` through the generated
shims, `DriverEnv`, the kernel's grant table and its audit log.

``sharer.wat`` runs one command per poll from its inbox (see the .wat for the format); the
tests deliver a command and poll that driver through the supervisor.
"""

from __future__ import annotations

import dataclasses
import struct

import pytest

from wasi_hw._bindings._wasi_driver import ERRNO
from wasi_hw.host import DriverEnv
from wasi_hw.kernel import GrantTable, SharingPolicy
from wasi_hw.kernel._manifest import ManifestError, TomlDoc, parse_manifest

from kernel_testing import manifest, wat

OK, INVALID, FAULT, NO_MEM = (
    ERRNO["success"],
    ERRNO["invalid_argument"],
    ERRNO["fault"],
    ERRNO["no_mem"],
)
ACCESS, BAD_HANDLE = ERRNO["access"], ERRNO["bad_handle"]
R, W = 1, 2
REGION, SIZE = 4096, 64          # the region "sensor" shares
BUF = 2048                       # where "lcd" copies to / from
RESULT = 1008                    # where sharer.wat stores a grant handle / granted_len


def sharer(name, *, grant_to=(), receive_from=(), **kw):
    return dataclasses.replace(manifest(name, **kw),
                               sharing=SharingPolicy(frozenset(grant_to), frozenset(receive_from)))


@pytest.fixture
def pair(kernel):
    """"sensor" may grant to "lcd", "lcd" accepts grants from "sensor"; both running."""
    kernel.add(sharer("sensor", grant_to={"lcd"}), wat("sharer"))
    kernel.add(sharer("lcd", receive_from={"sensor"}), wat("sharer"))
    kernel.start()
    assert all(s.state == "running" for s in kernel.slots.values())
    return kernel


def run(kernel, driver, op, a=0, b=0, c=0, name=""):
    """Deliver one command to `driver` and poll it through the supervisor; the errno."""
    slot = kernel.slots[driver]
    raw = name.encode()
    slot.hosts["wasi_driver"].deliver(struct.pack("<5I", op, a, b, c, len(raw)) + raw)
    before = len(kernel.events)
    kernel._poll(slot)
    errs = [e.data for e in kernel.events[before:] if e.kind == "error" and e.driver == driver]
    return errs[0] if errs else OK


def grant(kernel, to="lcd", ptr=REGION, n=SIZE, rights=R, by="sensor"):
    return run(kernel, by, 1, ptr, n, rights, to)


def handle(kernel, driver="sensor"):
    return kernel.slots[driver].instance.mem.read_u32(RESULT)


def read(kernel, offset, n, frm="sensor", by="lcd"):
    return run(kernel, by, 3, offset, BUF, n, frm)


def write(kernel, offset, n, to="sensor", by="lcd"):
    return run(kernel, by, 4, offset, BUF, n, to)


def fill(kernel, driver, ptr, value, n):
    assert run(kernel, driver, 6, ptr, value, n) == OK


def mem(kernel, driver, ptr, n):
    return kernel.slots[driver].instance.mem.read(ptr, n)


def audit(kernel, driver):
    return [(e["call"], e["outcome"]) for e in kernel.audit.for_driver(driver)]


# -- the happy path: zero-copy reads -------------------------------------------------------

def test_grantee_reads_the_grantors_current_bytes(pair):
    fill(pair, "sensor", REGION, 0xAA, SIZE)
    assert grant(pair) == OK
    assert handle(pair) != 0
    assert run(pair, "lcd", 5, name="sensor") == OK and handle(pair, "lcd") == SIZE
    assert read(pair, 8, 16) == OK
    assert mem(pair, "lcd", BUF, 16) == b"\xaa" * 16
    fill(pair, "sensor", REGION + 8, 0x55, 4)              # the grantor writes its memory ...
    assert read(pair, 8, 16) == OK                         # ... the next read sees it
    assert mem(pair, "lcd", BUF, 16) == b"\x55" * 4 + b"\xaa" * 12
    assert read(pair, 0, SIZE) == OK and read(pair, SIZE, 0) == OK   # whole region, empty tail
    assert not pair.audit.entries
    [g] = pair.grants.grants()
    assert (g.grantor, g.grantee, g.ptr, g.length, g.read, g.write, g.live) == \
        ("sensor", "lcd", REGION, SIZE, True, False, True)


def test_nothing_is_copied_when_granting(pair):
    assert grant(pair) == OK
    fill(pair, "sensor", REGION, 0x11, SIZE)               # written after the grant
    assert read(pair, 0, 4) == OK and mem(pair, "lcd", BUF, 4) == b"\x11" * 4


def test_read_write_grant_writes_into_the_grantor(pair):
    assert grant(pair, rights=R | W) == OK
    fill(pair, "lcd", BUF, 0x42, 8)
    assert write(pair, 4, 8) == OK
    assert mem(pair, "sensor", REGION, 16) == b"\x00" * 4 + b"\x42" * 8 + b"\x00" * 4


def test_write_only_grant_cannot_be_read(pair):
    assert grant(pair, rights=W) == OK
    assert read(pair, 0, 4) == ACCESS
    assert audit(pair, "lcd") == [("wasi_driver.granted_read", "access")]


# -- every access checked ------------------------------------------------------------------

def test_write_through_a_read_only_grant_is_access_and_audited(pair):
    fill(pair, "sensor", REGION, 0xAA, SIZE)
    fill(pair, "lcd", BUF, 0x42, 8)
    assert grant(pair, rights=R) == OK
    assert write(pair, 0, 8) == ACCESS
    assert mem(pair, "sensor", REGION, SIZE) == b"\xaa" * SIZE     # untouched
    [entry] = pair.audit.for_driver("lcd")
    assert entry["call"] == "wasi_driver.granted_write" and entry["outcome"] == "access"
    assert entry["asked"] == {"grantor": "sensor", "offset": 0, "bytes": 8, "region_bytes": SIZE}
    assert "read-only" in entry["why"]
    assert pair.slots["lcd"].state == "running"


@pytest.mark.parametrize("offset,n", [
    (60, 8),                 # straddles the end
    (SIZE, 1),               # starts at the end
    (0, SIZE + 1),           # one byte too many
    (0xFFFFFFFF, 2),         # offset + n wraps 2^32
    (0xFFFFFFF0, 0x20),      # wraps back into the region if the math were 32-bit
    (0x80000000, 0),         # empty, but far outside
])
def test_access_outside_the_region_is_denied(pair, offset, n):
    fill(pair, "lcd", BUF, 0x77, 64)
    assert grant(pair, rights=R | W) == OK
    assert read(pair, offset, n) == ACCESS
    assert write(pair, offset, n) == ACCESS
    assert mem(pair, "lcd", BUF, 64) == b"\x77" * 64              # nothing copied either way
    assert mem(pair, "sensor", REGION - 64, 3 * SIZE) == b"\x00" * (3 * SIZE)
    assert audit(pair, "lcd") == [("wasi_driver.granted_read", "access"),
                                  ("wasi_driver.granted_write", "access")]
    assert "leave the granted region" in pair.audit.for_driver("lcd")[0]["why"]


def test_the_grantees_buffer_is_checked_too(pair):
    assert grant(pair) == OK
    assert run(pair, "lcd", 3, 0, 0xFFF0, 32, "sensor") == FAULT   # buf outside lcd's memory
    assert audit(pair, "lcd") == [("wasi_driver.granted_read", "fault")]


def test_no_grant_no_access(pair):
    assert read(pair, 0, 4) == ACCESS
    assert run(pair, "lcd", 5, name="sensor") == ACCESS
    assert read(pair, 0, 4, frm="nobody") == ACCESS
    assert grant(pair) == OK
    assert read(pair, 0, 4, frm="lcd", by="sensor") == ACCESS      # grants are one-way
    assert audit(pair, "lcd") == [("wasi_driver.granted_read", "access"),
                                  ("wasi_driver.granted_len", "access"),
                                  ("wasi_driver.granted_read", "access")]


# -- revoke ----------------------------------------------------------------------------------

def test_revoke_takes_effect_immediately(pair):
    assert grant(pair) == OK
    h = handle(pair)
    assert read(pair, 0, 4) == OK
    assert run(pair, "sensor", 2, h) == OK
    assert read(pair, 0, 4) == ACCESS
    assert run(pair, "lcd", 5, name="sensor") == ACCESS
    assert pair.grants.grants() == []
    assert run(pair, "sensor", 2, h) == BAD_HANDLE                 # stale now
    assert audit(pair, "sensor") == [("wasi_driver.revoke", "bad_handle")]
    assert grant(pair) == OK and handle(pair) != h                  # handles are not reused
    assert read(pair, 0, 4) == OK


def test_only_the_grantor_instance_can_revoke(pair):
    assert grant(pair) == OK
    h = handle(pair)
    assert run(pair, "lcd", 2, h) == BAD_HANDLE                    # another driver's handle
    assert run(pair, "sensor", 2, 0x12345) == BAD_HANDLE           # forged
    assert read(pair, 0, 4) == OK
    assert audit(pair, "lcd") == [("wasi_driver.revoke", "bad_handle")]


def test_one_live_grant_per_pair_and_a_handle_quota(kernel):
    kernel.add(sharer("sensor", grant_to={"lcd", "led"}, open_handles=1), wat("sharer"))
    kernel.add(sharer("lcd", receive_from={"sensor"}), wat("sharer"))
    kernel.add(sharer("led", receive_from={"sensor"}), wat("sharer"))
    kernel.start()
    assert grant(kernel) == OK
    assert grant(kernel, ptr=REGION + SIZE) == INVALID              # revoke the old one first
    assert grant(kernel, to="led") == NO_MEM                        # open_handles = 1
    assert audit(kernel, "sensor") == [("wasi_driver.grant", "no_mem")]
    assert run(kernel, "sensor", 2, handle(kernel)) == OK
    assert grant(kernel, to="led") == OK


# -- policy ------------------------------------------------------------------------------

def test_grant_needs_both_manifests(kernel):
    kernel.add(sharer("sensor", grant_to={"lcd", "led", "ghost"}), wat("sharer"))
    kernel.add(sharer("lcd", receive_from={"sensor"}), wat("sharer"))
    kernel.add(sharer("led"), wat("sharer"))                         # accepts nobody
    kernel.add(sharer("other", receive_from={"sensor"}), wat("sharer"))
    kernel.start()
    assert grant(kernel, to="other") == ACCESS                      # not in sensor's grant_to
    assert grant(kernel, to="led") == ACCESS                        # not in led's receive_from
    assert grant(kernel, to="ghost") == ACCESS                      # no such driver here
    assert grant(kernel, to="sensor") == INVALID                    # itself
    assert grant(kernel, to="lcd") == OK
    entries = kernel.audit.for_driver("sensor")
    assert [(e["call"], e["outcome"]) for e in entries] == [("wasi_driver.grant", "access")] * 3
    assert entries[0]["asked"] == {"grantee": "other", "rights": "r", "ptr": REGION, "bytes": SIZE}
    assert "grant_to of 'sensor' does not list 'other'" in entries[0]["why"]
    assert "receive_from of 'led' does not list 'sensor'" in entries[1]["why"]
    assert "no driver named 'ghost'" in entries[2]["why"]
    assert [g.grantee for g in kernel.grants.grants()] == ["lcd"]


def test_grant_of_a_region_outside_memory_is_a_fault(pair):
    assert grant(pair, ptr=0xFFF0, n=0x20) == FAULT                 # past the 1-page memory
    assert grant(pair, ptr=0xFFFFFFF0, n=0x20) == FAULT             # wraps 2^32
    assert grant(pair, ptr=0, n=4097) == NO_MEM                     # above limits.max_transfer
    # every quota denial is audited: the grant of max_transfer + 1 bytes too
    assert audit(pair, "sensor") == [("wasi_driver.grant", "fault")] * 2 + \
        [("wasi_driver.grant", "no_mem")]
    assert pair.grants.grants() == []
    assert pair.slots["sensor"].instance.violations.faults == 2


# -- lifecycle ---------------------------------------------------------------------------

def restart(kernel, driver):
    """Make `driver` trap, then step the kernel until it runs again."""
    slot = kernel.slots[driver]
    old = slot.instance
    assert run(kernel, driver, 7) == OK and slot.state == "backoff"
    while slot.state != "running":
        kernel.step()
    assert slot.instance is not old


def test_grantor_restart_ends_its_grants(pair):
    fill(pair, "sensor", REGION, 0xAA, SIZE)
    assert grant(pair) == OK
    h = handle(pair)
    assert read(pair, 0, 4) == OK
    slot = pair.slots["sensor"]
    assert run(pair, "sensor", 7) == OK and slot.state == "backoff"
    assert pair.grants.grants() == []                               # gone with the memory
    assert read(pair, 0, 4) == ACCESS
    while slot.state != "running":
        pair.step()
    assert read(pair, 0, 4) == ACCESS  # the new instance granted nothing
    assert run(pair, "sensor", 2, h) == BAD_HANDLE                  # the old handle means nothing
    fill(pair, "sensor", REGION, 0xBB, SIZE)
    assert grant(pair) == OK
    assert read(pair, 0, 4) == OK and mem(pair, "lcd", BUF, 4) == b"\xbb" * 4


def test_grantee_restart_lapses_what_it_received(pair):
    assert grant(pair, rights=R | W) == OK
    h = handle(pair)
    restart(pair, "lcd")
    [g] = pair.grants.grants()
    assert not g.live
    assert read(pair, 0, 4) == ACCESS and write(pair, 0, 4) == ACCESS
    assert grant(pair) == OK                                        # a lapsed grant is not live
    assert read(pair, 0, 4) == OK
    assert run(pair, "sensor", 2, h) == OK                          # and can still be revoked
    assert read(pair, 0, 4) == OK                                   # (the new grant stays)


def test_hot_update_and_close_end_grants(pair):
    assert grant(pair) == OK
    assert pair.update("sensor", wat("sharer"))
    assert pair.grants.grants() == [] and read(pair, 0, 4) == ACCESS
    assert grant(pair) == OK
    pair.close()
    assert pair.grants.grants() == []


# -- hostile guest -----------------------------------------------------------------------

def test_grant_attacks_are_contained(kernel):
    kernel.add(manifest("chipid"), wat("chipid"))
    slot = kernel.add(sharer("grant_attacks", grant_to={"chipid"}), wat("grant_attacks"))
    kernel.run(rounds=15)
    got = [e.data for e in kernel.events if e.kind == "error" and e.driver == "grant_attacks"]
    assert got == [FAULT, FAULT, INVALID, INVALID, INVALID, ACCESS, ACCESS, INVALID, FAULT,
                   BAD_HANDLE, ACCESS, FAULT, FAULT, FAULT, FAULT]
    assert audit(kernel, "grant_attacks") == [
        ("wasi_driver.grant", "fault"), ("wasi_driver.grant", "fault"),
        ("wasi_driver.grant", "access"), ("wasi_driver.grant", "access"),
        ("wasi_driver.grant", "fault"), ("wasi_driver.revoke", "bad_handle"),
        ("wasi_driver.granted_read", "access"), ("wasi_driver.granted_read", "fault"),
        ("wasi_driver.granted_write", "fault"), ("wasi_driver.granted_len", "fault"),
        ("wasi_driver.grant", "fault")]
    assert slot.state == "running" and slot.faults == 0
    assert kernel.grants.grants() == []
    chip = [e.data for e in kernel.events if e.kind == "report" and e.driver == "chipid"]
    assert len(chip) >= 15 and all(r == {"id": 0x60} for r in chip)


# -- the host side and the manifest --------------------------------------------------------

def test_driver_env_without_a_grant_table_denies():
    from wasi_hw import HwError

    env = DriverEnv()
    for call in (lambda: env.grant(object(), "lcd", 1), lambda: env.revoke(1),
                 lambda: env.granted_len("x"), lambda: env.granted_read("x", 0, b""),
                 lambda: env.granted_write("x", 0, b"")):
        with pytest.raises(HwError) as err:
            call()
        assert err.value.kind == "access"
    with pytest.raises(HwError) as err:
        env.grant(object(), "lcd", 0)
    assert err.value.kind == "invalid_argument"


def test_driver_env_close_all_closes_its_view(kernel):
    table = GrantTable(kernel.audit, lambda n: None)
    view = table.view(sharer("a"))
    env = DriverEnv(sharing=view)
    env.close_all()
    env.close_all()
    assert view.closed


def parse(tmp_path, text):
    p = tmp_path / "m.toml"
    p.write_text('name = "sensor"\nwasm = "x.wasm"\n' + text)
    return parse_manifest(TomlDoc(p))


def test_manifest_sharing_table(tmp_path):
    m = parse(tmp_path, '[sharing]\ngrant_to = ["lcd", "led"]\nreceive_from = ["hub"]\n')
    assert m.sharing == SharingPolicy(frozenset({"lcd", "led"}), frozenset({"hub"}))
    assert parse(tmp_path, "").sharing == SharingPolicy()
    with pytest.raises(AttributeError):
        m.sharing.grant_to = frozenset()


@pytest.mark.parametrize("text,line,fragment", [
    ('[sharing]\ngrant_to = ["LCD"]\n', 4, "'LCD' is not a driver name"),
    ('[sharing]\nreceive_from = [1]\n', 4, "1 is not a driver name"),
    ('[sharing]\ngrant_to = "lcd"\n', 4, "must be a list of driver names"),
    ('[sharing]\n\ngrant_to = ["sensor"]\n', 5, "cannot share memory with itself"),
    ('[sharing]\ngrant = ["lcd"]\n', 4, "unknown key 'grant'"),
    ('sharing = 3\n', 3, "sharing must be a table"),
])
def test_manifest_sharing_errors_are_located(tmp_path, text, line, fragment):
    with pytest.raises(ManifestError) as err:
        parse(tmp_path, text)
    assert f"m.toml:{line}:" in str(err.value) and fragment in str(err.value)


def test_inspect_names_the_sharing_capability():
    from wasi_hw._bindings._wasi_driver import IMPORTS
    from wasi_hw.kernel import CAPABILITIES

    caps = CAPABILITIES["wasi_driver"]
    assert set(caps) == set(IMPORTS)
    assert caps["grant"] == "memory sharing ([sharing] grant_to)"
    assert caps["granted_read"] == "memory sharing ([sharing] receive_from)"
