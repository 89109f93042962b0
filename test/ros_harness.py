"""Test harness for real ROS 2: isolated DDS domains, real node subprocesses, topic waiting.

Every pytest session gets its own ROS_DOMAIN_ID with localhost-only discovery, so parallel
runs never see each other. Package executables run as real subprocesses with a parameter
YAML; `Probe` is an rclpy node inside the test process that subscribes/publishes over DDS.
Everything started is stopped at teardown, failing tests included.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
DDS_PROFILE = REPO / "config" / "fastdds_shm.xml"


def isolate_ros_environment() -> int:
    """Give this process (and the children it starts) a private DDS domain on localhost."""
    domain = 1 + os.getpid() % 100  # 1..100, never the default 0
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.pop("ROS_LOCALHOST_ONLY", None)
    os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(DDS_PROFILE)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
    os.environ["PYTHONUNBUFFERED"] = "1"
    return domain


def executable_command(name: str) -> list[str]:
    """How to start a package executable: its console script if installed, else the module."""
    exe = shutil.which(name, path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    if exe:
        return [exe]
    from importlib.metadata import entry_points

    for ep in entry_points(group="console_scripts"):
        if ep.name == name:
            return [sys.executable, "-c", f"import sys; from {ep.module} import {ep.attr} as m; sys.exit(m())"]
    raise FileNotFoundError(f"no executable {name!r} registered by hma_ros")


class NodeProcess:
    """A package executable running as a real process, with its output captured to a file."""

    def __init__(self, executable: str, params: dict | None = None, node_name: str | None = None,
                 params_file: str | Path | None = None, remaps: dict[str, str] | None = None,
                 extra_args: list[str] | None = None, env: dict[str, str] | None = None):
        self.tmp = Path(tempfile.mkdtemp(prefix=f"hma_{executable}_"))
        cmd = executable_command(executable) + ["--ros-args"]
        if params_file:
            cmd += ["--params-file", str(params_file)]
        if params:
            path = self.tmp / "params.yaml"
            path.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}))
            cmd += ["--params-file", str(path)]
        if node_name:
            cmd += ["-r", f"__node:={node_name}"]
        for src, dst in (remaps or {}).items():
            cmd += ["-r", f"{src}:={dst}"]
        cmd += extra_args or []
        self.log_path = self.tmp / "output.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})}, start_new_session=True)
        self.cmd = cmd

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_for_output(self, text: str, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return True
            if not self.alive():
                return text in self.output()
            time.sleep(0.1)
        return False

    def stop(self, timeout: float = 10.0) -> int:
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode


def best_effort(depth: int):
    """A best-effort QoS of `depth`: hears reliable and best-effort publishers alike."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.BEST_EFFORT)


def not_builtin(msg) -> bool:
    """A joint_commands message that is not sim_robot_node's own (tagged) built-in controller's."""
    return not (msg.layout.dim and msg.layout.dim[0].label == "sim_robot_builtin")


class Probe:
    """An rclpy node in the test process, spinning on a background thread."""

    def __init__(self, name: str = "hma_test_probe"):
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor

        self.rclpy = rclpy
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._stop = False
        self._lock = threading.Lock()
        self.received: dict[str, list] = {}
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop and self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # context shut down under us
                break

    def subscribe(self, msg_type, topic: str, qos=None) -> list:
        from rclpy.qos import qos_profile_sensor_data

        box: list = []
        self.received[topic] = box

        def cb(msg):
            with self._lock:
                box.append((time.monotonic(), msg))

        self.node.create_subscription(msg_type, topic, cb, qos or qos_profile_sensor_data)
        return box

    def publisher(self, msg_type, topic: str, qos=None):
        from rclpy.qos import qos_profile_sensor_data

        return self.node.create_publisher(msg_type, topic, qos or qos_profile_sensor_data)

    def wait_for(self, topic: str, count: int = 1, timeout: float = 20.0,
                 predicate: Callable | None = None) -> list:
        """Block until `count` messages (passing `predicate`) arrived on `topic`; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                msgs = [m for _, m in self.received[topic] if predicate is None or predicate(m)]
            if len(msgs) >= count:
                return msgs
            time.sleep(0.05)
        raise TimeoutError(f"{topic}: got {len(msgs)} of {count} messages within {timeout} s")

    def set_bool(self, node: str, name: str, value: bool, timeout: float = 60.0):
        """Set a bool parameter through `node`'s parameter service (as `ros2 param set` does);
        returns the SetParametersResult (successful, reason)."""
        from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
        from rcl_interfaces.srv import SetParameters

        cli = self.node.create_client(SetParameters, f"{node}/set_parameters")
        assert cli.wait_for_service(timeout_sec=timeout), f"{node}/set_parameters not available"
        fut = cli.call_async(SetParameters.Request(parameters=[Parameter(
            name=name, value=ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=value))]))
        deadline = time.monotonic() + 10
        while not fut.done() and time.monotonic() < deadline:
            time.sleep(0.02)
        return fut.result().results[0]

    def close(self) -> None:
        self._stop = True
        self._thread.join(2.0)
        self.executor.shutdown()
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)
