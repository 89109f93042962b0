"""policy_eval_node (hma_policy_eval): score a policy node's episodes in the learned simulator.

Runs `episodes` episodes against simulate_node (run it with `episode_steps` equal to this node's
and `next_episode_on_reset: true`): before each it waits `settle` seconds (so a policy's answer
to the last frame of the previous episode lands while the simulator ignores it), calls the
simulator's reset service (the first time only once a policy publishes on `action_topic`),
collects the episode's frames from sim/image (stamp 0.0 .. 0.5 x episode_steps), and scores
them with the PushT judge: max coverage over the episode, success (coverage > 0.95). An episode
in which no frame comes for `stall_timeout` seconds (a reset answer or a first frame lost while
DDS still matches the nodes, a policy that stopped answering) is started again, as one past
`episode_timeout` is. After the
last episode it writes `out` (JSON, the fields `hma policy-eval --rank` writes for the learned
simulator: learned_judge, learned_success with intervals, the raw episodes, wall-clock per
episode) and exits; launch/policy_eval.launch.py then ends.
Scoring lives in hma_ros/evaluation/ranking.py (`score_episode`, `learned_summary`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from hma_ros import paths
from hma_ros.data.images import ImageError
from hma_ros.nodes.common import image_msg_to_rgb, reliable_qos, run_node, stamp_to_sec


class PolicyEvalNode(Node):
    def __init__(self):
        super().__init__("hma_policy_eval")
        self.declare_parameter("judge", "pusht_judge")
        self.declare_parameter("episodes", 50)
        self.declare_parameter("episode_steps", 20)  # 2 Hz model steps: 20 = 10 s = 100 native steps
        self.declare_parameter("out", "policy_eval.json")
        self.declare_parameter("policy_name", "policy")
        self.declare_parameter("reset_service", "hma_simulate/reset")
        self.declare_parameter("action_topic", "sim/action")  # the policy's: waited for before the first reset
        self.declare_parameter("settle", 0.5)
        self.declare_parameter("episode_timeout", 120.0)
        self.declare_parameter("stall_timeout", 15.0)  # s without a frame in an episode: start it again
        from hma_ros.evaluation.pusht_judge import JudgeError, load_judge

        try:
            self.judge = load_judge(paths.checkpoint(str(self.get_parameter("judge").value)))
        except JudgeError as e:
            raise ValueError(str(e)) from None
        self.n = int(self.get_parameter("episodes").value)
        self.steps = int(self.get_parameter("episode_steps").value)
        if self.n < 1 or self.steps < 1:
            raise ValueError(f"episodes ({self.n}) and episode_steps ({self.steps}) must be >= 1")
        self.out = Path(str(self.get_parameter("out").value)).expanduser()
        self.settle = float(self.get_parameter("settle").value)
        self.timeout = float(self.get_parameter("episode_timeout").value)
        self.stall = float(self.get_parameter("stall_timeout").value)
        if self.timeout <= 0 or self.stall <= 0:
            raise ValueError(f"episode_timeout ({self.timeout:g}) and stall_timeout ({self.stall:g}) must be > 0 s")
        self.t_progress = 0.0  # when the episode last moved on (its reset, its newest frame)
        self.frames: list[np.ndarray] = []
        self.rows: list[dict] = []
        self.collecting = False
        self.t_start = 0.0
        self.finished = False
        self.cli = self.create_client(Trigger, str(self.get_parameter("reset_service").value))
        self.create_subscription(Image, "sim/image", self.on_image, reliable_qos(10))
        self._timer = None
        self.action_topic = str(self.get_parameter("action_topic").value)
        self._later(self.settle, self._reset)
        self.create_timer(1.0, self._watchdog)

    def _later(self, delay: float, fn) -> None:
        """Call fn once after `delay` seconds."""
        def once():
            self.destroy_timer(t)
            fn()
        t = self.create_timer(max(delay, 0.01), once)

    def _reset(self) -> None:
        if not self.cli.service_is_ready():
            self.get_logger().info(f"waiting for {self.cli.srv_name}", throttle_duration_sec=5.0)
            self._later(0.2, self._reset)
            return
        if not self.rows and self.count_publishers(self.action_topic) < 1:
            # a policy that starts after the first reset would miss the episode's first frame
            # (sim/image keeps it for late subscribers only when they ask for transient local)
            self.get_logger().info(f"waiting for a policy publishing on {self.action_topic}",
                                   throttle_duration_sec=5.0)
            self._later(0.2, self._reset)
            return
        # collect from now: the simulator publishes the episode's first frame before it answers
        self.frames, self.collecting, self.t_start = [], True, time.monotonic()
        self.t_progress = self.t_start
        self.cli.call_async(Trigger.Request()).add_done_callback(self._after_reset)

    def _after_reset(self, fut) -> None:
        res = fut.result()
        if res is None or not res.success:
            self.get_logger().error(f"{self.cli.srv_name} failed ({getattr(res, 'message', 'no answer')}); retrying")
            self.collecting = False
            self._later(1.0, self._reset)

    def _watchdog(self) -> None:
        if not self.collecting:
            return
        now = time.monotonic()
        if now - self.t_start > self.timeout:
            self.get_logger().warning(f"episode {len(self.rows)}: {len(self.frames)} of {self.steps + 1} frames in "
                                      f"{self.timeout:.0f} s (is a policy answering sim/image?); starting it again")
            self._reset()
        elif now - self.t_progress > self.stall:
            self.get_logger().warning(f"episode {len(self.rows)}: no frame for {self.stall:g} s after {len(self.frames)} "
                                      f"of {self.steps + 1} (a lost reset answer or frame, or a policy not "
                                      f"answering sim/image); starting it again")
            self._reset()

    def on_image(self, msg: Image) -> None:
        if not self.collecting or self.finished:
            return
        t = stamp_to_sec(msg.header.stamp)
        if t == 0.0:
            self.frames = []
        elif abs(t - 0.5 * len(self.frames)) > 1e-6:  # not the next frame of this episode
            return
        try:
            self.frames.append(image_msg_to_rgb(msg))
        except ImageError as e:
            self.get_logger().error(f"sim/image: {e}")
            return
        self.t_progress = time.monotonic()
        if len(self.frames) == self.steps + 1:
            self._episode_done()

    def _episode_done(self) -> None:
        from hma_ros.evaluation.ranking import score_episode

        self.collecting = False
        row = score_episode(self.judge, np.stack(self.frames))
        row["wall_s"] = time.monotonic() - self.t_start
        self.rows.append(row)
        self.get_logger().info(f"episode {len(self.rows)}/{self.n}: max coverage {row['max_coverage']:.3f}, "
                               f"success {bool(row['success'])}, {row['wall_s']:.1f} s")
        if len(self.rows) < self.n:
            self._later(self.settle, self._reset)
            return
        self._write()

    def _write(self) -> None:
        from hma_ros.evaluation.ranking import learned_summary

        res = learned_summary(str(self.get_parameter("policy_name").value), self.rows, self.steps,
                              str(self.get_parameter("judge").value))
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text(json.dumps(res, indent=1) + "\n")
        s = res["policies"][res["policy"]]["learned_judge"]
        self.get_logger().info(f"{self.n} episodes: mean max coverage {s['mean']:.3f} [{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}]; "
                               f"wrote {self.out}")
        self.finished = True
        raise SystemExit(0)  # ends spin; run_node shuts down cleanly


def main() -> int:
    try:
        return run_node(PolicyEvalNode)
    except SystemExit as e:
        return int(e.code or 0)


if __name__ == "__main__":
    raise SystemExit(main())
