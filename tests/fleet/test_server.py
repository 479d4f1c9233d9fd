"""NatsServer starts, stops, kills and restarts a real nats-server; clusters and leaf nodes."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from wasi_hw.fleet import NatsServer, NatsServerError
from nats_testing import wait_leaf_connected


def _open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); look at its state
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ")[1][0] != "Z"


def test_missing_binary_says_how_to_install(tmp_path):
    server = NatsServer(binary="no-such-nats-server", workdir=tmp_path)
    with pytest.raises(NatsServerError, match="apt-get install nats-server"):
        server.start()


def test_start_stop_by_pid(nats_server):
    pid, port = nats_server.pid, nats_server.port
    assert _alive(pid) and _open(port)
    assert nats_server.monitor("varz")["jetstream"]["config"]["store_dir"].startswith(
        str(nats_server.store_dir))
    nats_server.stop()
    assert not _alive(pid) and not _open(port) and nats_server.pid is None


def test_kill_then_restart_keeps_port_and_store(nats_server):
    import nats

    async def kv_put(url):
        nc = await nats.connect(url)
        js = nc.jetstream()
        kv = await js.create_key_value(bucket="T")
        await kv.put("k", b"v1")
        await nc.close()

    async def kv_get(url):
        nc = await nats.connect(url)
        kv = await nc.jetstream().key_value("T")
        value = (await kv.get("k")).value
        await nc.close()
        return value

    asyncio.run(kv_put(nats_server.url))
    pid, port = nats_server.pid, nats_server.port
    nats_server.kill()
    assert not _alive(pid) and not _open(port)
    nats_server.restart()
    assert nats_server.port == port and nats_server.pid != pid
    assert asyncio.run(kv_get(nats_server.url)) == b"v1"


def test_exit_before_ready_is_an_error_with_the_log(nats_factory, tmp_path):
    first = nats_factory()
    clash = NatsServer(port=first.port, workdir=tmp_path / "clash", ready_timeout=5)
    with pytest.raises(NatsServerError, match="exited|not ready"):
        clash.start()
    clash.close()


def test_user_password(nats_factory):
    import nats
    from nats.errors import NoServersError

    server = nats_factory(user="alice", password="s3cret")

    async def connect(url):
        nc = await nats.connect(url, max_reconnect_attempts=0, connect_timeout=1,
                                allow_reconnect=False)
        await nc.close()

    asyncio.run(connect(server.url))  # credentials carried in the URL
    with pytest.raises((NoServersError, Exception)) as err:
        asyncio.run(connect(f"nats://127.0.0.1:{server.port}"))
    assert "uthoriz" in repr(err.value) or isinstance(err.value, NoServersError)


def test_three_server_cluster_routes(nats_cluster):
    for s in nats_cluster:
        assert s.monitor("varz")["cluster"]["name"] == "wasihw"
        routes = s.monitor("routez")["num_routes"]
        assert routes >= 2


def test_leaf_node_reaches_hub_and_keeps_local_service(nats_hub_leaf):
    import nats

    hub, leaf = nats_hub_leaf

    async def scenario():
        served = await nats.connect(leaf.url)

        async def echo(m):
            await m.respond(b"leaf:" + m.data)

        await served.subscribe("svc.echo", queue="svc.echo", cb=echo)
        await served.flush()
        # a caller on the hub reaches the service on the leaf
        caller = await nats.connect(hub.url)
        for _ in range(50):
            try:
                reply = await caller.request("svc.echo", b"x", timeout=0.5)
                break
            except Exception:
                await asyncio.sleep(0.05)
        assert reply.data == b"leaf:x"
        await caller.close()
        # hub down: the leaf keeps serving its own clients
        hub.kill()
        local = await nats.connect(leaf.url)
        assert (await local.request("svc.echo", b"y", timeout=2)).data == b"leaf:y"
        await local.close()
        await served.close()

    asyncio.run(scenario())
    assert leaf.running
