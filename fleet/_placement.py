"""Placement: which nodes may run a module, decided from records only (no I/O).

Contract:
- `needs_of(manifest)` → what a module's grants require of a node: ``{"buses": [...],
  "usb": ["vvvv:pppp", ...]}``; `stateful(needs)` is True for a module without hardware
  grants (its state moves with it; one with hardware grants holds handles and moves cold).
- `can_run(node, needs, rule)` — the node is up, offers every bus and USB device the grants
  name (the fleet never widens a grant: a node lacking a device is not eligible) and matches
  the placement rule (``node``, ``bus``, ``usb``, ``arch``; every key given must match).
  `why_not` says which condition failed, in words.
- `choose(nodes, modules, needs, rule, exclude)` → the eligible node running the fewest
  modules (ties by name), or None.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

__all__ = ["needs_of", "stateful", "can_run", "why_not", "choose", "RULE_KEYS"]

RULE_KEYS = ("node", "bus", "usb", "arch")


def needs_of(manifest: Any) -> dict[str, list[str]]:
    return {"buses": sorted({g.bus for g in manifest.i2c}),
            "usb": sorted({f"{g.vid:04x}:{g.pid:04x}" for g in manifest.usb})}


def stateful(needs: Mapping[str, Any]) -> bool:
    return not needs.get("buses") and not needs.get("usb")


def why_not(node: Mapping[str, Any], needs: Mapping[str, Any], rule: Mapping[str, Any]) -> str | None:
    """None if `node` can run a module with `needs` under `rule`, else the reason."""
    name = node.get("name", "?")
    if node.get("state") != "up":
        return f"node {name} is {node.get('state', 'unknown')}"
    if rule.get("node") and rule["node"] != name:
        return f"the rule names node {rule['node']}"
    if rule.get("arch") and rule["arch"] != node.get("arch"):
        return f"node {name} is {node.get('arch')}, the rule wants {rule['arch']}"
    buses, usb = set(node.get("buses", ())), {u.lower() for u in node.get("usb", ())}
    if rule.get("bus") and rule["bus"] not in buses:
        return f"node {name} has no bus {rule['bus']}"
    if rule.get("usb") and rule["usb"].lower() not in usb:
        return f"node {name} has no USB device {rule['usb']}"
    missing = [b for b in needs.get("buses", ()) if b not in buses] + \
              [u for u in needs.get("usb", ()) if u.lower() not in usb]
    if missing:
        return f"node {name} cannot grant {', '.join(missing)}"
    return None


def can_run(node: Mapping[str, Any], needs: Mapping[str, Any], rule: Mapping[str, Any]) -> bool:
    return why_not(node, needs, rule) is None


def choose(nodes: Mapping[str, Mapping[str, Any]], modules: Iterable[Mapping[str, Any]],
           needs: Mapping[str, Any], rule: Mapping[str, Any],
           exclude: Iterable[str] = ()) -> str | None:
    load: dict[str, int] = {}
    for m in modules:
        if m.get("node") and m.get("desired") == "running":
            load[m["node"]] = load.get(m["node"], 0) + 1
    skip = set(exclude)
    ok = [n for n, rec in nodes.items() if n not in skip and can_run(rec, needs, rule)]
    return min(ok, key=lambda n: (load.get(n, 0), n)) if ok else None
