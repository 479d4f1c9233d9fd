"""Fixtures shared by the end-to-end driver tests: one AoT cache directory per module."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("aot")


from nats_testing import nats_factory, nats_server  # noqa: E402,F401  (real nats-server fixtures)
