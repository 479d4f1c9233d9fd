"""wasi_hw.fleet — kernels joined over NATS.

`NatsServer` runs a real `nats-server` process (JetStream store, cluster routes, leaf
nodes, user/password) for tests, demos and single-machine setups; `start_cluster` starts
routed servers together. Nothing in this package is needed on one machine without NATS.
"""

from ._server import NatsServer, NatsServerError, free_port, start_cluster

__all__ = ["NatsServer", "NatsServerError", "free_port", "start_cluster"]
