"""The lattice registry: one JetStream KV bucket, every change by compare-and-set.

Contract:
- `connect(url, creds)` opens a nats-py connection that reconnects forever (the server may
  restart); `Credentials` carries user/password, an nkeys seed file, a creds file and TLS
  files, all optional (see docs/design.md, "Fleet").
- `Registry.open(nc, lattice, replicas=, domain=)` binds (creating if absent, with that many
  replicas, in that JetStream domain — e.g. the hub's, from a leaf node)
  ``WASIHW_REGISTRY_<lattice>``.
  Values are JSON objects. `get(key)` → `Entry` or None; `create(key, value)` succeeds only if
  the key does not exist; `update(key, value, rev)` only if ``rev`` is still the key's latest
  revision — otherwise `Conflict` (so two writers cannot both win, and a stale writer loses).
  `delete(key, rev)` likewise.
- `snapshot()` reads every key once; `watch()` yields `Entry` values (``value`` None for a
  deleted key) for every change after the current contents, which it yields first, then
  ``None`` once as the "caught up" marker.
- `wait_for(registry, predicate, timeout)` watches until ``predicate(view)`` is true for the
  dict view (key → value) and returns it; `TimeoutError` past the deadline. No polling.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import nats
from nats.js import api as js_api
from nats.js import errors as js_errors

from wasi_hw import UserError

from ._names import registry_bucket

__all__ = ["Conflict", "Credentials", "Entry", "Registry", "connect", "wait_for"]


class Conflict(UserError):
    """A compare-and-set lost: the key changed since it was read (or already exists)."""


@dataclass(frozen=True)
class Credentials:
    user: str | None = None
    password: str | None = None
    nkeys_seed: str | None = None      # path of an nkeys seed file
    creds: str | None = None           # path of a .creds file (JWT + seed)
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None


def credential_options(creds: Credentials | None) -> dict[str, Any]:
    """The nats-py ``connect`` keywords for `creds` (user/password, nkeys, .creds, TLS)."""
    c = creds or Credentials()
    opts: dict[str, Any] = {}
    if c.user is not None:
        opts.update(user=c.user, password=c.password or "")
    if c.nkeys_seed:
        opts["nkeys_seed"] = c.nkeys_seed
    if c.creds:
        opts["user_credentials"] = c.creds
    if c.tls_ca or c.tls_cert:
        ctx = ssl.create_default_context(cafile=c.tls_ca)
        if c.tls_cert:
            ctx.load_cert_chain(c.tls_cert, c.tls_key)
        opts["tls"] = ctx
    return opts


async def connect(url: str, creds: Credentials | None = None, *, name: str = "wasi-hw",
                  connect_timeout: float = 2.0, on_reconnect: Any = None) -> Any:
    """A nats-py client for `url` that reconnects without end (``on_reconnect``: an async
    callback after each reconnect)."""
    opts: dict[str, Any] = dict(servers=[u.strip() for u in url.split(",")], name=name,
                                allow_reconnect=True, max_reconnect_attempts=-1,
                                reconnect_time_wait=0.1, connect_timeout=connect_timeout,
                                ping_interval=5, max_outstanding_pings=3)
    opts.update(credential_options(creds))

    errors: list[str] = []
    refused = asyncio.Event()

    async def quiet(err: Exception) -> None:   # reconnects are expected; errors surface per call
        errors[:] = [f"{type(err).__name__}: {err}".strip()]
        if "authorization" in str(err).lower() or "authentication" in str(err).lower():
            refused.set()

    opts.update(error_cb=quiet)
    if on_reconnect is not None:
        opts["reconnected_cb"] = on_reconnect
    try:
        # the first connection is bounded (a wrong password must not retry for ever): it
        # ends at the deadline, or at once when the server refuses the credentials
        task = asyncio.ensure_future(nats.connect(**opts))
        stop = asyncio.ensure_future(refused.wait())
        await asyncio.wait([task, stop], timeout=connect_timeout * 3,
                           return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise TimeoutError()
        return task.result()
    except Exception as err:
        why = f"{type(err).__name__}: {err}".strip().rstrip(":")
        if isinstance(err, asyncio.TimeoutError) and errors:
            why = errors[0]
        raise UserError(f"cannot connect to NATS at {_redact(url)}: {why}") from None


def _redact(url: str) -> str:
    import re

    return re.sub(r"//[^/@]*@", "//***@", url)


@dataclass(frozen=True)
class Entry:
    key: str
    value: dict | None
    revision: int


def _decode(raw: bytes | None) -> dict | None:
    if not raw:
        return None
    return json.loads(raw)


def _encode(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


class Registry:
    """``WASIHW_REGISTRY_<lattice>``: nodes, modules and their status, by compare-and-set."""

    def __init__(self, kv: Any, lattice: str, js: Any = None, domain: str | None = None) -> None:
        self.kv = kv
        self.lattice = lattice
        self._js = js
        # writes go to the bucket's subjects; from another JetStream domain (a leaf node
        # writing to the hub) through that domain's API mapping, which nats-py's KV does not do
        bucket = registry_bucket(lattice)
        self._put = f"$JS.{domain}.API.$KV.{bucket}." if domain else f"$KV.{bucket}."

    @classmethod
    async def open(cls, nc: Any, lattice: str, *, replicas: int = 1,
                   domain: str | None = None) -> Registry:
        js = nc.jetstream(domain=domain) if domain else nc.jetstream()
        bucket = registry_bucket(lattice)
        try:
            kv = await js.key_value(bucket)
        except js_errors.BucketNotFoundError:
            try:
                kv = await js.create_key_value(js_api.KeyValueConfig(
                    bucket=bucket, history=4, replicas=replicas,
                    storage=js_api.StorageType.FILE))
            except js_errors.BadRequestError:      # created meanwhile by another process
                kv = await js.key_value(bucket)
        return cls(kv, lattice, js, domain)

    async def get(self, key: str) -> Entry | None:
        try:
            e = await self.kv.get(key)
        except js_errors.KeyNotFoundError:
            return None
        value = _decode(e.value)
        return None if value is None else Entry(key, value, e.revision)

    async def _write(self, key: str, data: bytes, last: int | None,
                     op: str | None = None) -> int:
        headers: dict[str, str] = {}
        if last is not None:
            headers[js_api.Header.EXPECTED_LAST_SUBJECT_SEQUENCE] = str(last)
        if op is not None:
            headers["KV-Operation"] = op
        try:
            ack = await self._js.publish(self._put + key, data, headers=headers or None)
        except js_errors.APIError as err:
            if err.err_code in (10071, 10164):     # wrong last sequence
                raise Conflict(f"{key} changed since revision {last}") from None
            raise
        return ack.seq

    async def create(self, key: str, value: dict) -> int:
        try:
            return await self._write(key, _encode(value), 0)
        except Conflict:
            cur = await self._raw(key)
            if cur is not None and cur.operation in ("DEL", "PURGE"):   # re-create a deleted key
                try:
                    return await self._write(key, _encode(value), cur.revision)
                except Conflict:
                    pass
            raise Conflict(f"{key} already exists") from None

    async def _raw(self, key: str) -> Any:
        try:
            return await self.kv.get(key)
        except js_errors.KeyDeletedError as err:
            return err.entry
        except js_errors.KeyNotFoundError:
            return None

    async def update(self, key: str, value: dict, rev: int) -> int:
        return await self._write(key, _encode(value), rev)

    async def put(self, key: str, value: dict) -> int:
        """An unconditional write: only for records one writer owns (a module's status)."""
        return await self._write(key, _encode(value), None)

    async def delete(self, key: str, rev: int | None = None) -> None:
        await self._write(key, b"", rev, op="DEL")

    async def snapshot(self) -> dict[str, Entry]:
        out: dict[str, Entry] = {}
        async for e in self.watch():
            if e is None:
                return out
            if e.value is not None:
                out[e.key] = e
        return out

    async def watch(self, keys: str = ">") -> AsyncIterator[Entry | None]:
        w = await self.kv.watch(keys)
        try:
            while True:
                e = await w.updates(timeout=None)
                if e is None:
                    yield None          # caught up with the current contents
                    continue
                if e.operation in ("DEL", "PURGE"):
                    yield Entry(e.key, None, e.revision)
                else:
                    yield Entry(e.key, _decode(e.value), e.revision)
        finally:
            try:
                await w.stop()
            except Exception:
                pass


async def wait_for(registry: Registry, predicate: Callable[[dict[str, dict]], Any],
                   timeout: float) -> Any:
    """Watch until ``predicate(view)`` is truthy; its value. `TimeoutError` after `timeout` s.
    A watch that fails (a server lost, JetStream not ready yet) is made again."""
    view: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    last_error: list[str] = []

    async def once() -> Any:
        fresh: dict[str, dict] = {}
        caught_up = False
        async for e in registry.watch():
            if e is None:
                if not caught_up:
                    caught_up = True
                    view.clear()
                    view.update(fresh)
            elif e.value is None:
                (view if caught_up else fresh).pop(e.key, None)
            else:
                (view if caught_up else fresh)[e.key] = e.value
            if caught_up:
                result = predicate(view)
                if result:
                    return result

    async def run() -> Any:
        while True:
            try:
                return await once()
            except asyncio.CancelledError:
                raise
            except Exception as err:       # nats-py raises its own timeouts here
                last_error[:] = [f"{type(err).__name__}: {err}"]
                await asyncio.sleep(0.1)

    try:
        return await asyncio.wait_for(run(), max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        raise TimeoutError(f"registry did not reach the expected state in {timeout} s"
                           f"{' (last watch error: ' + last_error[0] + ')' if last_error else ''}; "
                           f"last view: {json.dumps(view, sort_keys=True)[:2000]}") from None
