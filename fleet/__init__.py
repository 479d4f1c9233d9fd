"""wasi_hw.fleet — kernels joined over NATS.

`NatsBridge` is a kernel's NATS connection: the IMC's remote path (services by name over
NATS request/reply, publications across kernels) from the synchronous kernel to nats-py's
asyncio, on its own loop thread. `NatsServer` runs a real `nats-server` process (JetStream store, cluster routes, leaf
nodes, user/password) for tests, demos and single-machine setups; `start_cluster` starts
routed servers together. Nothing in this package is needed on one machine without NATS.
"""

from ._bridge import NatsBridge, publication_subject, service_subject
from ._server import NatsServer, NatsServerError, free_port, start_cluster

__all__ = ["NatsBridge", "publication_subject", "service_subject", "NatsServer", "NatsServerError", "free_port", "start_cluster"]
