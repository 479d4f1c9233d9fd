"""IMC between kernel processes over a real nats-server: calls, publications, denials, faults.

Each kernel runs in its own process (`imc_node.py`); every test starts its own server(s).
Whatever fails, a call ends in success or a documented error kind, never in a hang, and a
provider never serves one request twice (its `imc_serve` counter ≤ requests sent).
"""

from __future__ import annotations

import struct
import threading
import time

import pytest

from nats_testing import KernelNode, wait_leaf_connected

PROVIDER = {"name": "provider", "wat": "imc_echo", "imc": {"offer": ["echo"]}}
CLIENT = {"name": "client", "wat": "imc_client", "imc": {"call": ["echo", "ghost"]}}
KINDS = {"success", "unavailable", "timeout", "provider_failed"}


@pytest.fixture
def nodes():
    made = []

    def make(urls, *modules, name="node"):
        node = KernelNode({"nats": urls, "lattice": "t", "node": name, "modules": list(modules)})
        made.append(node)
        return node

    yield make
    for n in made:
        n.close()


def served(node) -> int:
    return struct.unpack("<I", bytes.fromhex(node(op="peek", module="provider", addr=20, n=4)["data"]))[0]


def call(node, data="1068", **kw):
    return node(op="call", module="client", service=kw.pop("service", "echo"), data=data, **kw)


def test_call_between_two_kernel_processes(nats_server, nodes):
    provider = nodes(nats_server.url, PROVIDER)
    client = nodes(nats_server.url, CLIENT)
    assert call(client) == {"kind": "success", "data": "1168", "seconds": pytest.approx(0, abs=1)}
    big = "07" + "ab" * 4095
    r = call(client, data=big)
    assert r["kind"] == "success" and r["data"] == "08" + "ab" * 4095
    assert served(provider) == 2


def test_no_provider_is_unavailable_fast(nats_server, nodes):
    client = nodes(nats_server.url, CLIENT)
    r = call(client, service="ghost")
    assert r["kind"] == "unavailable" and r["seconds"] < 0.09   # NATS "no responders"


def test_denials_are_audited_on_both_sides(nats_server, nodes):
    provider = nodes(nats_server.url, dict(PROVIDER, imc={"offer": ["echo"], "callers": ["someone"]}))
    client = nodes(nats_server.url, dict(CLIENT, imc={"call": ["echo"]}))
    assert call(client)["kind"] == "access"
    entries = provider(op="audit", module="provider")["entries"]
    assert entries[-1]["call"] == "wasi_imc.serve" and "'client'" in entries[-1]["why"]
    assert served(provider) == 0
    # caller side: an undeclared service never leaves the kernel
    assert call(client, service="ghost")["kind"] == "access"
    entries = client(op="audit", module="client")["entries"]
    assert entries[-1]["call"] == "wasi_imc.call" and "'ghost'" in entries[-1]["why"]
    # oversize: refused by the provider's kernel (its serve buffer), audited there
    assert call(client, data="01" * 4097, cap=8192)["kind"] in ("too_large", "access")


def test_oversize_request_audited_at_provider(nats_server, nodes):
    provider = nodes(nats_server.url, PROVIDER)
    client = nodes(nats_server.url, CLIENT)
    assert call(client, data="01" * 4097)["kind"] == "too_large"
    entries = provider(op="audit", module="provider")["entries"]
    assert entries[-1]["outcome"] == "too_large" and "4097" in entries[-1]["why"]
    assert served(provider) == 0


def test_publication_reaches_another_kernel(nats_server, nodes):
    pub = nodes(nats_server.url, {"name": "pub", "wat": "imc_client",
                                   "imc": {"publish": ["reading"]}})
    sub = nodes(nats_server.url, {"name": "sub", "wat": "imc_client",
                                   "imc": {"subscribe": ["pub.reading"]}})
    h = sub(op="subscribe", module="sub", topic="pub.reading")
    assert h["kind"] == "success"
    for i in range(3):
        assert pub(op="publish", module="pub", topic="reading", data=f"0{i}")["kind"] == "success"
    got = []
    end = time.monotonic() + 5
    while len(got) < 3 and time.monotonic() < end:
        r = sub(op="receive", module="sub", handle=h["handle"])
        if r["data"]:
            got.append(r["data"])
    assert got == ["00", "01", "02"]      # in order, each once
    assert sub(op="receive", module="sub", handle=h["handle"])["data"] == ""


def test_provider_killed_mid_call_ends_in_timeout(nats_server, nodes):
    provider = nodes(nats_server.url, PROVIDER)
    client = nodes(nats_server.url, CLIENT)
    assert call(client)["kind"] == "success"
    result = {}
    t = threading.Thread(target=lambda: result.update(call(client, data="fd")))  # loops in imc_serve
    t.start()
    time.sleep(0.03)
    provider.kill()
    t.join(10)
    assert not t.is_alive()
    assert result["kind"] in ("timeout", "provider_failed") and result["seconds"] < 0.5
    assert call(client)["kind"] == "unavailable"   # nobody serves echo any more


def test_server_killed_and_restarted(nats_server, nodes):
    provider = nodes(nats_server.url, PROVIDER)
    client = nodes(nats_server.url, CLIENT)
    assert call(client)["kind"] == "success"
    sent = 1
    nats_server.kill()
    r = call(client)
    sent += 1
    assert r["kind"] in ("unavailable", "timeout") and r["seconds"] < 0.5
    nats_server.restart()
    end = time.monotonic() + 15
    kinds = []
    while time.monotonic() < end:
        r = call(client)
        sent += 1
        kinds.append(r["kind"])
        assert r["kind"] in KINDS and r["seconds"] < 0.5
        if r["kind"] == "success":
            break
        time.sleep(0.1)
    assert kinds[-1] == "success", kinds     # reconnected and re-subscribed
    assert served(provider) <= sent


def test_cluster_losing_a_member(nats_cluster, nodes):
    a, b, c = nats_cluster
    provider = nodes([a.url, b.url, c.url], PROVIDER)          # nats-py picks one of them
    client = nodes([b.url, c.url, a.url], CLIENT)
    assert call(client)["kind"] == "success"
    sent = 1
    a.kill()
    kinds = []
    end = time.monotonic() + 20
    while time.monotonic() < end:
        r = call(client)
        sent += 1
        kinds.append(r["kind"])
        assert r["kind"] in KINDS and r["seconds"] < 0.5
        if kinds[-3:] == ["success"] * 3:
            break
        time.sleep(0.05)
    assert kinds[-3:] == ["success"] * 3, kinds
    assert served(provider) <= sent


def test_leaf_keeps_serving_without_its_hub(nats_hub_leaf, nodes):
    hub, leaf = nats_hub_leaf
    provider = nodes(leaf.url, PROVIDER)
    local = nodes(leaf.url, CLIENT)
    remote = nodes(hub.url, CLIENT)
    assert call(remote)["kind"] == "success"      # the cloud reaches the edge's service
    hub.kill()
    for _ in range(5):
        assert call(local)["kind"] == "success"   # the edge keeps working alone
    assert served(provider) == 6
