"""Artifacts and snapshots in JetStream Object Stores, read back fast and checked by digest.

Contract:
- `ObjectBucket.open(nc, bucket)` binds (creating if absent) an Object Store.
  `put(name, data)` stores; `get(name)` returns the bytes, read through one ordered pull of
  the object's chunk subject (batches of 64) rather than nats-py's `ObjectStore.get`, which
  is slow above about 1 MiB (nats-io/nats.py#703); the whole object's SHA-256 is checked
  against the digest in its metadata (`ArtifactError` "corrupt" otherwise). A missing object
  is `ArtifactError` "missing".
- `Artifacts` (``WASIHW_ARTIFACTS_<lattice>``): a module is ``wasm/<sha256>`` plus
  ``manifest/<sha256>`` (the manifest's TOML text). `publish(wasm, manifest_text)` stores both
  and returns their hex digests; `fetch(kind, sha256)` returns the bytes only if their SHA-256
  is the one asked for (`ArtifactError` "digest" otherwise — the deployment record, not the
  store, is what a node trusts).
- `Snapshots` (``WASIHW_SNAPSHOTS_<lattice>``): ``<module>/<epoch>`` → a kernel snapshot image.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from nats.js import api as js_api
from nats.js import errors as js_errors

from wasi_hw import UserError

from ._names import artifacts_bucket, snapshots_bucket

__all__ = ["ArtifactError", "Artifacts", "ObjectBucket", "Snapshots", "sha256"]

_BATCH = 64
_CHUNK = 512 * 1024      # below the server's default max_payload (1 MiB)


class ArtifactError(UserError):
    """An artifact or snapshot cannot be used: ``kind`` is missing, corrupt or digest."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ObjectBucket:
    """One Object Store bucket with a fast, checked `get`."""

    def __init__(self, js: Any, obs: Any, bucket: str) -> None:
        self.js, self.obs, self.bucket = js, obs, bucket

    @classmethod
    async def open(cls, nc: Any, bucket: str, *, replicas: int = 1,
                   domain: str | None = None) -> "ObjectBucket":
        js = nc.jetstream(domain=domain) if domain else nc.jetstream()
        try:
            obs = await js.object_store(bucket)
        except (js_errors.BucketNotFoundError, js_errors.NotFoundError):
            try:
                obs = await js.create_object_store(bucket, js_api.ObjectStoreConfig(
                    bucket=bucket, replicas=replicas, storage=js_api.StorageType.FILE))
            except js_errors.BadRequestError:
                obs = await js.object_store(bucket)
        return cls(js, obs, bucket)

    async def put(self, name: str, data: bytes) -> None:
        # chunks of 512 KiB (nats-py's default is 128 KiB): it waits for one ack per chunk
        meta = js_api.ObjectMeta(name=name, options=js_api.ObjectMetaOptions(
            max_chunk_size=_CHUNK))
        await self.obs.put(name, data, meta=meta)

    async def exists(self, name: str) -> bool:
        try:
            info = await self.obs.get_info(name)
        except js_errors.ObjectNotFoundError:
            return False
        return not info.deleted

    async def delete(self, name: str) -> None:
        try:
            await self.obs.delete(name)
        except (js_errors.ObjectNotFoundError, js_errors.ObjectDeletedError):
            pass

    async def get(self, name: str, *, timeout: float = 10.0) -> bytes:
        try:
            info = await self.obs.get_info(name)
        except js_errors.ObjectNotFoundError:
            raise ArtifactError("missing", f"{self.bucket}: no object {name!r}") from None
        if info.deleted:
            raise ArtifactError("missing", f"{self.bucket}: object {name!r} was deleted")
        chunks = info.chunks or 0
        parts: list[bytes] = []
        if chunks:
            subject = f"$O.{self.bucket}.C.{info.nuid}"
            sub = await self.js.pull_subscribe(
                subject, stream=f"OBJ_{self.bucket}",
                config=js_api.ConsumerConfig(deliver_policy=js_api.DeliverPolicy.ALL,
                                             ack_policy=js_api.AckPolicy.NONE,
                                             inactive_threshold=30.0))
            try:
                while len(parts) < chunks:
                    msgs = await sub.fetch(min(_BATCH, chunks - len(parts)), timeout=timeout)
                    parts.extend(m.data for m in msgs)
            finally:
                try:
                    await sub.unsubscribe()
                except Exception:
                    pass
        data = b"".join(parts)
        want = (info.digest or "").split("=", 1)[-1]
        got = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode()
        if len(data) != info.size or want.rstrip("=") != got.rstrip("="):
            raise ArtifactError("corrupt", f"{self.bucket}/{name}: {len(data)} bytes read, "
                                           f"metadata says {info.size} with another digest")
        return data


class Artifacts:
    """``WASIHW_ARTIFACTS_<lattice>``: modules by SHA-256."""

    def __init__(self, bucket: ObjectBucket) -> None:
        self.bucket = bucket

    @classmethod
    async def open(cls, nc: Any, lattice: str, *, replicas: int = 1,
                   domain: str | None = None) -> "Artifacts":
        return cls(await ObjectBucket.open(nc, artifacts_bucket(lattice), replicas=replicas,
                                           domain=domain))

    async def publish(self, wasm: bytes, manifest_text: str) -> tuple[str, str]:
        w, m = sha256(wasm), sha256(manifest_text.encode())
        for name, data in ((f"wasm/{w}", wasm), (f"manifest/{m}", manifest_text.encode())):
            if not await self.bucket.exists(name):
                await self.bucket.put(name, data)
        return w, m

    async def fetch(self, kind: str, digest: str) -> bytes:
        data = await self.bucket.get(f"{kind}/{digest}")
        if sha256(data) != digest:
            raise ArtifactError("digest", f"{kind} {digest[:12]}…: the stored bytes hash to "
                                          f"{sha256(data)[:12]}…, not what the deployment names")
        return data


class Snapshots:
    """``WASIHW_SNAPSHOTS_<lattice>``: ``<module>/<epoch>`` → snapshot image."""

    def __init__(self, bucket: ObjectBucket) -> None:
        self.bucket = bucket

    @classmethod
    async def open(cls, nc: Any, lattice: str, *, replicas: int = 1,
                   domain: str | None = None) -> "Snapshots":
        return cls(await ObjectBucket.open(nc, snapshots_bucket(lattice), replicas=replicas,
                                           domain=domain))

    async def put(self, module: str, epoch: int, image: bytes) -> str:
        name = f"{module}/{epoch}"
        await self.bucket.put(name, image)
        return name

    async def get(self, name: str) -> bytes:
        return await self.bucket.get(name)

    async def delete(self, name: str) -> None:
        await self.bucket.delete(name)
