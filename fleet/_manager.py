"""The module manager: writes desired state into the registry; never runs a module itself.

Contract:
- `Manager.open(nc, lattice)`; every change is a compare-and-set on ``mod.<name>``, so of two
  managers acting on the same revision exactly one wins (the other gets `Conflict`).
- `deploy(manifest_path, rule)` validates the manifest, publishes the wasm and manifest by
  SHA-256, chooses a node (``rule``: ``node``, ``bus``, ``usb`` "vvvv:pppp", ``arch``; plus the
  manifest's grants, which a node must be able to grant) and creates the record at epoch 1
  (or replaces a stopped one at its epoch + 1). Nothing eligible → `UserError` saying why
  for every node.
- `move(module, to)` refuses up front when the target cannot grant the module's devices
  (a module with hardware grants moves cold: it restarts on the target; a module without
  any moves with its memory and globals); otherwise it sets ``move.to`` and the source node
  hands over between two calls. `stop(module)` sets ``desired = stopped`` at ``epoch + 1``.
  `update(manifest_path)` publishes the new wasm and sets ``update`` for the node running it
  (the old version keeps running when the new one fails to start).
- `listing()` → ``{"nodes": [...], "modules": [...]}`` (records plus status) for `fleet ls`;
  `logs(module)` asks the node running it for its recent lines.
- `wait_for_module(name, predicate, timeout)` waits on registry events (module record +
  status), never polls.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

from wasi_hw import UserError
from wasi_hw.kernel import load_manifest

from . import _placement
from ._artifacts import Artifacts, Snapshots
from ._names import check_name, ctl_subject, module_key, status_key
from ._registry import Registry, wait_for

__all__ = ["Manager"]


class Manager:
    def __init__(self, nc: Any, registry: Registry, artifacts: Artifacts) -> None:
        self.nc, self.registry, self.artifacts = nc, registry, artifacts
        self.lattice = registry.lattice

    @classmethod
    async def open(cls, nc: Any, lattice: str, *, replicas: int = 1,
                   domain: str | None = None) -> "Manager":
        registry = await Registry.open(nc, lattice, replicas=replicas, domain=domain)
        artifacts = await Artifacts.open(nc, lattice, replicas=replicas, domain=domain)
        # the snapshot bucket too, with the same replicas (a node would make it with its own)
        await Snapshots.open(nc, lattice, replicas=replicas, domain=domain)
        return cls(nc, registry, artifacts)

    async def _state(self) -> tuple[dict[str, dict], dict[str, Any], dict[str, dict]]:
        snap = await self.registry.snapshot()
        nodes = {k[5:]: e.value for k, e in snap.items() if k.startswith("node.")}
        mods = {k[4:]: e for k, e in snap.items() if k.startswith("mod.")}
        status = {k[7:]: e.value for k, e in snap.items() if k.startswith("status.")}
        return nodes, mods, status

    @staticmethod
    def _read(manifest_path: Path | str) -> tuple[Any, str, bytes]:
        path = Path(manifest_path)
        manifest = load_manifest(path)
        text = path.read_text(encoding="utf-8")
        try:
            wasm = manifest.wasm.read_bytes()
        except OSError as err:
            raise UserError(f"{path}: cannot read the module {manifest.wasm}: "
                            f"{err.strerror or err}") from None
        return manifest, text, wasm

    async def deploy(self, manifest_path: Path | str, rule: dict[str, str] | None = None) -> dict:
        rule = {k: v for k, v in (rule or {}).items() if v}
        bad = [k for k in rule if k not in _placement.RULE_KEYS]
        if bad:
            raise UserError(f"unknown placement keys {bad} (known: {', '.join(_placement.RULE_KEYS)})")
        manifest, text, wasm = self._read(manifest_path)
        name = check_name(manifest.name, "module name")
        needs = _placement.needs_of(manifest)
        nodes, mods, _ = await self._state()
        target = _placement.choose(nodes, [e.value for e in mods.values()], needs, rule)
        if target is None:
            reasons = "; ".join(_placement.why_not(n, needs, rule) or "" for n in nodes.values())
            raise UserError(f"no node can run {name}: {reasons or 'no nodes in the lattice'}")
        w, m = await self.artifacts.publish(wasm, text)
        old = mods.get(name)
        rec = {"name": name, "wasm": w, "manifest": m, "needs": needs, "rule": rule,
               "node": target, "epoch": 1, "desired": "running", "snapshot": None,
               "move": None, "update": None, "note": "deployed", "time": time.time()}
        if old is None:
            await self.registry.create(module_key(name), rec)
        elif (old.value or {}).get("desired") == "running":
            raise UserError(f"module {name} is already deployed (on {old.value.get('node')}): "
                            "use `fleet update` or `fleet move`")
        else:
            rec["epoch"] = int(old.value.get("epoch", 0)) + 1
            await self.registry.update(module_key(name), rec, old.revision)
        return rec

    async def _module(self, name: str) -> Any:
        e = await self.registry.get(module_key(name))
        if e is None:
            raise UserError(f"no module named {name!r} in lattice {self.lattice}")
        return e

    async def move(self, name: str, to: str) -> dict:
        e = await self._module(name)
        rec = dict(e.value)
        if rec.get("desired") != "running" or not rec.get("node"):
            raise UserError(f"module {name} is not running anywhere: deploy it instead")
        if rec["node"] == to:
            raise UserError(f"module {name} already runs on {to}")
        node = await self.registry.get(f"node.{to}")
        if node is None:
            raise UserError(f"no node named {to!r} in lattice {self.lattice}")
        why = _placement.why_not(node.value, rec.get("needs", {}), {})
        if why:
            raise UserError(f"cannot move {name} to {to}: {why} (the module holds hardware "
                            "grants the target cannot give; nothing was changed)")
        if rec.get("move"):
            raise UserError(f"module {name} is already moving to {rec['move'].get('to')}")
        rec["move"] = {"to": to, "requested": time.time()}
        if rec.get("rule", {}).get("node"):        # pinned: the pin follows an explicit move
            rec["rule"] = dict(rec["rule"], node=to)
        await self.registry.update(module_key(name), rec, e.revision)
        return rec

    async def stop(self, name: str) -> dict:
        e = await self._module(name)
        rec = dict(e.value)
        rec.update(desired="stopped", node=None, move=None, update=None,
                   epoch=int(rec.get("epoch", 0)) + 1, note="stopped")
        await self.registry.update(module_key(name), rec, e.revision)
        return rec

    async def update(self, manifest_path: Path | str) -> dict:
        manifest, text, wasm = self._read(manifest_path)
        e = await self._module(manifest.name)
        rec = dict(e.value)
        if rec.get("desired") != "running":
            raise UserError(f"module {manifest.name} is stopped: deploy it instead")
        w, m = await self.artifacts.publish(wasm, text)
        if w == rec["wasm"] and m == rec["manifest"]:
            raise UserError(f"module {manifest.name} already runs this version ({w[:12]}…)")
        rec["update"] = {"wasm": w, "manifest": m, "requested": time.time()}
        await self.registry.update(module_key(manifest.name), rec, e.revision)
        return rec

    async def listing(self) -> dict[str, list[dict]]:
        nodes, mods, status = await self._state()
        out_mods = []
        for name, e in sorted(mods.items()):
            rec = dict(e.value)
            st = status.get(name) or {}
            if st.get("node") != rec.get("node") or st.get("epoch") != rec.get("epoch"):
                st = {}        # a status from an older placement says nothing about this one
            rec["status"] = st
            out_mods.append(rec)
        return {"nodes": [nodes[n] for n in sorted(nodes)], "modules": out_mods}

    async def logs(self, name: str, timeout: float = 2.0) -> list[str]:
        e = await self._module(name)
        node = e.value.get("node")
        if not node:
            raise UserError(f"module {name} is not placed on any node")
        try:
            reply = await self.nc.request(ctl_subject(self.lattice, node, "logs"),
                                          json.dumps({"module": name}).encode(), timeout=timeout)
        except Exception as err:
            raise UserError(f"node {node} did not answer: {type(err).__name__}") from None
        return json.loads(reply.data)["lines"]

    async def wait_for_module(self, name: str, predicate: Callable[[dict, dict], bool],
                              timeout: float) -> dict:
        """Wait until ``predicate(record, status)``; the record."""
        def check(view: dict[str, dict]) -> Any:
            rec = view.get(module_key(name))
            st = view.get(status_key(name)) or {}
            return rec if rec is not None and predicate(rec, st) else None

        return await wait_for(self.registry, check, timeout)


def running_on(node: str | None = None) -> Callable[[dict, dict], bool]:
    """A `wait_for_module` predicate: placed (on `node`) and its status says running there."""
    def pred(rec: dict, st: dict) -> bool:
        return (rec.get("node") is not None and (node is None or rec["node"] == node)
                and not rec.get("move") and st.get("node") == rec["node"]
                and st.get("epoch") == rec.get("epoch") and st.get("state") == "running")
    return pred


__all__ += ["running_on"]

