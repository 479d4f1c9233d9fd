"""Inter-module communication (wasi_imc): services by name, publications by topic.

Contract:
- `ImcHub(audit, remote=None, on_fault=None)` is one kernel's IMC handler. Each module
  instance gets an `ImcEnv` (`hub.env(manifest)`, the `wasi_imc` host module; the kernel
  `attach`es the instance after it is made and `close_all` withdraws everything it offered
  or subscribed when it stops). `ImcGuard` wraps the env like every kernel guard.
- Rules, one per direction, each written once and audited on denial (``access``):
  `_may(manifest, verb, name)` — outbound: a module may call / publish / subscribe / offer
  only names its ``[imc]`` table lists; `_accepts(provider, service, caller)` — inbound: the
  provider offers `service` and its ``callers`` (when given) lists `caller`. The inbound
  rule runs in the kernel hosting the provider, for local, remote and gateway callers alike.
- Local path (provider in this kernel): the request is copied from the caller's memory into
  the provider's serve buffer (after the 8-byte header) with one `copy_between`, the
  provider's ``imc_serve`` runs under its own deadline and shim table (`DriverInstance.call`),
  and the reply is copied back with one `copy_between`. Outcomes: reply longer than the
  caller's buffer → ``too_large`` (nothing written); request longer than the serve buffer →
  ``too_large`` (audited at the provider); provider busy past the timeout → ``timeout``;
  caller reentering itself (a cycle) → ``unavailable``; provider fault (trap, deadline) →
  ``provider_failed`` to the caller, the offer withdrawn at once and the fault handed to
  ``on_fault(name, instance, why)`` (the supervisor applies its restart policy); negative
  result or a reply length beyond the buffer → ``provider_failed``.
- Remote path (no local provider, ``remote`` given: a `RemoteLink`, e.g. the fleet layer's NATS
  bridge): the request bytes go out with the caller's name; the link maps failures to
  ``unavailable`` / ``timeout`` / ``access`` / ``too_large`` / ``provider_failed`` and never
  waits past the timeout. The kernel hosting the provider serves it through `serve_bytes`
  (the same rules and serving path). Without ``remote`` a call with no local provider is
  ``unavailable``.
- Several instances of this kernel may offer one service: the first serves, the others stand
  by in order and take over when it stops (across kernels, NATS's queue group shares load).
- Publications: ``publish(topic)`` goes to every local subscription of ``<module>.<topic>``
  and, with ``remote``, out to other kernels; publications from other kernels arrive through
  `deliver`. Each subscription queues at most `QUEUE` publications (oldest dropped first).
- Timeouts: ``timeout_ms`` 0 means the caller's ``limits.deadline_ms``; larger values are
  capped at it (a call never outlives its caller's own deadline).
"""

from __future__ import annotations

import collections
import functools
import itertools
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from wasi_hw import HwError, copy_between

from ._audit import AuditLog
from ._fault import DriverFault
from ._guard import Denied, _Guard
from ._manifest import IMC_NAME, Manifest

__all__ = ["ImcHub", "ImcEnv", "ImcGuard", "RemoteLink", "ProviderBusy", "HEADER", "QUEUE",
           "SERVE_EXPORT"]

HEADER = struct.Struct("<II")     # service id, request length — written before each request
QUEUE = 16                        # publications queued per subscription
SERVE_EXPORT = "imc_serve"
_PREFIX = "wasi_imc"


class ProviderBusy(HwError):
    """`serve_bytes` with ``wait=0``: the provider is running right now (try again off the
    event loop, with a wait)."""

    def __init__(self, message: str) -> None:
        super().__init__("timeout", message)


class RemoteLink(Protocol):
    """What the IMC needs from a messaging engine (implemented by `wasi_hw.fleet.NatsBridge`)."""

    def request(self, service: str, caller: str, payload: bytes, timeout: float) -> bytes:
        """The reply, or `HwError` with an imc errno kind; never blocks past `timeout`."""

    def publish(self, topic: str, data: bytes) -> None: ...

    def serve(self, service: str, handler: Callable[[str, bytes, float | None], bytes]) -> None:
        """Route remote requests for `service` to ``handler(caller, payload, wait)`` (`wait` as
        in `ImcHub.serve_bytes`; 0 may raise `ProviderBusy`)."""

    def withdraw(self, service: str) -> None: ...

    def subscribe(self, topic: str, handler: Callable[[str, bytes], None]) -> None:
        """Route remote publications on `topic` to ``handler(topic, data)``."""

    def unsubscribe(self, topic: str) -> None: ...


# -- the rules (one per direction) ------------------------------------------------------------

def _may(audit: AuditLog, m: Manifest, verb: str, name: str) -> None:
    """Outbound rule: `m`'s ``[imc] <verb>`` lists `name` (else audited ``access``)."""
    if name in getattr(m.imc, verb):      # listed names are well-formed
        return
    if not IMC_NAME.match(name):
        raise HwError("invalid_argument", f"{name!r} is not a service or topic name")
    why = f"[imc] {verb} of {m.name!r} does not list {name!r}"
    audit.record(m.name, f"{_PREFIX}.{verb}", {"name": name}, why, "access")
    raise Denied("access", why)


def _accepts(audit: AuditLog, provider: Manifest, service: str, caller: str) -> None:
    """Inbound rule: `provider` offers `service` and accepts `caller` (else audited)."""
    why = None
    if service not in provider.imc.offer:
        why = f"[imc] offer of {provider.name!r} does not list {service!r}"
    elif provider.imc.callers is not None and caller not in provider.imc.callers:
        why = f"[imc] callers of {provider.name!r} does not list {caller!r}"
    if why is not None:
        audit.record(provider.name, f"{_PREFIX}.serve", {"service": service, "caller": caller},
                     why, "access")
        raise Denied("access", why)


# -- the hub ------------------------------------------------------------------------------------

@dataclass
class _Offer:
    service: str
    sid: int
    env: ImcEnv
    ptr: int
    length: int


class ImcHub:
    """One kernel's IMC handler (see the module docstring)."""

    def __init__(self, audit: AuditLog, remote: RemoteLink | None = None,
                 on_fault: Callable[[str, Any, str], None] | None = None) -> None:
        self.audit = audit
        self.remote = remote
        self.on_fault = on_fault or (lambda name, instance, why: None)
        self._lock = threading.Lock()
        self._offers: dict[str, list[_Offer]] = {}   # service → providers, first serves
        self._subs: dict[str, list[_Sub]] = {}
        self._sids = itertools.count(1)

    def env(self, manifest: Manifest) -> ImcEnv:
        return ImcEnv(self, manifest)

    def services(self) -> dict[str, str]:
        """Service name → the local module serving it."""
        with self._lock:
            return {s: offers[0].env.name for s, offers in self._offers.items() if offers}

    def provider(self, service: str) -> _Offer | None:
        """The local offer that serves `service` now (None: none in this kernel)."""
        offers = self._offers.get(service)
        return offers[0] if offers else None

    # -- calls ------------------------------------------------------------------------------
    def call(self, caller: Manifest, service: str, request: Any, response: Any,
             timeout_ms: int) -> int:
        """A guest's call: `request` / `response` are `GuestRegion`s of the caller."""
        _may(self.audit, caller, "call", service)
        deadline = caller.limits.deadline_ms
        timeout = (min(timeout_ms, deadline) if timeout_ms else deadline) / 1000
        offer = self.provider(service)
        if offer is not None:
            return self._serve(offer, caller.name, request, response, timeout)
        if self.remote is None:
            raise HwError("unavailable", f"no provider of {service!r} in this kernel "
                                         "(and no NATS link)")
        reply = self.remote.request(service, caller.name, request.r.read(), timeout)
        if len(reply) > len(response):
            raise HwError("too_large", f"the reply of {len(reply)} bytes does not fit the "
                                       f"{len(response)}-byte buffer")
        response.r.write(reply)
        return len(reply)

    def call_bytes(self, caller: str, service: str, data: bytes, timeout: float) -> bytes:
        """A host-side caller (the REST gateway): local provider, else the remote link. A
        malformed service name is ``invalid_argument`` (it never becomes a subject)."""
        if not IMC_NAME.match(service):
            raise HwError("invalid_argument", f"{service!r} is not a service name")
        offer = self.provider(service)
        if offer is not None:
            return self._serve_bytes(offer, caller, data, timeout)
        if self.remote is None:
            raise HwError("unavailable", f"no provider of {service!r}")
        return self.remote.request(service, caller, data, timeout)

    def serve_bytes(self, service: str, caller: str, data: bytes,
                    wait: float | None = None) -> bytes:
        """Serve a request that arrived as bytes (remote kernel, gateway) by a local provider.
        ``wait``: how long a running provider may delay it (None: the provider's own
        ``deadline_ms``, which bounds whatever runs it now); 0 raises `ProviderBusy` at once."""
        offer = self.provider(service)
        if offer is None:
            raise HwError("unavailable", f"{service!r} is not offered in this kernel")
        return self._serve_bytes(offer, caller, data, wait)

    def _serve_bytes(self, offer: _Offer, caller: str, data: bytes,
                     wait: float | None) -> bytes:
        if wait is None:
            wait = offer.env.manifest.limits.deadline_ms / 1000
        box: list[bytes] = []
        self._serve(offer, caller, _Bytes(data), _Sink(box), wait)
        return box[0]

    def _serve(self, offer: _Offer, caller: str, request: Any, response: Any,
               timeout: float | None) -> int:
        env = offer.env
        _accepts(self.audit, env.manifest, offer.service, caller)
        inst = env.instance
        if inst is None or env.closed:
            raise HwError("unavailable", f"the provider of {offer.service!r} has stopped")
        n = len(request)
        room = offer.length - HEADER.size
        if n > room:
            why = (f"request of {n} bytes exceeds the {room}-byte serve buffer of "
                   f"{offer.service!r}")
            self.audit.record(env.name, f"{_PREFIX}.serve", {"service": offer.service,
                              "caller": caller, "bytes": n}, why, "too_large")
            raise HwError("too_large", why)
        mem = inst.mem
        body = offer.ptr + HEADER.size
        try:
            with inst.held(timeout, SERVE_EXPORT) as enter:
                if env.closed:   # withdrawn while this call waited (a move's snapshot)
                    raise HwError("unavailable", f"the provider of {offer.service!r} has stopped")
                mem.write_struct(offer.ptr, HEADER, offer.sid, n)
                request.copy_to(mem, body, n)
                result = enter(SERVE_EXPORT)
                if result < 0 or result > room:
                    raise HwError("provider_failed",
                                  f"{env.name}.imc_serve returned {result}"
                                  + (f" (serve buffer holds {room})" if result > room else ""))
                if result > len(response):
                    raise HwError("too_large", f"the reply of {result} bytes does not fit "
                                               f"the {len(response)}-byte buffer")
                response.copy_from(mem, body, result)
                return result
        except DriverFault as fault:
            if fault.kind == "busy":
                if timeout == 0:
                    raise ProviderBusy(f"the provider of {offer.service!r} is running") from None
                raise HwError("timeout", f"{offer.service!r}: provider busy past the "
                                         "deadline") from None
            if fault.kind == "reentrant":
                raise HwError("unavailable", f"{offer.service!r}: its provider is waiting "
                                             "on this call (a cycle)") from None
            env.fault(f"imc_serve: {fault}")
            raise HwError("provider_failed", f"{env.name} faulted serving "
                                             f"{offer.service!r}: {fault}") from None

    # -- publications -----------------------------------------------------------------------
    def publish(self, publisher: str, topic: str, data: bytes) -> None:
        full = f"{publisher}.{topic}"
        self.deliver(full, data)
        if self.remote is not None:
            self.remote.publish(full, data)

    def deliver(self, topic: str, data: bytes) -> None:
        """Queue a publication on every local subscription of `topic`."""
        for sub in self._subs.get(topic, ()):
            sub.queue.append(data)

    # -- registration (called by ImcEnv) ------------------------------------------------------
    def _offer(self, env: ImcEnv, service: str, ptr: int, length: int) -> int:
        with self._lock:
            offers = self._offers.setdefault(service, [])
            first = not offers
            offer = _Offer(service, next(self._sids) & 0xFFFFFFFF, env, ptr, length)
            for i, o in enumerate(offers):
                if o.env is env:             # offered again by the same instance: replace
                    offers[i] = offer
                    break
            else:
                offers.append(offer)         # later providers stand by, in order
        if first and self.remote is not None:
            self.remote.serve(service, functools.partial(self.serve_bytes, service))
        return offer.sid

    def _withdraw(self, env: ImcEnv) -> None:
        gone, unheard = [], []
        with self._lock:
            for service, offers in list(self._offers.items()):
                keep = [o for o in offers if o.env is not env]
                if len(keep) == len(offers):
                    continue
                if keep:
                    self._offers[service] = keep
                else:
                    del self._offers[service]
                    gone.append(service)
            for topic, subs in list(self._subs.items()):
                kept = [s for s in subs if s.env is not env]
                if len(kept) == len(subs):
                    continue
                if kept:
                    self._subs[topic] = kept
                else:
                    del self._subs[topic]
                    unheard.append(topic)        # its last local subscription went
        if self.remote is not None:
            for service in gone:
                self.remote.withdraw(service)
            for topic in unheard:
                self.remote.unsubscribe(topic)

    def _subscribe(self, env: ImcEnv, topic: str) -> _Sub:
        sub = _Sub(env, collections.deque(maxlen=QUEUE))
        with self._lock:
            first = topic not in self._subs
            self._subs.setdefault(topic, []).append(sub)
        if first and self.remote is not None:
            self.remote.subscribe(topic, self.deliver)
        return sub


@dataclass
class _Sub:
    env: ImcEnv
    queue: collections.deque


class _Bytes:
    """A request that arrived as bytes, copied into the provider's memory once."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def copy_to(self, mem: Any, ptr: int, n: int) -> None:
        mem.write(ptr, self.data)


class _Sink:
    """A reply leaving as bytes (one copy out of the provider's memory)."""

    __slots__ = ("box",)

    def __init__(self, box: list) -> None:
        self.box = box

    def __len__(self) -> int:
        return 1 << 30

    def copy_from(self, mem: Any, ptr: int, n: int) -> None:
        self.box.append(mem.read(ptr, n))


class _Region:
    """A caller's `GuestRegion` on the local path: one `copy_between` each way."""

    __slots__ = ("r",)

    def __init__(self, region: Any) -> None:
        self.r = region

    def __len__(self) -> int:
        return len(self.r)

    def copy_to(self, mem: Any, ptr: int, n: int) -> None:
        copy_between(self.r.memory, self.r.ptr, mem, ptr, n)

    def copy_from(self, mem: Any, ptr: int, n: int) -> None:
        copy_between(mem, ptr, self.r.memory, self.r.ptr, n)


# -- per instance ---------------------------------------------------------------------------------

class ImcEnv:
    """The `wasi_imc` host module of one module instance."""

    def __init__(self, hub: ImcHub, manifest: Manifest) -> None:
        self.hub = hub
        self.manifest = manifest
        self.name = manifest.name
        self.instance: Any = None
        self.closed = False
        self._subs: dict[int, _Sub] = {}
        self._handles = itertools.count(1)

    def attach(self, instance: Any) -> None:
        """The instance this env belongs to (its memory and ``imc_serve`` entry)."""
        self.instance = instance

    def fault(self, why: str) -> None:
        inst = self.instance
        self.hub._withdraw(self)
        self.hub.on_fault(self.name, inst, why)

    # -- WasiImc --------------------------------------------------------------------------------
    def call(self, service: str, request: Any, response: Any, timeout_ms: int) -> int:
        return self.hub.call(self.manifest, service, _Region(request), _Region(response),
                             timeout_ms)

    def publish(self, topic: str, data: bytes) -> None:
        self.hub.publish(self.name, topic, data)

    def subscribe(self, topic: str) -> int:
        if len(self._subs) >= self.manifest.limits.open_handles:
            raise HwError("no_mem", f"subscription quota of {self.manifest.limits.open_handles} "
                                    "(limits.open_handles) reached")
        sub = self.hub._subscribe(self, topic)
        handle = next(self._handles)
        self._subs[handle] = sub
        return handle

    def receive(self, sub: int, buf: Any) -> int:
        s = self._subs.get(sub)
        if s is None:
            raise HwError("bad_handle", f"{sub} is not a subscription of this instance")
        if not s.queue:
            return 0
        data = s.queue[0]
        if len(data) > len(buf):
            raise HwError("too_large", f"the publication of {len(data)} bytes does not fit "
                                       f"the {len(buf)}-byte buffer")
        buf.write(data)
        s.queue.popleft()
        return len(data)

    def offer(self, service: str, buf: Any) -> int:
        return self._offer_at(service, buf.ptr, len(buf))

    def _offer_at(self, service: str, ptr: int, length: int) -> int:
        if length < HEADER.size:
            raise HwError("too_large", f"a serve buffer needs at least {HEADER.size} bytes")
        if self.instance is None or not self.instance.has_entry(SERVE_EXPORT):
            raise HwError("invalid_argument", f"offering {service!r} needs an export "
                                              f"{SERVE_EXPORT}: () -> i32")
        return self.hub._offer(self, service, ptr, length)

    def offers(self) -> tuple[tuple[str, int, int], ...]:
        """What this instance offers now: (service, serve buffer pointer, length) each."""
        with self.hub._lock:
            return tuple((o.service, o.ptr, o.length) for offers in self.hub._offers.values()
                         for o in offers if o.env is self)

    def reoffer(self, offers: Any) -> None:
        """Offer again what a snapshot of this module recorded (`offers`), after a restore
        (which skips the ``init()`` that offered them): each through the outbound rule
        (`_may`, audited) and the checks of a fresh ``offer``; the buffer must lie in memory."""
        size = self.instance.mem.size() if self.instance is not None else 0
        for service, ptr, length in offers:
            _may(self.hub.audit, self.manifest, "offer", service)
            if ptr < 0 or length < 0 or ptr + length > size:
                raise HwError("invalid_argument", f"the serve buffer of {service!r} "
                                                  f"({ptr}+{length}) is outside memory")
            self._offer_at(service, ptr, length)

    def close_all(self) -> None:
        if not self.closed:
            self.closed = True
            self.hub._withdraw(self)
            self._subs.clear()


class ImcGuard(_Guard):
    """The kernel guard of `wasi_imc`: the outbound rule before every call (`_may`); every
    function is checked here (default-deny, as every guard).

    The inbound rule runs in the hub, where the provider is known."""

    _call_prefix = "wasi_imc"
    _host: ImcEnv

    def call(self, service: str, request: Any, response: Any, timeout_ms: int) -> int:
        return self._host.call(service, request, response, timeout_ms)   # hub checks (`_may`)

    def publish(self, topic: str, data: bytes) -> None:
        _may(self._audit, self._m, "publish", topic)
        return self._host.publish(topic, data)

    def subscribe(self, topic: str) -> int:
        _may(self._audit, self._m, "subscribe", topic)
        return self._host.subscribe(topic)

    def receive(self, sub: int, buf: Any) -> int:
        return self._host.receive(sub, buf)

    def offer(self, service: str, buf: Any) -> int:
        _may(self._audit, self._m, "offer", service)
        return self._host.offer(service, buf)
