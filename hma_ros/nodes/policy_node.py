"""policy_node (hma_policy): HMA's action head as a policy.

Same input pipeline as imagine_node (a robot at rest yields steps too: the embodiment's
`at_rest` hold action). At every completed 2 Hz step: WorldModel.observe, then act() -> the
next action chunk (stride x action_dim, embodiment units), clamped to the embodiment's limits.
Always published on `preview/joint_trajectory` (for RViz and inspection: nothing a controller
should consume). When `enabled`: published as trajectory_msgs/JointTrajectory on
joint_trajectory (joint names from the embodiment, points on the chunk's time grid) and, with
`stream_commands`, streamed one native action per message on joint_commands
(Float64MultiArray) at the native rate -- the topic sim_robot_node executes. The streamed
commands come back through the command subscription, so they become the action history.

A lifecycle node (nodes/pipeline.py; `autostart` configures and activates it): deactivating
it disables the policy (`enabled` goes false) and silences every output; enabling an inactive
node is refused.

Safety (the gate):
- `enabled` defaults to false; while false nothing is published on joint_trajectory or
  joint_commands;
- enabling is refused (reason in the parameter-set result and the log) without a loaded model,
  or for an embodiment without action limits (action.low/high) unless `allow_unlimited` is
  true; commands are always clamped to the limits there are;
- every enable/disable starts a new gate epoch: a chunk computed before it is never published
  or streamed after it;
- a watchdog stops streaming when no step completed for `stale_timeout` seconds;
- non-finite chunks are never published.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from builtin_interfaces.msg import Duration
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.parameter import Parameter
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from hma_ros.data.chunker import Step
from hma_ros.nodes.common import reliable_qos, run_node, sec_to_stamp
from hma_ros.nodes.pipeline import StepPipelineNode


class PolicyNode(StepPipelineNode):
    WARM_UP_ACT = True

    def __init__(self):
        self._queue: list[np.ndarray] = []
        self._qlock = threading.Lock()
        self._epoch = 0  # gate epoch: bumped on every enable/disable
        self._enabled = False  # the gate, as last validated (read without the parameter API)
        self._last_step_wall = 0.0
        self._starting = True
        super().__init__("hma_policy")
        d = ParameterDescriptor
        self.declare_parameter("allow_unlimited", False, d(description="accept enabling an embodiment without action "
                                                                       "limits (commands are then not clamped)"))
        self.declare_parameter("enabled", False, d(description="publish joint_trajectory and stream joint_commands "
                                                               "(false: preview/joint_trajectory and diagnostics only)"))
        self.declare_parameter("stream_commands", True, d(description="stream joint_commands when enabled"))
        self.declare_parameter("stale_timeout", 1.5, d(description="s without a completed step before streaming stops"))
        self.chunks = 0
        self.commands_sent = 0
        self.trajectories_sent = 0
        self.clamped = 0
        self.rejected = 0
        self.refusals = 0
        self._starting = False
        self.pub_traj = self.pub_preview = self.pub_cmd = self._stream_timer = None

    def make_outputs(self) -> None:
        self.pub_traj = self.create_lifecycle_publisher(JointTrajectory, "joint_trajectory", reliable_qos(5))
        self.pub_preview = self.create_lifecycle_publisher(JointTrajectory, "preview/joint_trajectory", reliable_qos(5))
        self.pub_cmd = self.create_lifecycle_publisher(Float64MultiArray, "joint_commands", reliable_qos(20))
        self._stream_timer = self.create_timer(1.0 / self.emb.action_hz, self.stream)

    def destroy_outputs(self) -> None:
        if self.pub_traj is not None:
            self.destroy_timer(self._stream_timer)
            for pub in (self.pub_traj, self.pub_preview, self.pub_cmd):
                self.destroy_lifecycle_publisher(pub)
            self.pub_traj = self.pub_preview = self.pub_cmd = self._stream_timer = None

    def on_activate(self, state):
        result = super().on_activate(state)
        if self.get_parameter("enabled").value:  # enabled from the parameter file / launch argument
            refusal = self.enable_refusal(bool(self.get_parameter("allow_unlimited").value))
            if refusal:
                self.get_logger().error(f"enabled:=true refused at activation: {refusal}. The policy stays disabled.")
                self.refusals += 1
                self.set_parameters([Parameter("enabled", value=False)])
            else:
                with self._qlock:
                    self._epoch += 1
                    self._enabled = True
                self._announce_enabled()
        return result

    def on_deactivate(self, state):
        # a deactivated policy is disabled: activating again does not resume commanding by itself
        if self.get_parameter("enabled").value:
            self.set_parameters([Parameter("enabled", value=False)])
        with self._qlock:
            self._epoch += 1
            self._queue.clear()
            self._enabled = False
        return super().on_deactivate(state)

    def enable_refusal(self, allow_unlimited: bool) -> str:
        """Why enabling is refused now ('' when it may be enabled)."""
        if self.emb is None or self.wm is None:
            return f"no model is loaded ({self.model_error or 'see the log'})"
        if self.lifecycle_state != "active":
            return f"the node is {self.lifecycle_state} (lifecycle): activate it first"
        if not self.emb.has_limits and not allow_unlimited:
            return (f"embodiment {self.emb.name} has no action limits (action.low/high in {self.emb.source_file}), "
                    "so commands cannot be clamped: add the limits, or set allow_unlimited true to accept "
                    "unclamped commands")
        return ""

    def _announce_enabled(self) -> None:
        lim = "clamped to the embodiment's limits" if self.emb.has_limits else "UNCLAMPED (allow_unlimited)"
        self.get_logger().warning(f"policy ENABLED: publishing joint_trajectory and streaming joint_commands, {lim}")

    def validate_parameter(self, name: str, value) -> str:
        if name == "enabled":
            if not isinstance(value, bool):
                return "enabled must be true or false"
            if value and not self._starting:
                refusal = self.enable_refusal(bool(self.get_parameter("allow_unlimited").value))
                if refusal:
                    self.refusals += 1
                    self.get_logger().error(f"enabling refused: {refusal}")
                    return f"enabling refused: {refusal}"
            with self._qlock:  # a new gate epoch: nothing computed before this change goes out
                self._epoch += 1
                self._queue.clear()
                self._enabled = value
            if value and not self._starting:
                self._announce_enabled()
            elif not value and not self._starting:
                self.get_logger().warning("policy disabled: joint_trajectory and joint_commands are silent")
        if name == "allow_unlimited" and not isinstance(value, bool):
            return "allow_unlimited must be true or false"
        if name == "stale_timeout" and not (isinstance(value, (int, float)) and value > 0):
            return "stale_timeout must be > 0"
        return super().validate_parameter(name, value)

    def process(self, step: Step) -> bool:
        stream = bool(self.get_parameter("stream_commands").value)
        with self._qlock:
            epoch, enabled = self._epoch, self._enabled
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
        traj = self.trajectory(step, chunk)
        self.pub_preview.publish(traj)
        self.chunks += 1
        self._last_step_wall = time.monotonic()
        with self._qlock:  # the gate: only a chunk computed inside the current enabled epoch goes out
            if enabled and epoch == self._epoch and self._enabled:
                self.pub_traj.publish(traj)
                self.trajectories_sent += 1
                if stream:
                    self._queue = list(chunk)  # the newest chunk replaces what is left of the old one
        return True

    def trajectory(self, step: Step, chunk: np.ndarray) -> JointTrajectory:
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
        return msg

    def stream(self) -> None:
        if not self._enabled or self.lifecycle_state != "active" or not self.get_parameter("stream_commands").value:
            return
        if time.monotonic() - self._last_step_wall > float(self.get_parameter("stale_timeout").value):
            with self._qlock:
                if self._queue:
                    self.problem("invalid_steps", "watchdog: inputs are stale (no completed step); streaming stopped")
                self._queue.clear()
            return
        with self._qlock:
            if not self._queue or not self._enabled:
                return
            a = self._queue.pop(0)
            self.pub_cmd.publish(Float64MultiArray(data=[float(v) for v in a]))
        self.commands_sent += 1

    def extra_diagnostics(self) -> dict[str, str]:
        return {"enabled": str(self.get_parameter("enabled").value), "chunks": str(self.chunks),
                "trajectories_sent": str(self.trajectories_sent), "commands_sent": str(self.commands_sent),
                "clamped_chunks": str(self.clamped), "rejected_chunks": str(self.rejected),
                "enable_refusals": str(self.refusals),
                "action_limits": "yes" if self.emb is not None and self.emb.has_limits else "NONE"}


def main() -> int:
    return run_node(PolicyNode)


if __name__ == "__main__":
    raise SystemExit(main())
