"""Shared fixtures: every test session runs in its own DDS domain (see ros_harness)."""

from __future__ import annotations

import os
import tempfile

import pytest

from ros_harness import NodeProcess, Probe, isolate_ros_environment

DOMAIN = isolate_ros_environment()  # before anything imports rclpy
# `hma train` keeps tokenized datasets in a cache; tests (and the commands they start) use their own
os.environ.setdefault("HMA_TOKEN_CACHE", tempfile.mkdtemp(prefix="hma_token_cache_"))


@pytest.fixture
def probe():
    p = Probe()
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def launch_node():
    """Start package executables as real processes; all are stopped at teardown."""
    started: list[NodeProcess] = []

    def start(executable: str, **kwargs) -> NodeProcess:
        proc = NodeProcess(executable, **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
