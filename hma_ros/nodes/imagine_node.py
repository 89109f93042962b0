"""imagine_node (hma_imagine): imagines the next K camera frames at every completed 2 Hz step.

Inputs (relative names, remappable): image_raw (or image_raw/compressed with use_compressed),
joint_states, the embodiment's command topic, imagine_actions (Float64MultiArray [K, stride,
action_dim] in the embodiment's units, used while fresh: 1 s), planned_commands
(trajectory_msgs/JointTrajectory: a planner's timed commands, one action_dim vector per point,
resampled onto the imagined steps from the newest frame's instant by zero-order hold; used while
fresh, after imagine_actions).
A lifecycle node (nodes/pipeline.py): configure loads the model, activate starts imagining,
deactivate stops (nothing published), cleanup frees; `autostart` (default) does the first two.
Outputs: imagined/image (rgb8 filmstrip: the newest real frame then K imagined ones, stamped
with that frame's time and the camera's frame_id), imagined/frames (each imagined frame
stamped at its future time), /diagnostics.
Future actions when neither is fresh: `future_actions` = hold (repeat the last chunk) | zero |
policy (the model's own action head).
"""

from __future__ import annotations

import time

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from sensor_msgs.msg import Image
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from hma_ros.data.chunker import Step, plan_chunks
from hma_ros.nodes.common import reliable_qos, rgb_to_image_msg, run_node, sensor_qos, stamp_to_sec
from hma_ros.nodes.pipeline import StepPipelineNode

FUTURE_MODES = ("hold", "zero", "policy")


class ImagineNode(StepPipelineNode):
    def __init__(self):
        self._plan: tuple[float, np.ndarray] | None = None
        self._trajectory: tuple[float, np.ndarray, np.ndarray] | None = None  # (received, times, commands)
        self.future_source = "none"
        super().__init__("hma_imagine")
        d = ParameterDescriptor
        self.declare_parameter("horizon", 8, d(description="imagined frames per step (K)"))
        self.declare_parameter("future_actions", "hold", d(description="hold | zero | policy"))
        self.declare_parameter("plan_timeout", 1.0, d(description="s an imagine_actions plan stays fresh"))
        self.declare_parameter("display_scale", 2, d(description="integer upscale of the filmstrip for RViz"))
        for name in ("horizon", "future_actions", "display_scale"):
            err = self.validate_parameter(name, self.get_parameter(name).value)
            if err:
                raise ValueError(err)
        self.published = 0

    def make_outputs(self) -> None:
        self.pub_strip = self.create_lifecycle_publisher(Image, "imagined/image", reliable_qos(2))
        self.pub_frames = self.create_lifecycle_publisher(Image, "imagined/frames", reliable_qos(16))
        self._plan_sub = self.create_subscription(Float64MultiArray, "imagine_actions", self.on_plan, reliable_qos(2))
        self._traj_sub = self.create_subscription(JointTrajectory, "planned_commands", self.on_trajectory,
                                                  sensor_qos(2))

    def destroy_outputs(self) -> None:
        if getattr(self, "pub_strip", None) is not None:
            self.destroy_lifecycle_publisher(self.pub_strip)
            self.destroy_lifecycle_publisher(self.pub_frames)
            self.destroy_subscription(self._plan_sub)
            self.destroy_subscription(self._traj_sub)
            self.pub_strip = self.pub_frames = self._plan_sub = self._traj_sub = None
        self._plan = self._trajectory = None

    def validate_parameter(self, name: str, value) -> str:
        if name == "horizon" and not (isinstance(value, int) and 1 <= value <= 64):
            return "horizon must be an integer in 1..64"
        if name == "future_actions" and value not in FUTURE_MODES:
            return f"future_actions must be one of {FUTURE_MODES}"
        if name == "display_scale" and not (isinstance(value, int) and 1 <= value <= 8):
            return "display_scale must be an integer in 1..8"
        return super().validate_parameter(name, value)

    def on_plan(self, msg: Float64MultiArray) -> None:
        if self.wm is None:
            return
        a = np.asarray(msg.data, float)
        per = self.wm.stride * self.wm.action_dim
        if a.size == 0 or a.size % per or not np.all(np.isfinite(a)):
            self.problem("bad_commands", f"imagine_actions: expected K x {self.wm.stride} x {self.wm.action_dim} "
                         f"finite values (layout [K, stride, action_dim]), got {a.size}. Plan ignored.")
            return
        self._plan = (time.monotonic(), a.reshape(-1, self.wm.stride, self.wm.action_dim))

    def on_trajectory(self, msg: JointTrajectory) -> None:
        if self.wm is None:
            return
        t0 = stamp_to_sec(msg.header.stamp)
        times = np.array([t0 + p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
        values = [np.asarray(p.positions, float) for p in msg.points]
        if not values or any(v.shape != (self.wm.action_dim,) or not np.all(np.isfinite(v)) for v in values) \
                or np.any(np.diff(times) < 0):
            self.problem("bad_commands", f"planned_commands: expected points of {self.wm.action_dim} finite "
                         f"commands ({self.emb.name}) in time order, got {len(values)} points. Plan ignored.")
            return
        self._trajectory = (time.monotonic(), times, np.stack(values))

    def futures(self, K: int, last_chunk: np.ndarray, start: float) -> np.ndarray | None:
        """The K chunks to imagine from the frame at `start`: a fresh imagine_actions plan, else a
        fresh planned_commands trajectory resampled from `start`, else `future_actions`."""
        timeout = float(self.get_parameter("plan_timeout").value)
        plan, traj = self._plan, self._trajectory
        if plan is not None and time.monotonic() - plan[0] <= timeout:
            self.future_source = "imagine_actions"
            p = plan[1]
            return np.concatenate([p, np.repeat(p[-1:], max(0, K - len(p)), 0)])[:K]
        if traj is not None and time.monotonic() - traj[0] <= timeout:
            self.future_source = "planned_commands"
            return plan_chunks(traj[1], traj[2], start, K, self.wm.stride)
        mode = self.future_source = self.get_parameter("future_actions").value
        if mode == "policy":
            return None
        if mode == "zero":
            return np.zeros((K, self.wm.stride, self.wm.action_dim))
        return np.repeat(last_chunk[None], K, 0)

    def process(self, step: Step) -> bool:
        wm = self.wm
        if not self.observe_step(step):
            return False
        chunk_ok = self.prev_chunk is not None
        K = int(self.get_parameter("horizon").value)
        base_t, base_frame, start = step.t, step.frame, None
        latest = self.latest_frame
        if chunk_ok and latest is not None and latest[0] > step.t + 0.25:
            # the newest camera frame (step k+1's) is the starting point; chunk k led into it
            base_t, base_frame = latest
            start = (base_frame, self.prev_chunk)
        last = self.prev_chunk if self.prev_chunk is not None else np.zeros((wm.stride, wm.action_dim))
        frames = wm.imagine(self.futures(K, last, base_t), horizon=K, start=start)
        scale = int(self.get_parameter("display_scale").value)
        strip = np.concatenate([base_frame, *frames], axis=1)
        if scale > 1:
            strip = strip.repeat(scale, 0).repeat(scale, 1)
        fid = self.camera_frame_id
        self.pub_strip.publish(rgb_to_image_msg(strip, base_t, fid))
        for i, f in enumerate(frames):
            self.pub_frames.publish(rgb_to_image_msg(f, base_t + 0.5 * (i + 1), fid))
        self.published += 1
        return True

    def extra_diagnostics(self) -> dict[str, str]:
        return {"published_filmstrips": str(self.published),
                "horizon": str(self.get_parameter("horizon").value),
                "future_actions": str(self.get_parameter("future_actions").value),
                "future_source": self.future_source}


def main() -> int:
    return run_node(ImagineNode)


if __name__ == "__main__":
    raise SystemExit(main())
