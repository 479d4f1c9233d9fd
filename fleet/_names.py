"""Names in a lattice: every subject, bucket and registry key the fleet uses, made here only.

Contract:
- A lattice name is ``[A-Za-z0-9_-]{1,32}`` (it becomes part of stream names); node and
  module names follow manifest names, ``[a-z0-9][a-z0-9_-]{0,63}``. `check_lattice` /
  `check_name` raise `UserError` otherwise.
- Buckets: ``WASIHW_REGISTRY_<lattice>`` (KV: nodes, modules, status), ``WASIHW_ARTIFACTS_<lattice>``
  (objects ``wasm/<sha256>``, ``manifest/<sha256>``), ``WASIHW_SNAPSHOTS_<lattice>`` (objects
  ``<module>/<epoch>``).
- Registry keys: ``node.<name>``, ``mod.<name>``, ``status.<name>``.
- Subjects: ``wasihw.<lattice>.evt.<module>.<event>`` (a module's reports/logs/state, published
  by the node running it), ``wasihw.<lattice>.ctl.<node>.<verb>`` (requests to one node),
  ``wasihw.<lattice>.svc.<service>`` (IMC services).
"""

from __future__ import annotations

import re

from wasi_hw import UserError

__all__ = ["check_lattice", "check_name", "registry_bucket", "artifacts_bucket",
           "snapshots_bucket", "node_key", "module_key", "status_key", "evt_subject",
           "ctl_subject", "svc_subject", "DEFAULT_LATTICE"]

DEFAULT_LATTICE = "default"
_LATTICE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def check_lattice(lattice: str) -> str:
    if not _LATTICE.match(lattice or ""):
        raise UserError(f"lattice {lattice!r}: expected 1-32 of A-Z a-z 0-9 _ -")
    return lattice


def check_name(name: str, what: str = "name") -> str:
    if not _NAME.match(name or ""):
        raise UserError(f"{what} {name!r}: expected [a-z0-9][a-z0-9_-]* (at most 64)")
    return name


def registry_bucket(lattice: str) -> str:
    return f"WASIHW_REGISTRY_{check_lattice(lattice)}"


def artifacts_bucket(lattice: str) -> str:
    return f"WASIHW_ARTIFACTS_{check_lattice(lattice)}"


def snapshots_bucket(lattice: str) -> str:
    return f"WASIHW_SNAPSHOTS_{check_lattice(lattice)}"


def node_key(name: str) -> str:
    return f"node.{name}"


def module_key(name: str) -> str:
    return f"mod.{name}"


def status_key(name: str) -> str:
    return f"status.{name}"


def evt_subject(lattice: str, module: str, event: str) -> str:
    return f"wasihw.{lattice}.evt.{module}.{event}"


def ctl_subject(lattice: str, node: str, verb: str) -> str:
    return f"wasihw.{lattice}.ctl.{node}.{verb}"


def svc_subject(lattice: str, service: str) -> str:
    return f"wasihw.{lattice}.svc.{service}"
