"""The NATS link of one kernel: IMC calls and publications between kernels.

`NatsBridge(servers, lattice=…, name=…)` owns one nats-py connection on an asyncio loop in a
dedicated daemon thread and implements the kernel's `RemoteLink` for the synchronous,
threaded kernel:

- Subjects: a service ``s`` is ``wasihw.<lattice>.svc.<s>`` served in queue group ``svc.<s>``
  (several providers share the load, each request reaches one); a publication on topic
  ``<module>.<topic>`` is ``wasihw.<lattice>.pub.<module>.<topic>``.
- Framing: a request is ``caller name + "\\n" + payload``; a reply is one status byte (0 = ok,
  else an index into `STATUS_KINDS`) + the reply (ok) or a UTF-8 message (error).
- `start()` connects within ``connect_timeout`` or raises `UserError` (nats-py alone would
  retry the first connect forever with unlimited reconnects).
- `request` never blocks past its timeout: the calling thread waits on a lock that the loop
  releases when the reply arrives (one `call_soon_threadsafe` out, one lock release back — no
  `concurrent.futures` round trip). Replies come back on one wildcard inbox subscription per
  connection. "No responders" (the server's 503 status) is ``unavailable``; no reply by the
  deadline is ``timeout``; a request made while the connection is down is ``unavailable``
  at once (never queued for later: a caller that gave up is never served late twice).
  Requests are at most once: nothing is retried.
- Serving: `serve(service, handler)` subscribes in the service's queue group; each request is
  handled by ``handler(caller, payload, wait) -> reply`` (the kernel's `serve_bytes`: same
  rules, same serving path as a local call; its `HwError` kind travels back in the status
  byte) — inline on the loop thread with ``wait=0`` when the provider is idle, else (it raised
  `ProviderBusy`) on a worker thread, so a busy provider never stalls the loop. Publications
  arriving for `subscribe`d topics go to ``handler(topic, data)``.
- Reconnects: nats-py reconnects forever (``reconnect_time_wait``) and re-subscribes every
  subscription itself; `connected` tells the state. `close()` drains nothing: it closes the
  connection and stops the loop thread.
- Discovery: every bridge answers ``wasihw.<lattice>.ctl.services`` with the JSON list of the
  services it serves; `services()` gathers the answers for a moment (the REST gateway's list).
- `run(coro, timeout)` runs any coroutine on the bridge's loop (for the fleet layer's
  JetStream use) and returns its result.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from wasi_hw import HwError, UserError
from wasi_hw.kernel import ProviderBusy

from ._names import svc_subject

__all__ = ["NatsBridge", "STATUS_KINDS", "service_subject", "publication_subject"]

#: status byte → imc error kind (0 is success)
STATUS_KINDS = ("success", "unavailable", "timeout", "access", "too_large", "provider_failed",
                "other", "invalid_argument", "no_mem")
_STATUS = {k: i for i, k in enumerate(STATUS_KINDS)}


#: a service's subject, made by the fleet's one naming scheme (`_names`)
service_subject = svc_subject


def publication_subject(lattice: str, topic: str) -> str:
    return f"wasihw.{lattice}.pub.{topic}"


def encode_error(err: BaseException) -> bytes:
    kind = getattr(err, "kind", "other")
    message = getattr(err, "message", "") or str(err)
    return bytes([_STATUS.get(kind, _STATUS["other"])]) + message.encode("utf-8", "replace")


def decode_reply(data: bytes) -> bytes:
    """The reply body, or `HwError` for an error status."""
    if not data:
        raise HwError("provider_failed", "empty reply (not a wasi-hw kernel?)")
    status = data[0]
    if status == 0:
        return data[1:]
    kind = STATUS_KINDS[status] if status < len(STATUS_KINDS) else "other"
    raise HwError(kind, data[1:].decode("utf-8", "replace"))


class _Waiter:
    __slots__ = ("lock", "msg")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.msg: Any = None


class NatsBridge:
    """A kernel's NATS connection (see the module docstring)."""

    def __init__(self, servers: str | Sequence[str], *, lattice: str = "default",
                 name: str = "wasi-hw", connect_timeout: float = 5.0,
                 reconnect_time_wait: float = 0.2, **options: Any) -> None:
        self.servers = [servers] if isinstance(servers, str) else list(servers)
        self.lattice = lattice
        self.name = name
        self._connect_timeout = connect_timeout
        self._options = dict(options, reconnect_time_wait=reconnect_time_wait)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name=f"nats-{name}", daemon=True)
        self.nc: Any = None
        self._waiters: dict[str, _Waiter] = {}
        self._tokens = itertools.count(1)
        self._inbox = ""
        self._served: dict[str, Any] = {}
        self._out_lock = threading.Lock()
        self._outbox: list[tuple[str, bytes]] = []
        self._draining = False
        self._subs: dict[str, Any] = {}
        self._started = False

    # -- lifecycle --------------------------------------------------------------------
    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def start(self) -> NatsBridge:
        """Connect (blocking, at most ``connect_timeout``); `UserError` if no server answers."""
        if self._started:
            return self
        self._thread.start()
        self._started = True
        try:
            self.run(self._connect(), self._connect_timeout + 5)
        except BaseException:
            self.close()
            raise
        return self

    async def _connect(self) -> None:
        import nats

        try:
            # nats-py retries the first connect forever when reconnects are unlimited: bound it
            self.nc = await asyncio.wait_for(nats.connect(
                servers=self.servers, name=self.name, no_echo=True,
                connect_timeout=min(2.0, self._connect_timeout), max_reconnect_attempts=-1,
                allow_reconnect=True, error_cb=self._on_error, **self._options),
                self._connect_timeout)
        except TimeoutError:
            raise UserError(f"cannot connect to NATS at {', '.join(self.servers)}: no server "
                            f"answered within {self._connect_timeout:g} s") from None
        except Exception as err:  # nats-py raises NoServersError, OSError, …
            raise UserError(f"cannot connect to NATS at {', '.join(self.servers)}: "
                            f"{type(err).__name__}: {err}") from None
        self._inbox = self.nc.new_inbox()
        await self.nc.subscribe(self._inbox + ".*", cb=self._on_reply)

        async def list_services(msg: Any) -> None:
            if msg.reply:
                await self.nc.publish(msg.reply, json.dumps(sorted(self._served)).encode())

        await self.nc.subscribe(f"wasihw.{self.lattice}.ctl.services", cb=list_services)
        await self.nc.flush()

    async def _on_error(self, err: Exception) -> None:
        """nats-py reports connection trouble here; reconnects are its own business."""

    def close(self) -> None:
        if not self._started:
            return
        self._started = False
        if self.nc is not None and self._loop.is_running():
            try:
                self.run(self.nc.close(), 5)
            except Exception:  # noqa: BLE001 — closing a broken connection
                pass
        for w in list(self._waiters.values()):
            w.lock.release()
        self._waiters.clear()
        self._loop.call_soon_threadsafe(self._loop.stop)
        if threading.current_thread() is not self._thread:
            self._thread.join(5)

    def __enter__(self) -> NatsBridge:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float | None = None) -> Any:
        """Run `coro` on the bridge's loop and return its result (not from the loop thread)."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("NatsBridge.run called from its own loop thread")
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except TimeoutError:
            fut.cancel()
            raise

    def _soon(self, coro_fn: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Start a coroutine on the loop without waiting (from any thread)."""
        def go() -> None:
            self._loop.create_task(coro_fn())
        if threading.current_thread() is self._thread:
            go()
        else:
            self._loop.call_soon_threadsafe(go)

    # -- calls ------------------------------------------------------------------------------
    def request(self, service: str, caller: str, payload: bytes, timeout: float) -> bytes:
        if not self.connected:
            raise HwError("unavailable", "not connected to NATS")
        token = str(next(self._tokens))
        w = _Waiter()
        self._waiters[token] = w
        subject = service_subject(self.lattice, service)
        data = caller.encode() + b"\n" + payload
        reply = f"{self._inbox}.{token}"
        nc = self.nc
        self._loop.call_soon_threadsafe(self._loop.create_task,
                                        nc.publish(subject, data, reply=reply))
        try:
            got = w.lock.acquire(timeout=max(0.0, timeout))
        finally:
            self._waiters.pop(token, None)
        if not got:
            raise HwError("timeout", f"no reply from {service!r} within {timeout * 1000:.0f} ms")
        msg = w.msg
        if msg is None:
            raise HwError("unavailable", "the NATS link closed")
        headers = msg.headers
        if headers and headers.get("Status") == "503":
            raise HwError("unavailable", f"no provider of {service!r} (NATS: no responders)")
        return decode_reply(msg.data)

    async def _on_reply(self, msg: Any) -> None:
        token = msg.subject[len(self._inbox) + 1:]
        w = self._waiters.get(token)
        if w is not None and w.msg is None:
            w.msg = msg
            w.lock.release()

    def serve(self, service: str, handler: Callable[[str, bytes, float | None], bytes]) -> None:
        subject = service_subject(self.lattice, service)

        async def on_request(msg: Any) -> None:
            if not msg.reply:
                return
            data = msg.data
            cut = data.find(b"\n")
            try:
                if cut < 0:
                    raise HwError("invalid_argument", "malformed request (no caller name)")
                caller, payload = data[:cut].decode("utf-8", "replace"), data[cut + 1:]
                try:       # inline on the loop when the provider is idle (the common case) ...
                    body = handler(caller, payload, 0.0)
                except ProviderBusy:   # ... else on a worker thread: never block the loop
                    body = await self._loop.run_in_executor(None, handler, caller, payload, None)
                reply = b"\0" + body
            except HwError as err:
                reply = encode_error(err)
            except Exception as err:  # noqa: BLE001 — a request never kills the loop
                reply = encode_error(HwError("other", f"{type(err).__name__}: {err}"))
            await self.nc.publish(msg.reply, reply)

        async def sub() -> None:
            old = self._served.pop(service, None)
            if old is not None:
                await old.unsubscribe()
            self._served[service] = await self.nc.subscribe(subject, queue=f"svc.{service}",
                                                            cb=on_request)
            await self.nc.flush()

        self._setup(sub)

    def withdraw(self, service: str) -> None:
        async def unsub() -> None:
            s = self._served.pop(service, None)
            if s is not None:
                await s.unsubscribe()
                await self.nc.flush()
        self._setup(unsub)

    def services(self, wait: float = 0.2) -> list[str]:
        """The services other kernels of the lattice serve (each answers within `wait` s)."""
        async def gather() -> list[str]:
            inbox = self.nc.new_inbox()
            found: set[str] = set()

            async def on_answer(msg: Any) -> None:
                try:
                    found.update(str(n) for n in json.loads(msg.data))
                except ValueError:
                    pass

            sub = await self.nc.subscribe(inbox, cb=on_answer)
            await self.nc.publish(f"wasihw.{self.lattice}.ctl.services", b"", reply=inbox)
            await asyncio.sleep(wait)
            await sub.unsubscribe()
            return sorted(found)

        if not self.connected:
            return []
        return self.run(gather(), wait + 2)

    # -- publications -------------------------------------------------------------------------
    def publish(self, topic: str, data: bytes) -> None:
        """Queue a publication (in order); the loop drains the queue in one task, woken once
        per batch rather than once per publication."""
        if not self.connected:
            return   # at most once: a publication made while disconnected is dropped
        with self._out_lock:
            self._outbox.append((publication_subject(self.lattice, topic), data))
            if self._draining:
                return
            self._draining = True
        self._loop.call_soon_threadsafe(self._loop.create_task, self._drain())

    async def _drain(self) -> None:
        while True:
            with self._out_lock:
                if not self._outbox:
                    self._draining = False
                    return
                batch = list(self._outbox)
                self._outbox.clear()
            for subject, data in batch:
                try:
                    await self.nc.publish(subject, data)
                except Exception:  # noqa: BLE001 — closed/reconnecting: at most once, dropped
                    pass

    def subscribe(self, topic: str, handler: Callable[[str, bytes], None]) -> None:
        async def on_pub(msg: Any) -> None:
            try:
                handler(topic, msg.data)
            except Exception:  # noqa: BLE001 — a delivery never kills the loop
                pass

        async def sub() -> None:
            if topic not in self._subs:
                self._subs[topic] = await self.nc.subscribe(
                    publication_subject(self.lattice, topic), cb=on_pub)
                await self.nc.flush()

        self._setup(sub)

    def unsubscribe(self, topic: str) -> None:
        async def unsub() -> None:
            s = self._subs.pop(topic, None)
            if s is not None:
                await s.unsubscribe()
        self._setup(unsub)

    def _setup(self, coro_fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run a (un)subscription: waited for (so a served service is reachable when `offer`
        returns) unless called on the loop thread or while disconnected (then it is queued;
        nats-py sends it on reconnect)."""
        if not self._started:
            raise HwError("unavailable", "the NATS link is closed")
        if threading.current_thread() is self._thread or not self.connected:
            self._soon(coro_fn)
            return
        try:
            self.run(coro_fn(), 2.0)
        except Exception:  # noqa: BLE001 — a lost connection: nats-py re-subscribes later
            pass
