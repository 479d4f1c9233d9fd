"""The fleet end to end: a real nats-server, real `wasi-hw node run` processes, the manager.

Every wait is on registry or event subscriptions with a deadline, never a sleep.
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from wasi_hw import UserError
from wasi_hw.fleet import Conflict, module_key, running_on, sha256
from wasi_hw.fleet import write_counter

from fleet_testing import Nodes, Reports, manager, nodes_up, wait_for

LATTICE = "t"


@pytest.fixture
def nodes(tmp_path, nats_server):
    n = Nodes(tmp_path, nats_server.url, LATTICE)
    yield n
    n.close()


def consecutive(items, key):
    values = [d[key] for _, _, d in items]
    return values == list(range(values[0], values[0] + len(values)))


def test_deploy_first_report_then_move_with_state(tmp_path, nats_server, nodes):
    manifest = write_counter(tmp_path / "mod", pages=2, interval_ms=10)

    async def go():
        nc, m = await manager(nats_server.url, LATTICE)
        nodes.start("n1")
        nodes.start("n2")
        await wait_for(m.registry, nodes_up("n1", "n2"), 20)
        reports = await Reports().subscribe(nc, LATTICE, "counter")
        rec = await m.deploy(manifest, {"node": "n1"})
        assert rec["node"] == "n1" and rec["epoch"] == 1
        await m.wait_for_module("counter", running_on("n1"), 20)
        await reports.until(lambda items: len(items) >= 5)
        await m.move("counter", "n2")
        await m.wait_for_module("counter", running_on("n2"), 20)
        await reports.until(lambda items: sum(1 for n, _, _ in items if n == "n2") >= 5)
        items = list(reports.items)
        # the count continues on n2 where it stopped on n1: no gap, no repeat, in memory
        # and in the (non-exported) global
        assert consecutive(items, "n") and consecutive(items, "g"), items
        assert items[0][2]["n"] == 1
        nodes_seen = [n for n, _, _ in items]
        switch = nodes_seen.index("n2")
        assert set(nodes_seen[:switch]) == {"n1"} and set(nodes_seen[switch:]) == {"n2"}
        listing = await m.listing()
        mod = listing["modules"][0]
        assert mod["node"] == "n2" and mod["epoch"] == 2 and "with its state" in mod["note"]
        assert any("n2 counter: state running" in line for line in await m.logs("counter"))
        await nc.close()

    asyncio.run(go())


def test_concurrent_managers_exactly_one_wins(tmp_path, nats_server, nodes):
    manifest = write_counter(tmp_path / "mod", interval_ms=50)

    async def go():
        nc1, m1 = await manager(nats_server.url, LATTICE)
        nc2, m2 = await manager(nats_server.url, LATTICE)
        for n in ("n1", "n2", "n3"):
            nodes.start(n)
        await wait_for(m1.registry, nodes_up("n1", "n2", "n3"), 20)
        await m1.deploy(manifest, {"node": "n1"})
        await m1.wait_for_module("counter", running_on("n1"), 20)
        # both read the same revision, then both try to change it
        e = await m1.registry.get(module_key("counter"))
        results = await asyncio.gather(
            m1.registry.update(module_key("counter"), dict(e.value, move={"to": "n2"}), e.revision),
            m2.registry.update(module_key("counter"), dict(e.value, move={"to": "n3"}), e.revision),
            return_exceptions=True)
        wins = [r for r in results if isinstance(r, int)]
        losses = [r for r in results if isinstance(r, Conflict)]
        assert len(wins) == 1 and len(losses) == 1, results
        winner = "n2" if isinstance(results[0], int) else "n3"
        await m1.wait_for_module("counter", running_on(winner), 20)
        # a second deploy of a running module is refused, not a second placement
        with pytest.raises(UserError, match="already deployed"):
            await m2.deploy(manifest, {"node": "n1"})
        await nc1.close()
        await nc2.close()

    asyncio.run(go())


def test_digest_mismatch_is_refused(tmp_path, nats_server, nodes):
    manifest = write_counter(tmp_path / "mod", interval_ms=50)

    async def go():
        nc, m = await manager(nats_server.url, LATTICE)
        nodes.start("n1")
        await wait_for(m.registry, nodes_up("n1"), 20)
        wasm = (tmp_path / "mod" / "counter.wasm").read_bytes()
        # the store holds other bytes under the module's digest (a tampered artifact)
        await m.artifacts.bucket.put(f"wasm/{sha256(wasm)}", wasm + b"\x00\x00")
        rec = await m.deploy(manifest, {"node": "n1"})

        def refused(r, st):
            return st.get("state") == "refused" and st.get("epoch") == r["epoch"]
        await m.wait_for_module("counter", refused, 20)
        st = (await m.registry.get("status.counter")).value
        assert "hash to" in st["detail"] and rec["wasm"][:12] in st["detail"]
        await nc.close()

    asyncio.run(go())


def test_move_refused_up_front_when_target_cannot_grant(tmp_path, nats_server, nodes):
    mod = tmp_path / "mod"
    write_counter(mod)
    manifest = mod / "sensor.toml"
    manifest.write_text('name = "sensor"\nwasm = "counter.wasm"\n[[i2c]]\nbus = "i2c-1"\n'
                        'addresses = [0x76]\n')
    sim = '[kernel]\n[[sim.i2c]]\nmodel = "bme280"\nbus = "i2c-1"\naddress = 0x76\n'

    async def go():
        nc, m = await manager(nats_server.url, LATTICE)
        nodes.start("hw", kernel=sim)
        nodes.start("bare")
        await wait_for(m.registry, nodes_up("hw", "bare"), 20)
        with pytest.raises(UserError, match="bare cannot grant i2c-1"):
            await m.deploy(manifest, {"node": "bare"})
        rec = await m.deploy(manifest, {"bus": "i2c-1"})
        assert rec["node"] == "hw"
        before = await m.registry.get(module_key("sensor"))
        with pytest.raises(UserError, match="cannot move sensor to bare: node bare cannot grant i2c-1"):
            await m.move("sensor", "bare")
        after = await m.registry.get(module_key("sensor"))
        assert after.revision == before.revision      # nothing was changed
        await nc.close()

    asyncio.run(go())


def test_lost_node_replaced_and_stale_node_fenced(tmp_path, nats_server, nodes):
    manifest = write_counter(tmp_path / "mod", interval_ms=10)

    async def go():
        nc, m = await manager(nats_server.url, LATTICE)
        nodes.start("n1")
        nodes.start("n2")
        await wait_for(m.registry, nodes_up("n1", "n2"), 20)
        reports = await Reports().subscribe(nc, LATTICE, "counter")
        # no rule: any node (the least loaded, n1 by name); `--node` would pin it there
        assert (await m.deploy(manifest, {}))["node"] == "n1"
        await m.wait_for_module("counter", running_on("n1"), 20)
        await reports.until(lambda items: len(items) >= 3)
        # n1 freezes (as a partitioned or hung node would): heartbeats stop
        nodes.kill("n1", signal.SIGSTOP)
        await wait_for(m.registry, lambda v: (v.get("node.n1") or {}).get("state") == "lost", 20)
        await m.wait_for_module("counter", running_on("n2"), 20)
        rec = (await m.registry.get(module_key("counter"))).value
        assert rec["epoch"] == 2 and "n1 lost" in rec["note"]
        await reports.until(lambda items: any(n == "n2" for n, _, _ in items))
        # n1 wakes up: it must not run the module it lost, not even for one poll
        mark = len(reports.items)
        nodes.kill("n1", signal.SIGCONT)
        await wait_for(m.registry, lambda v: (v.get("node.n1") or {}).get("state") == "up", 20)
        await reports.until(lambda items: sum(1 for n, _, _ in items[mark:] if n == "n2") >= 10)
        assert all(n == "n2" for n, _, _ in reports.items[mark:]), reports.items[mark:]
        assert (await m.registry.get(module_key("counter"))).value["node"] == "n2"
        await nc.close()

    asyncio.run(go())


def test_update_rolls_forward_and_a_failing_version_leaves_the_old_running(tmp_path, nats_server, nodes):
    v1 = write_counter(tmp_path / "v1", interval_ms=10)
    v2 = write_counter(tmp_path / "v2", interval_ms=10, version=2)
    bad = write_counter(tmp_path / "bad", interval_ms=10, version=3, fail_init=True)
    # the same manifest text for all three: only the module changes
    for d in ("v2", "bad"):
        (tmp_path / d / "counter.toml").write_text(v1.read_text())

    async def go():
        nc, m = await manager(nats_server.url, LATTICE)
        nodes.start("n1")
        await wait_for(m.registry, nodes_up("n1"), 20)
        reports = await Reports().subscribe(nc, LATTICE, "counter")
        first = await m.deploy(v1, {})
        await m.wait_for_module("counter", running_on("n1"), 20)
        await reports.until(lambda items: len(items) >= 3)
        # a version whose init() fails: refused, the old one keeps running
        await m.update(bad)
        rec = await m.wait_for_module("counter", lambda r, s: not r.get("update"), 20)
        assert rec["wasm"] == first["wasm"] and "update failed" in rec["note"]
        mark = len(reports.items)
        await reports.until(lambda items: len(items) >= mark + 5)
        # a good version replaces it
        await m.update(v2)
        rec = await m.wait_for_module("counter", lambda r, s: not r.get("update"), 20)
        assert rec["wasm"] == sha256((tmp_path / "v2" / "counter.wasm").read_bytes())
        assert rec["note"] == "updated" and rec["epoch"] == first["epoch"]
        st = await m.wait_for_module("counter", running_on("n1"), 20)
        assert st["node"] == "n1"
        with pytest.raises(UserError, match="already runs this version"):
            await m.update(v2)
        await nc.close()

    asyncio.run(go())


def test_stop_and_logs(tmp_path, nats_server, nodes):
    manifest = write_counter(tmp_path / "mod", interval_ms=20)

    async def go():
        nc, m = await manager(nats_server.url, LATTICE)
        nodes.start("n1")
        await wait_for(m.registry, nodes_up("n1"), 20)
        await m.deploy(manifest, {})
        await m.wait_for_module("counter", running_on("n1"), 20)
        lines = await m.logs("counter")
        assert any("n1 counter: state running" in line for line in lines), lines
        rec = await m.stop("counter")
        assert rec["desired"] == "stopped" and rec["epoch"] == 2
        await m.wait_for_module("counter", lambda r, st: st.get("state") == "stopped", 20)
        listing = await m.listing()
        assert listing["modules"][0]["desired"] == "stopped"
        with pytest.raises(UserError, match="not placed on any node"):
            await m.logs("counter")
        # deployed again after a stop: a new epoch, running again
        again = await m.deploy(manifest, {})
        assert again["epoch"] == 3
        await m.wait_for_module("counter", running_on("n1"), 20)
        await nc.close()

    asyncio.run(go())


def test_lost_node_module_resumes_from_its_last_checkpoint(tmp_path, nats_server, nodes):
    manifest = write_counter(tmp_path / "mod", interval_ms=10)

    async def go():
        nc, m = await manager(nats_server.url, LATTICE)
        nodes.start("n1", extra=("--checkpoint", "0.2"))
        nodes.start("n2", extra=("--checkpoint", "0.2"))
        await wait_for(m.registry, nodes_up("n1", "n2"), 20)
        reports = await Reports().subscribe(nc, LATTICE, "counter")
        assert (await m.deploy(manifest, {}))["node"] == "n1"
        # a checkpoint was stored and recorded
        await m.wait_for_module("counter", lambda r, s: (r.get("snapshot") or "").startswith("counter/1."), 20)
        await reports.until(lambda items: len(items) >= 30)
        nodes.kill("n1")                                   # SIGKILL: no goodbye
        await m.wait_for_module("counter", running_on("n2"), 20)
        await reports.until(lambda items: any(n == "n2" for n, _, _ in items))
        last_n1 = max(d["n"] for n, _, d in reports.items if n == "n1")
        first_n2 = next(d for n, _, d in reports.items if n == "n2")
        # resumed from a checkpoint: not from scratch, and never ahead of what n1 reached
        assert 1 < first_n2["n"] <= last_n1 + 1 and first_n2["g"] == first_n2["n"], (first_n2, last_n1)
        rec = (await m.registry.get(module_key("counter"))).value
        assert "from its last snapshot" in rec["note"]
        await nc.close()

    asyncio.run(go())
