"""IMC in one kernel: services by name over the local path, publications, manifest rules."""

from __future__ import annotations

import threading
import time

import pytest

from wasi_hw import HwError
from wasi_hw.kernel import Backends, Kernel

from imc_testing import Client, imc_manifest
from kernel_testing import wat


@pytest.fixture
def imc_kernel(tmp_path):
    k = Kernel(Backends(), cache_dir=tmp_path / "aot", tick_ms=2)
    yield k
    k.close()


def _pair(k, *, callers=None, call=("echo",)):
    k.add(imc_manifest("provider", offer=["echo"], callers=callers), wat("imc_echo"))
    k.add(imc_manifest("client", call=list(call)), wat("imc_client"))
    k.start()
    return Client(k.slots["client"])


def test_call_reaches_provider_memory_and_reply_comes_back(imc_kernel):
    client = _pair(imc_kernel)
    assert client.call("echo", b"\x10hello") == ("success", b"\x11hello")
    big = bytes([7]) + bytes(range(256)) * 16   # 4097 bytes: more than the serve buffer
    assert client.call("echo", big[:4096])[0] == "success"
    assert client.call("echo", big)[0] == "too_large"
    assert client.call("echo", b"") == ("success", b"")


def test_reply_larger_than_caller_buffer_is_too_large_nothing_written(imc_kernel):
    client = _pair(imc_kernel)
    client.mem.write(16384, b"\xAA" * 8)
    assert client.call("echo", b"\x01" * 100, cap=8) == ("too_large", None)
    assert client.mem.read(16384, 8) == b"\xAA" * 8


def test_unoffered_service_is_unavailable_without_nats(imc_kernel):
    client = _pair(imc_kernel, call=("echo", "nobody.home"))
    assert client.call("nobody.home", b"x") == ("unavailable", None)


def test_undeclared_call_is_denied_and_audited_caller_side(imc_kernel):
    client = _pair(imc_kernel, call=())
    assert client.call("echo", b"\x01") == ("access", None)
    denied = imc_kernel.audit.for_driver("client")
    assert denied[-1]["call"] == "wasi_imc.call" and "does not list 'echo'" in denied[-1]["why"]
    # the provider never ran
    assert imc_kernel.slots["provider"].instance.mem.read(1028, 4) == b"\0\0\0\0"


def test_provider_restricts_callers_audited_provider_side(imc_kernel):
    client = _pair(imc_kernel, callers=["someone-else"])
    assert client.call("echo", b"\x01") == ("access", None)
    denied = imc_kernel.audit.for_driver("provider")
    assert denied[-1]["call"] == "wasi_imc.serve" and "'client'" in denied[-1]["why"]


def test_oversize_request_audited_provider_side(imc_kernel):
    client = _pair(imc_kernel)
    assert client.call("echo", b"\x01" * 4097)[0] == "too_large"
    assert imc_kernel.audit.for_driver("provider")[-1]["outcome"] == "too_large" or \
        "exceeds" in imc_kernel.audit.for_driver("provider")[-1]["why"]


def test_payload_above_max_transfer_is_no_mem(imc_kernel):
    client = _pair(imc_kernel)
    # limits.max_transfer = 8192: the caller's 9000-byte region is refused before anything
    assert client.call("echo", b"\x01", cap=100, length=9000)[0] == "no_mem"


@pytest.mark.parametrize("first, why", [(0xFF, "trap"), (0xFD, "deadline")])
def test_provider_fault_is_an_error_to_the_caller_and_a_fault_of_the_provider(
    imc_kernel, first, why
):
    client = _pair(imc_kernel)
    assert client.call("echo", bytes([first]))[0] == "provider_failed"
    assert imc_kernel.slots["client"].state == "running"
    # the offer is withdrawn at once; the supervisor restarts the provider on its next step
    assert client.call("echo", b"\x01")[0] == "unavailable"
    end = time.monotonic() + 5
    while time.monotonic() < end:
        imc_kernel.step()
        if (
            imc_kernel.slots["provider"].restarts
            and imc_kernel.slots["provider"].state == "running"
        ):
            break
        time.sleep(0.001)
    slot = imc_kernel.slots["provider"]
    assert slot.faults == 1 and why in slot.last_error
    assert client.call("echo", b"\x01") == ("success", b"\x02")


def test_negative_or_lying_reply_is_provider_failed(imc_kernel):
    client = _pair(imc_kernel)
    assert client.call("echo", b"\xFE")[0] == "provider_failed"
    assert client.call("echo", b"\xFC")[0] == "provider_failed"
    assert imc_kernel.slots["provider"].faults == 0


def test_offer_needs_declaration_and_serve_export(imc_kernel):
    imc_kernel.add(imc_manifest("client", offer=["mine"]), wat("imc_client"))
    imc_kernel.start()
    c = Client(imc_kernel.slots["client"])
    assert c.offer("theirs") == "access"
    assert c.offer("mine") == "invalid_argument"     # no imc_serve export


def test_publish_subscribe_local(imc_kernel):
    k = imc_kernel
    k.add(imc_manifest("pub", publish=["reading"]), wat("imc_client"))
    k.add(imc_manifest("sub", subscribe=["pub.reading"]), wat("imc_client"))
    k.start()
    pub, sub = Client(k.slots["pub"]), Client(k.slots["sub"])
    kind, handle = sub.subscribe("pub.reading")
    assert kind == "success"
    assert sub.receive(handle) == ("success", b"")
    assert pub.publish("reading", b"21.5C") == "success"
    assert pub.publish("other", b"x") == "access"
    assert sub.receive(handle, cap=2) == ("too_large", None)   # stays queued
    assert sub.receive(handle) == ("success", b"21.5C")
    assert sub.receive(handle) == ("success", b"")
    assert sub.subscribe("pub.other")[0] == "access"
    assert sub.receive(handle + 99)[0] == "bad_handle"
    for i in range(20):
        pub.publish("reading", bytes([i]))
    got = [sub.receive(handle)[1] for _ in range(17)]
    assert got[:16] == [bytes([i]) for i in range(4, 20)] and got[16] == b""


def test_provider_is_entered_from_another_thread_one_call_at_a_time(imc_kernel):
    """A host-side caller (gateway, remote link) and the kernel thread share the provider."""
    client = _pair(imc_kernel)
    hub = imc_kernel.imc
    errors = []

    def hammer():
        try:
            for i in range(200):
                assert hub.call_bytes("client", "echo", bytes([i % 200, 1, 2]), 1.0) == \
                    bytes([(i % 200) + 1, 1, 2])
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    t = threading.Thread(target=hammer)
    t.start()
    for i in range(200):
        assert client.call("echo", bytes([i % 200, 9])) == ("success", bytes([(i % 200) + 1, 9]))
    t.join()
    assert not errors


def test_second_provider_stands_by_and_takes_over(imc_kernel):
    k = imc_kernel
    k.add(imc_manifest("first", offer=["echo"]), wat("imc_echo"))
    k.add(imc_manifest("second", offer=["echo"]), wat("imc_echo"))
    k.add(imc_manifest("client", call=["echo"]), wat("imc_client"))
    k.start()
    client = Client(k.slots["client"])
    served = lambda name: int.from_bytes(k.slots[name].instance.mem.read(20, 4), "little")  # noqa: E731
    assert client.call("echo", b"\x01") == ("success", b"\x02")
    assert (served("first"), served("second")) == (1, 0)
    assert client.call("echo", b"\xff")[0] == "provider_failed"     # first faults: withdrawn
    assert client.call("echo", b"\x01") == ("success", b"\x02")
    assert served("second") == 1


def test_busy_provider_raises_provider_busy_or_waits(imc_kernel):
    """What the NATS bridge relies on: ``wait=0`` never blocks its loop on a running
    provider; with a wait the request is served once the provider is free."""
    from wasi_hw.kernel import ProviderBusy

    _pair(imc_kernel)
    inst = imc_kernel.slots["provider"].instance
    holding, release = threading.Event(), threading.Event()

    def hold():
        with inst.held(None, "test"):
            holding.set()
            release.wait(5)

    t = threading.Thread(target=hold)
    t.start()
    holding.wait(5)
    with pytest.raises(ProviderBusy):
        imc_kernel.imc.serve_bytes("echo", "client", b"\x05", 0.0)
    threading.Timer(0.05, release.set).start()
    assert imc_kernel.imc.serve_bytes("echo", "client", b"\x05", 5.0) == b"\x06"
    t.join(5)


class _RecordingLink:
    """A `RemoteLink` that records what the hub asks of it (unit test: no NATS)."""

    def __init__(self) -> None:
        self.log: list[tuple] = []

    def request(self, service, caller, payload, timeout):
        self.log.append(("request", service))
        return b""

    def publish(self, topic, data):
        self.log.append(("publish", topic))

    def serve(self, service, handler):
        self.log.append(("serve", service))

    def withdraw(self, service):
        self.log.append(("withdraw", service))

    def subscribe(self, topic, handler):
        self.log.append(("subscribe", topic))

    def unsubscribe(self, topic):
        self.log.append(("unsubscribe", topic))


def test_remote_subscription_lives_while_a_local_subscriber_does(tmp_path):
    link = _RecordingLink()
    k = Kernel(Backends(), cache_dir=tmp_path / "aot", tick_ms=2, imc_remote=link)
    try:
        for name in ("sub1", "sub2"):
            k.add(imc_manifest(name, subscribe=["pub.reading"]), wat("imc_client"))
        k.start()
        for name in ("sub1", "sub2"):
            assert Client(k.slots[name]).subscribe("pub.reading")[0] == "success"
        assert [e for e in link.log if e[0] in ("subscribe", "unsubscribe")] == \
            [("subscribe", "pub.reading")]                       # once per topic
        k.remove("sub1")
        assert ("unsubscribe", "pub.reading") not in link.log    # sub2 still listens
        k.remove("sub2")
        assert link.log[-1] == ("unsubscribe", "pub.reading")
    finally:
        k.close()


def test_host_side_call_of_a_malformed_name_is_invalid_argument(tmp_path):
    link = _RecordingLink()
    k = Kernel(Backends(), cache_dir=tmp_path / "aot", tick_ms=2, imc_remote=link)
    try:
        for bad in ("a.>", "a b", "", "A"):
            with pytest.raises(HwError) as err:
                k.imc.call_bytes("gateway", bad, b"x", 0.1)
            assert err.value.kind == "invalid_argument"
        assert link.log == []                                    # nothing went out
        assert k.imc.call_bytes("gateway", "elsewhere.echo", b"x", 0.1) == b""
        assert link.log == [("request", "elsewhere.echo")]
    finally:
        k.close()
