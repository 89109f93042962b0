"""Shared rclpy plumbing for hma_ros nodes: QoS, message <-> numpy, parameters, entry points.

Only `hma_ros/nodes/` imports rclpy. Image decoding itself lives in `hma_ros.data.images`
(one implementation for live nodes and bag conversion); this module only unpacks messages.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from hma_ros import paths
from hma_ros.data.images import compressed_to_rgb, image_to_rgb, rgb_to_image_fields


def sensor_qos(depth: int = 2) -> QoSProfile:
    """Best effort, keep-last `depth`: a late frame is worth less than a fresh one."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.BEST_EFFORT)


def reliable_qos(depth: int = 10, latched: bool = False) -> QoSProfile:
    """Reliable, keep-last `depth`; `latched` (transient local): a subscriber that asks for it
    and joins late still gets the last `depth` messages (a volatile subscriber matches too, and
    gets only what comes after it joined)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


def stamp_to_sec(stamp) -> float:
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def sec_to_stamp(t: float, msg_stamp) -> None:
    sec = int(np.floor(t))
    msg_stamp.sec = sec
    msg_stamp.nanosec = min(999_999_999, int(round((t - sec) * 1e9)))


def image_msg_to_rgb(msg: Image | CompressedImage) -> np.ndarray:
    """sensor_msgs Image/CompressedImage -> (H, W, 3) uint8 RGB; raises ImageError."""
    if isinstance(msg, CompressedImage):
        return compressed_to_rgb(msg.format, msg.data)
    return image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.data, msg.is_bigendian)


def rgb_to_image_msg(rgb: np.ndarray, stamp_sec: float, frame_id: str) -> Image:
    msg = Image()
    f = rgb_to_image_fields(rgb)
    msg.encoding, msg.height, msg.width, msg.step = f["encoding"], f["height"], f["width"], f["step"]
    msg.is_bigendian = f["is_bigendian"]
    msg.data = f["data"]
    sec_to_stamp(stamp_sec, msg.header.stamp)
    msg.header.frame_id = frame_id
    return msg


def declare_model_placement(node: Node) -> None:
    """The parameters that say where and how a node's WorldModel runs: device, precision, graphs, compile."""
    from rcl_interfaces.msg import ParameterDescriptor as d

    node.declare_parameter("device", "cpu", d(description="cpu | cuda[:N]: where the model runs"))
    node.declare_parameter("precision", "fp32", d(description="fp32 | bf16 | fp16: autocast for the model calls "
                                                              "(bf16/fp16 pay on cuda)"))
    node.declare_parameter("graphs", False, d(description="fixed-shape KV cache whose passes replay as CUDA graphs "
                                                          "on cuda (the same frames, ~4x faster at batch 1)"))
    node.declare_parameter("compile", False, d(description="with graphs on cuda: each block of a pass through "
                                                           "torch.compile (compiled at the first steps, ~1 min; "
                                                           "HMA-Base +16%, the shipped size +28% on an H100)"))


def model_placement(node: Node) -> dict:
    """WorldModel keyword arguments from declare_model_placement's parameters."""
    return {"device": str(node.get_parameter("device").value),
            "precision": str(node.get_parameter("precision").value),
            "graphs": bool(node.get_parameter("graphs").value),
            "compile": bool(node.get_parameter("compile").value)}


def prepare_model(node: Node, wm, horizon: int = 0, act: bool = False) -> None:
    """After loading: compile / capture the model's passes now (WorldModel.warm_up: `horizon`
    imagined frames and / or act() after each warm-up step, as the node will ask) when the
    placement does that on a pass shape's first use (compile, or graphs on cuda) -- at configure,
    not in the first steps, which would be dropped while it runs; or, for the fp32 default on a
    CPU with bf16 units, say which parameters make it faster."""
    from hma_ros.runtime.device import cpu_has_bf16

    if wm.block_step is None and not (wm.graphs and wm.device.startswith("cuda")):
        if wm.device == "cpu" and wm.precision == "fp32" and cpu_has_bf16():
            node.get_logger().info("this CPU multiplies bf16 in hardware: precision:=bf16 graphs:=true "
                                   "compile:=true runs the model ~1.75x faster (compiled at configure, ~1 min)")
        return
    node.get_logger().info("compiling / capturing the model's passes before the first step (compile: about a "
                           "minute on a CPU)")
    node.get_logger().info(f"ready after {wm.warm_up(horizon, act):.1f} s of warm-up")


def now_sec(node: Node) -> float:
    """The node's clock (ROS time: honours use_sim_time) in seconds."""
    return node.get_clock().now().nanoseconds * 1e-9


def ensure_dds_profile() -> None:
    """Point Fast DDS at the shipped SHM profile unless the user chose one (large images)."""
    if "FASTDDS_DEFAULT_PROFILES_FILE" not in os.environ:
        try:
            profile = paths.config_dir() / "fastdds_shm.xml"
        except FileNotFoundError:
            return
        if profile.is_file():
            os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile)


EXECUTORS = ("events", "single", "multi")


def make_executor(kind: str):
    """The executor a node process spins: "events" (rclpy's EventsExecutor: the wait set and
    the dispatch in C++, so a 30 Hz VGA camera plus 200 Hz joint states take little of the GIL
    the inference thread needs; under that load imagine_node's step-to-publish p99 fell from
    284-437 ms to 234-319 ms, five interleaved pairs of benchmarks/imagine_node_bench.py runs on
    2 CPU cores, docs/architecture.md),
    "single" (rclpy's SingleThreadedExecutor, what rclpy.spin uses), "multi" (two threads).
    An rclpy without the events executor gets the single-threaded one."""
    if kind not in EXECUTORS:
        raise ValueError(f"HMA_EXECUTOR must be one of {', '.join(EXECUTORS)}, got {kind!r}")
    if kind == "events":
        try:
            from rclpy.experimental import EventsExecutor
        except ImportError:
            kind = "single"
        else:
            return EventsExecutor()
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor

    return MultiThreadedExecutor(num_threads=2) if kind == "multi" else SingleThreadedExecutor()


def run_node(factory: Callable[[], Node]) -> int:
    """Standard entry point: init, spin until Ctrl-C / SIGTERM, shut down cleanly. The executor:
    `make_executor` of the HMA_EXECUTOR environment variable (default "events")."""
    ensure_dds_profile()
    rclpy.init(args=sys.argv)
    node = executor = None
    try:
        try:
            executor = make_executor(os.environ.get("HMA_EXECUTOR", "events"))
            node = factory()
        except (ValueError, OSError) as e:  # bad parameters or files: say what, not a traceback
            print(f"[ERROR] {getattr(factory, '__name__', 'node')}: {e}", file=sys.stderr, flush=True)
            return 2
        executor.add_node(node)
        while rclpy.ok():  # spin_once in a loop: the events executor's spin() ignores SIGINT / SIGTERM
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close is not None:
                close()
            executor.remove_node(node)
            node.destroy_node()
        if executor is not None:
            executor.shutdown()
        if rclpy.ok():
            rclpy.try_shutdown()
    return 0
