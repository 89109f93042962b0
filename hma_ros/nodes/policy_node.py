"""policy_node (hma_policy): HMA's action head as a policy.

Same input pipeline as imagine_node. At every completed 2 Hz step: WorldModel.observe, then
act() -> the next action chunk (stride x action_dim, embodiment units), clamped to the
embodiment's limits. Publishes it as trajectory_msgs/JointTrajectory on joint_trajectory
(joint names from the embodiment, points on the chunk's time grid) and, when `enabled` and
`stream_commands`, streams it one native action per message on joint_commands
(Float64MultiArray) at the native rate -- the topic sim_robot_node executes.

Safety: `enabled` defaults to false (diagnostics and trajectories for inspection only, no
commands); a watchdog stops streaming when no step completed for `stale_timeout` seconds;
non-finite chunks are never published.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from builtin_interfaces.msg import Duration
from rcl_interfaces.msg import ParameterDescriptor
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from hma_ros.data.chunker import Step
from hma_ros.nodes.common import reliable_qos, run_node, sec_to_stamp
from hma_ros.nodes.pipeline import StepPipelineNode


class PolicyNode(StepPipelineNode):
    def __init__(self):
        self._queue: list[np.ndarray] = []
        self._qlock = threading.Lock()
        self._last_step_wall = 0.0
        super().__init__("hma_policy")
        d = ParameterDescriptor
        self.declare_parameter("enabled", False, d(description="stream commands (false: diagnostics/trajectory only)"))
        self.declare_parameter("stream_commands", True, d(description="stream joint_commands when enabled"))
        self.declare_parameter("stale_timeout", 1.5, d(description="s without a completed step before streaming stops"))
        self.pub_traj = self.create_publisher(JointTrajectory, "joint_trajectory", reliable_qos(5))
        self.pub_cmd = self.create_publisher(Float64MultiArray, "joint_commands", reliable_qos(20))
        self.chunks = 0
        self.commands_sent = 0
        self.clamped = 0
        self.rejected = 0
        if self.emb is not None:
            self.create_timer(1.0 / self.emb.action_hz, self.stream)

    def validate_parameter(self, name: str, value) -> str:
        if name == "enabled" and not isinstance(value, bool):
            return "enabled must be true or false"
        if name == "enabled" and value:
            self.get_logger().warn("policy ENABLED: streaming HMA actions on joint_commands")
        if name == "enabled" and not value:
            with self._qlock:
                self._queue.clear()
        if name == "stale_timeout" and not (isinstance(value, (int, float)) and value > 0):
            return "stale_timeout must be > 0"
        return super().validate_parameter(name, value)

    def process(self, step: Step) -> bool:
        if not self.observe_step(step):
            return False
        chunk = self.wm.act()
        if not np.all(np.isfinite(chunk)):
            self.rejected += 1
            self.problem("invalid_steps", "policy head produced NaN/inf: chunk discarded, nothing published")
            return False
        lo, hi = self.emb.action_low, self.emb.action_high
        if lo is not None and hi is not None:
            clamped = np.clip(chunk, lo, hi)
            if not np.allclose(clamped, chunk):
                self.clamped += 1
            chunk = clamped
        self.publish_trajectory(step, chunk)
        self.chunks += 1
        self._last_step_wall = time.monotonic()
        if self.get_parameter("enabled").value and self.get_parameter("stream_commands").value:
            with self._qlock:
                self._queue = list(chunk)  # the newest chunk replaces what is left of the old one
        return True

    def publish_trajectory(self, step: Step, chunk: np.ndarray) -> None:
        msg = JointTrajectory()
        sec_to_stamp(step.t + 0.5, msg.header.stamp)  # the chunk starts at the next tick
        msg.header.frame_id = self.camera_frame_id
        names = list(self.emb.joint_names) if len(self.emb.joint_names) == chunk.shape[1] else \
            [f"action_{i}" for i in range(chunk.shape[1])]
        msg.joint_names = names
        dt = 0.5 / len(chunk)
        for i, a in enumerate(chunk):
            t = i * dt
            msg.points.append(JointTrajectoryPoint(positions=[float(v) for v in a],
                                                   time_from_start=Duration(sec=int(t), nanosec=int((t % 1) * 1e9))))
        self.pub_traj.publish(msg)

    def stream(self) -> None:
        if not self.get_parameter("enabled").value or not self.get_parameter("stream_commands").value:
            return
        if time.monotonic() - self._last_step_wall > float(self.get_parameter("stale_timeout").value):
            with self._qlock:
                if self._queue:
                    self.problem("invalid_steps", "watchdog: inputs are stale (no completed step); streaming stopped")
                self._queue.clear()
            return
        with self._qlock:
            if not self._queue:
                return
            a = self._queue.pop(0)
        self.pub_cmd.publish(Float64MultiArray(data=[float(v) for v in a]))
        self.commands_sent += 1

    def extra_diagnostics(self) -> dict[str, str]:
        return {"enabled": str(self.get_parameter("enabled").value), "chunks": str(self.chunks),
                "commands_sent": str(self.commands_sent), "clamped_chunks": str(self.clamped),
                "rejected_chunks": str(self.rejected)}


def main() -> int:
    return run_node(PolicyNode)


if __name__ == "__main__":
    raise SystemExit(main())
