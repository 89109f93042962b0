"""sim_robot_node: a stand-in robot on a real simulator (PushT by default).

Publishes `image_raw` (sensor_msgs/Image, rgb8) at `camera_hz` and `joint_states` at the
simulator's native command rate, both stamped with the node clock (honours use_sim_time) at the
simulated instant they describe. Takes commands on `joint_commands` (std_msgs/Float64MultiArray,
one native action of action_dim values); without a command in the last `command_timeout` seconds
it runs its built-in purposeful controller. `~/reset` (std_srvs/Trigger) restarts the episode.

With `plan_seconds` > 0 the built-in controller (`policy: random`, the one that does not answer
the state) draws its commands that far ahead and, with every camera frame, publishes
`planned_commands` (trajectory_msgs/JointTrajectory, stamped at its first point: the commands of
the last second, then the one applied now and the planned ones, one point per native step) --
what a planner on a real robot would publish, so `imagine_node` can imagine the commands that
will really be sent (`make demo`).
"""

from __future__ import annotations

from collections import deque

import numpy as np
from builtin_interfaces.msg import Duration
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, MultiArrayDimension
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from hma_ros.data.sims import SIM_NAMES, Policy, make_sim
from hma_ros.nodes.common import now_sec, rgb_to_image_msg, run_node, sec_to_stamp, sensor_qos

BUILTIN_LABEL = "sim_robot_builtin"


class SimRobotNode(Node):
    def __init__(self):
        super().__init__("sim_robot")
        d = ParameterDescriptor
        self.declare_parameter("embodiment", "pusht", d(description=f"one of {SIM_NAMES}"))
        self.declare_parameter("camera_hz", 10.0, d(description="camera frame rate"))
        self.declare_parameter("image_size", 0, d(description="rendered size in px (0: simulator default)"))
        self.declare_parameter("seed", 0)
        self.declare_parameter("policy", "expert", d(description="built-in controller: expert|noisy|random, "
                                                                 "or hold (a robot at rest until commanded)"))
        self.declare_parameter("command_timeout", 1.0, d(description="s without joint_commands before the built-in controller resumes"))
        self.declare_parameter("frame_id", "sim_camera")
        self.declare_parameter("plan_seconds", 0.0, d(description="with policy random: draw its commands this far "
                                                                  "ahead and publish them on planned_commands (0: off)"))
        self.declare_parameter("episode_seconds", 0.0, d(description="auto reset after this many seconds (0: never)"))

        name = self.get_parameter("embodiment").value
        size = int(self.get_parameter("image_size").value) or None
        self.sim = make_sim(name, size)
        self.info = self.sim.info
        self.camera_hz = float(self.get_parameter("camera_hz").value)
        if not 0 < self.camera_hz <= self.info.control_hz:
            raise ValueError(f"camera_hz must be in (0, {self.info.control_hz}] for {name}")
        self.frame_id = self.get_parameter("frame_id").value
        self.command_timeout = float(self.get_parameter("command_timeout").value)
        self.episode_seconds = float(self.get_parameter("episode_seconds").value)
        self.rng = np.random.default_rng(int(self.get_parameter("seed").value))
        kind = self.get_parameter("policy").value
        self.holding = kind == "hold"  # a robot at rest: no built-in controller, no command stream
        self.policy = None if self.holding else Policy(self.sim, kind, self.rng)
        plan_s = float(self.get_parameter("plan_seconds").value)
        if plan_s < 0 or (plan_s > 0 and kind != "random"):
            raise ValueError(f"plan_seconds {plan_s:g}: a plan needs plan_seconds >= 0 and the open-loop built-in "
                             f"policy (policy:=random); {kind!r} answers states it has not met yet")
        hz = self.info.control_hz
        # the built-in controller's next commands (the first is the one applied at the next tick)
        # and the last second of applied ones, as (simulated instant, command)
        self.plan = deque(self.policy() for _ in range(int(round(plan_s * hz)))) if plan_s > 0 else None
        self.applied: deque = deque(maxlen=max(1, int(round(hz))))
        self.pub_plan = self.create_publisher(JointTrajectory, "planned_commands", sensor_qos(2)) if plan_s else None

        self.pub_image = self.create_publisher(Image, "image_raw", sensor_qos())
        self.pub_joints = self.create_publisher(JointState, "joint_states", sensor_qos(10))
        # the built-in controller's commands go out on joint_commands too, as a robot's teleop or
        # controller would record them; tagged so this node does not take them as external
        self.declare_parameter("publish_builtin_commands", True)
        self.pub_builtin = self.create_publisher(Float64MultiArray, "joint_commands", sensor_qos(10))
        # best effort accepts both reliable and best-effort command publishers
        self.create_subscription(Float64MultiArray, "joint_commands", self.on_command, sensor_qos(10))
        self.create_service(Trigger, "~/reset", self.on_reset)
        self.last_command: np.ndarray | None = None
        self.last_command_time = -np.inf
        self.commands_received = 0
        self.bad_commands = 0
        self.episode = 0
        self._reset_episode()
        self.create_timer(1.0 / self.info.control_hz, self.tick)
        self.get_logger().info(
            f"simulated {name}: {self.info.action_dim}-D actions at {self.info.control_hz:g} Hz, "
            f"camera at {self.camera_hz:g} Hz, joints {list(self.info.joint_names)}"
        )

    def _reset_episode(self) -> None:
        self.sim.reset(int(self.rng.integers(2**31)))
        self.applied.clear()  # a new episode: its commands start now (the plan goes on)
        self.steps = 0
        self.t_start = now_sec(self)
        self.next_frame_index = 0

    def on_reset(self, _req, resp):
        self.episode += 1
        self._reset_episode()
        resp.success, resp.message = True, f"episode {self.episode} started"
        return resp

    def on_command(self, msg: Float64MultiArray) -> None:
        if msg.layout.dim and msg.layout.dim[0].label == BUILTIN_LABEL:
            return  # our own built-in controller's echo
        a = np.asarray(msg.data, float)
        if a.shape != (self.info.action_dim,) or not np.all(np.isfinite(a)):
            self.bad_commands += 1
            self.get_logger().warning(
                f"joint_commands: expected {self.info.action_dim} finite values for "
                f"{self.info.name}, got {a.size} ({a[:8]}); command ignored",
                throttle_duration_sec=2.0)
            return
        self.last_command = self.sim.clip(a)
        self.applied.clear()  # someone else drives now: the built-in controller's applied past ends here
        self.last_command_time = now_sec(self)
        self.commands_received += 1

    def tick(self) -> None:
        now = now_sec(self)
        if now <= 0.0:
            return  # use_sim_time and no /clock yet: wait for simulated time to start
        if self.t_start <= 0.0 or now < self.t_start:
            self.t_start, self.steps, self.next_frame_index = now, 0, 0  # first clock, or time reset
        if self.episode_seconds > 0 and now - self.t_start >= self.episode_seconds:
            self.episode += 1
            self._reset_episode()
        t = self.t_start + self.steps / self.info.control_hz  # simulated instant of this state
        frame_due = self.next_frame_index / self.camera_hz <= t - self.t_start + 1e-9
        if frame_due:
            self.pub_image.publish(rgb_to_image_msg(self.sim.render(), t, self.frame_id))
            self.next_frame_index += 1
        js = JointState()
        sec_to_stamp(t, js.header.stamp)
        js.name = list(self.info.joint_names)
        js.position = [float(v) for v in self.sim.joint_positions()]
        self.pub_joints.publish(js)
        if self.last_command is not None and now - self.last_command_time <= self.command_timeout:
            action = self.last_command
        elif self.holding:
            action = self.sim.rest_action()
        else:
            if self.plan is not None:  # planned ahead: apply the plan's first, draw one more at its end
                action = self.plan.popleft()
                self.plan.append(self.policy())
                self.applied.append((t, action))
                if frame_due:
                    self.publish_plan(t)
            else:
                action = self.policy()
            if self.get_parameter("publish_builtin_commands").value:
                cmd = Float64MultiArray(data=[float(v) for v in action])
                cmd.layout.dim = [MultiArrayDimension(label=BUILTIN_LABEL, size=len(action), stride=len(action))]
                self.pub_builtin.publish(cmd)
        self.sim.step(action)
        self.steps += 1

    def publish_plan(self, t: float) -> None:
        """planned_commands: the applied commands of the last second, then the plan, stamped at
        the first; point j's time_from_start is its instant minus the stamp."""
        hz = self.info.control_hz
        timed = list(self.applied) + [(t + (j + 1) / hz, a) for j, a in enumerate(self.plan)]
        msg = JointTrajectory()
        t0 = timed[0][0]
        sec_to_stamp(t0, msg.header.stamp)
        msg.header.frame_id = self.frame_id
        msg.joint_names = list(self.info.joint_names)
        for ti, a in timed:
            ns = int(round((ti - t0) * 1e9))
            msg.points.append(JointTrajectoryPoint(positions=[float(v) for v in a],
                                                   time_from_start=Duration(sec=ns // 10**9, nanosec=ns % 10**9)))
        self.pub_plan.publish(msg)

    def close(self) -> None:
        self.sim.close()


def main() -> int:
    return run_node(SimRobotNode)


if __name__ == "__main__":
    raise SystemExit(main())
