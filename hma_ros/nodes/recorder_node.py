"""recorder_node: records camera frames (and their stamps) for a fixed time, then writes a GIF
and a JSON summary (frame count, rate from header stamps, joint-state rate) and exits. With
`imagined_topic`, it also records imagine_node's filmstrips and its diagnostics, and scores
each imagined frame against the camera frame that really arrived at that time.

Used by `make demo` and by tests to observe a running graph from the outside.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState

from hma_ros.data.images import ImageError, ImageSpec
from hma_ros.nodes.common import image_msg_to_rgb, reliable_qos, run_node, sensor_qos, stamp_to_sec
from hma_ros.runtime.compare import match_imagined


def rate_from_stamps(stamps: list[float]) -> float:
    """Messages per second from header stamps (0 when fewer than two)."""
    if len(stamps) < 2 or stamps[-1] <= stamps[0]:
        return 0.0
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


class RecorderNode(Node):
    def __init__(self):
        super().__init__("hma_recorder")
        self.declare_parameter("duration", 10.0)
        self.declare_parameter("out_dir", "out")
        self.declare_parameter("gif_name", "recording.gif")
        self.declare_parameter("max_gif_frames", 60)
        self.declare_parameter("imagined_topic", "", ParameterDescriptor(
            description="filmstrip topic to compare with the camera (empty: camera only)"))
        self.declare_parameter("horizon", 8)
        self.declare_parameter("track_agent", False, ParameterDescriptor(
            description="PushT: also score where imagined frames draw the agent (evaluation/tracking.py)"))
        self.declare_parameter("frame_size", 64, ParameterDescriptor(description="camera frames are resized to this for comparison"))
        self.strips: list[tuple[float, np.ndarray]] = []
        self.camera_small: list[tuple[float, np.ndarray]] = []
        self.diagnostics: dict[str, str] = {}
        self.duration = float(self.get_parameter("duration").value)
        self.out_dir = Path(self.get_parameter("out_dir").value)
        self.frames: list[np.ndarray] = []
        self.frame_stamps: list[float] = []
        self.joint_stamps: list[float] = []
        self.frame_ids: set[str] = set()
        self.bad_images = 0
        self.create_subscription(Image, "image_raw", self.on_image, sensor_qos(5))
        self.create_subscription(JointState, "joint_states", self.on_joints, sensor_qos(50))
        topic = str(self.get_parameter("imagined_topic").value)
        if topic:
            self.create_subscription(Image, topic, self.on_strip, reliable_qos(5))
            self.create_subscription(DiagnosticArray, "/diagnostics", self.on_diag, reliable_qos(10))
        size = int(self.get_parameter("frame_size").value)
        self.spec = ImageSpec(size=(size, size))
        self.t0 = time.monotonic()
        self.create_timer(0.2, self.check_done)
        self.done = False

    def on_image(self, msg: Image) -> None:
        try:
            rgb = image_msg_to_rgb(msg)
        except ImageError as e:
            self.bad_images += 1
            self.get_logger().warning(f"image_raw: {e}", throttle_duration_sec=2.0)
            return
        self.frame_stamps.append(stamp_to_sec(msg.header.stamp))
        self.frame_ids.add(msg.header.frame_id)
        if self.get_parameter("imagined_topic").value:
            self.camera_small.append((self.frame_stamps[-1], self.spec.prepare(rgb)))
        max_frames = int(self.get_parameter("max_gif_frames").value)
        if len(self.frames) < max_frames:
            self.frames.append(rgb)

    def on_strip(self, msg: Image) -> None:
        try:
            self.strips.append((stamp_to_sec(msg.header.stamp), image_msg_to_rgb(msg)))
        except ImageError as e:
            self.get_logger().warning(f"filmstrip: {e}")

    def on_diag(self, msg: DiagnosticArray) -> None:
        for st in msg.status:
            if "hma_imagine" in st.name:
                self.diagnostics = {kv.key: kv.value for kv in st.values}

    def on_joints(self, msg: JointState) -> None:
        self.joint_stamps.append(stamp_to_sec(msg.header.stamp))

    def summary(self) -> dict:
        return {
            "frames": len(self.frame_stamps),
            "camera_hz": round(rate_from_stamps(self.frame_stamps), 3),
            "joint_states": len(self.joint_stamps),
            "joint_hz": round(rate_from_stamps(self.joint_stamps), 3),
            "frame_ids": sorted(self.frame_ids),
            "bad_images": self.bad_images,
            "wall_seconds": round(time.monotonic() - self.t0, 2),
        }

    def check_done(self) -> None:
        if self.done or time.monotonic() - self.t0 < self.duration:
            return
        self.done = True
        self.out_dir.mkdir(parents=True, exist_ok=True)
        summary = self.summary()
        from hma_ros.data.images import write_video

        gif = self.out_dir / str(self.get_parameter("gif_name").value)
        if self.strips:
            K = int(self.get_parameter("horizon").value)
            cmp = match_imagined(self.strips, self.camera_small, K + 1,
                                 track_agent=bool(self.get_parameter("track_agent").value))
            summary["filmstrips"] = len(self.strips)
            summary["strip_hz"] = round(rate_from_stamps([t for t, _ in self.strips]), 3)
            summary["imagined_vs_actual"] = cmp["horizons"]
            summary["diagnostics"] = self.diagnostics
            if cmp["pairs"]:
                # what really happened next | what the model imagined (1 step = 0.5 s ahead), 4x
                tiles = [np.concatenate([a, np.full((a.shape[0], 2, 3), 255, np.uint8), b], 1)
                         for a, b in cmp["pairs"][-40:]]
                tiles = [t.repeat(4, 0).repeat(4, 1) for t in tiles]
                write_video(tiles, gif, fps=2.0)
                summary["gif"] = str(gif)
        elif self.frames:
            write_video(self.frames, gif, fps=10.0)
            summary["gif"] = str(gif)
        (self.out_dir / "recording.json").write_text(json.dumps(summary, indent=2))
        self.get_logger().info("recording done: " + json.dumps(summary))
        raise SystemExit(0)


def main() -> int:
    try:
        return run_node(RecorderNode)
    except SystemExit as e:
        if rclpy.ok():
            rclpy.try_shutdown()
        return int(e.code or 0)


if __name__ == "__main__":
    raise SystemExit(main())
