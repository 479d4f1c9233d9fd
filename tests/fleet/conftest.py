from nats_testing import nats_cluster, nats_factory, nats_hub_leaf, nats_server  # noqa: F401
