"""wasi_hw.fleet — kernels joined over NATS: nodes, the module manager, one registry.

`NatsBridge` is a kernel's NATS connection: the IMC's remote path (services by name over
NATS request/reply, publications across kernels) from the synchronous kernel to nats-py's
asyncio, on its own loop thread. `NatsServer` runs a real `nats-server` process (JetStream store, cluster routes, leaf
nodes, user/password) for tests, demos and single-machine setups; `start_cluster` starts
routed servers together. A lattice keeps its shared state in JetStream: the `Registry` (KV,
every change by compare-and-set), `Artifacts` and `Snapshots` (Object Stores, read back
through a pull consumer and checked by SHA-256). `NodeAgent` runs what the registry assigns
to its node under its kernel; `Manager` writes desired state (deploy, move, stop, update) and
never runs modules. Subjects and bucket names are made in one place (`_names`).
`write_counter` makes a stateful test module (tests, benchmarks). Nothing in this package is
needed on one machine without NATS.
"""

from ._bridge import NatsBridge, publication_subject, service_subject
from ._artifacts import ArtifactError, Artifacts, ObjectBucket, Snapshots, sha256
from ._names import (DEFAULT_LATTICE, artifacts_bucket, check_lattice, check_name, ctl_subject,
                     evt_subject, module_key, node_key, registry_bucket, snapshots_bucket,
                     status_key, svc_subject)
from ._manager import Manager, running_on
from ._node import NodeAgent, NodeConfig, offers_of
from ._registry import Conflict, Credentials, Entry, Registry, connect, wait_for
from ._server import NatsServer, NatsServerError, free_port, start_cluster
from ._testmod import counter_wat, write_counter

__all__ = [
    "NatsBridge", "publication_subject", "service_subject",
    "NatsServer", "NatsServerError", "free_port", "start_cluster",
    "counter_wat", "write_counter",
    "ArtifactError", "Artifacts", "ObjectBucket", "Snapshots", "sha256",
    "Conflict", "Credentials", "Entry", "Registry", "connect", "wait_for",
    "Manager", "running_on", "NodeAgent", "NodeConfig", "offers_of",
    "DEFAULT_LATTICE", "artifacts_bucket", "check_lattice", "check_name", "ctl_subject",
    "evt_subject", "module_key", "node_key", "registry_bucket", "snapshots_bucket", "status_key",
    "svc_subject",
]
