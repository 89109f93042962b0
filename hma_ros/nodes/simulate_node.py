"""simulate_node (hma_simulate): HMA as an interactive learned simulator.

Send an action on sim/action (Float64MultiArray: one chunk of stride x action_dim values, or
action_dim values held for the whole 0.5 s step) and get the next imagined frame on sim/image.
The imagined frame becomes the new observation, so a policy can be rolled out entirely inside
the model. The initial frame comes from `initial_image` (a PNG/JPG), a dataset episode
(`dataset` + `episode`: its first `prompt` steps), or the first frame on image_raw.
~/reset (std_srvs/Trigger) starts again from the initial frame(s). sim/image is latched
(reliable, transient local, depth 5): a subscriber that asks for transient local and starts
after the node still gets the initial frame.

Episodes, for evaluating a policy node in the learned simulator (launch/policy_eval.launch.py):
with `episode_steps` > 0 an episode ends after that many actions: sim/done (std_msgs/Bool)
turns true and further actions are ignored until ~/reset; with `next_episode_on_reset` each
reset starts from the next dataset episode's first frames (wrapping around). Frames are stamped
with the simulated time since the episode's start (0.0 = its first frame).
"""

from __future__ import annotations

import threading

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import Trigger

from hma_ros import paths
from hma_ros.data.images import ImageError
from hma_ros.nodes.common import (
    declare_model_placement,
    image_msg_to_rgb,
    model_placement,
    prepare_model,
    reliable_qos,
    rgb_to_image_msg,
    run_node,
    sensor_qos,
)
from hma_ros.nodes.pipeline import DEFAULT_CHECKPOINT


class SimulateNode(Node):
    def __init__(self):
        super().__init__("hma_simulate")
        self.declare_parameter("checkpoint", DEFAULT_CHECKPOINT)
        self.declare_parameter("embodiment", "pusht")
        self.declare_parameter("initial_image", "")
        self.declare_parameter("dataset", "")
        self.declare_parameter("episode", 0)
        self.declare_parameter("prompt", 4)
        self.declare_parameter("seed", 0)
        self.declare_parameter("mask_steps", 2)
        self.declare_parameter("frame_id", "hma_sim")
        self.declare_parameter("episode_steps", 0)  # actions per episode (0: no end)
        self.declare_parameter("next_episode_on_reset", False)
        declare_model_placement(self)
        self.lock = threading.Lock()
        self.episode_steps = int(self.get_parameter("episode_steps").value)
        if self.episode_steps < 0:
            raise ValueError(f"episode_steps must be >= 0 (0: episodes never end), got {self.episode_steps}")
        self.episode = int(self.get_parameter("episode").value)
        self.steps = 0
        self.prompt: list[tuple[np.ndarray, np.ndarray | None]] = []
        self.t = 0.0
        self.frames_out = 0
        from hma_ros.runtime.world_model import WorldModel

        path = paths.checkpoint(str(self.get_parameter("checkpoint").value))
        self.wm = WorldModel.load(path, str(self.get_parameter("embodiment").value),
                                  seed=int(self.get_parameter("seed").value),
                                  mask_steps=int(self.get_parameter("mask_steps").value), **model_placement(self))
        prepare_model(self, self.wm, horizon=1)  # one imagined frame per action
        # latched: the initial frame is published here, before any viewer or policy can have
        # matched; one started later (with a transient-local subscription) still gets it
        self.pub = self.create_publisher(Image, "sim/image", reliable_qos(5, latched=True))
        self.pub_done = self.create_publisher(Bool, "sim/done", reliable_qos(10))
        self.create_subscription(Float64MultiArray, "sim/action", self.on_action, reliable_qos(10))
        self.create_service(Trigger, "~/reset", self.on_reset)
        self._load_initial()
        if not self.prompt:
            self.create_subscription(Image, "image_raw", self.on_camera, sensor_qos())
            self.get_logger().info("waiting for the first frame on image_raw")

    def _load_initial(self) -> None:
        img = str(self.get_parameter("initial_image").value)
        ds = str(self.get_parameter("dataset").value)
        if img:
            import imageio.v2 as imageio

            self.prompt = [(np.asarray(imageio.imread(img))[..., :3].astype(np.uint8), None)]
        elif ds:
            from hma_ros.data.dataset import Dataset

            d = Dataset(ds)
            if not 0 <= self.episode < len(d.episodes):
                raise ValueError(f"episode {self.episode}: {ds} has episodes 0..{len(d.episodes) - 1}")
            self.n_episodes = len(d.episodes)
            start, n = d.episodes[self.episode]
            P = min(int(self.get_parameter("prompt").value), n)
            w = d.window(start, P)
            self.prompt = w.steps(P)
        if self.prompt:
            self._restart()

    def _restart(self) -> None:
        with self.lock:
            self.wm.reset()
            for frame, chunk in self.prompt:
                self.wm.observe(frame, chunk)
            self.t = 0.0
            self.steps = 0
            self.current = self.prompt[-1][0]
        self.pub_done.publish(Bool(data=False))
        self.pub.publish(rgb_to_image_msg(self.current, self.t, str(self.get_parameter("frame_id").value)))

    def on_camera(self, msg: Image) -> None:
        if self.prompt:
            return
        try:
            self.prompt = [(self.wm_frame(image_msg_to_rgb(msg)), None)]
        except ImageError as e:
            self.get_logger().warning(f"image_raw: {e}", throttle_duration_sec=2.0)
            return
        self._restart()

    def wm_frame(self, rgb: np.ndarray) -> np.ndarray:
        from hma_ros.data.images import ImageSpec

        return ImageSpec(size=self.wm.image_size).prepare(rgb)

    def on_action(self, msg: Float64MultiArray) -> None:
        a = np.asarray(msg.data, float)
        s, d = self.wm.stride, self.wm.action_dim
        if a.size == d:
            chunk = np.repeat(a[None], s, 0)
        elif a.size == s * d:
            chunk = a.reshape(s, d)
        else:
            self.get_logger().warning(f"sim/action: expected {d} values (held) or {s}x{d} (a chunk), got {a.size}; ignored")
            return
        if not np.all(np.isfinite(chunk)):
            self.get_logger().warning("sim/action contains NaN/inf; ignored")
            return
        if not self.prompt:
            self.get_logger().warning("sim/action before any initial frame; set initial_image/dataset or publish image_raw")
            return
        with self.lock:
            if self.episode_steps and self.steps >= self.episode_steps:
                self.get_logger().info(f"sim/action after the episode's {self.episode_steps} steps; ignored until "
                                       f"~/reset", throttle_duration_sec=5.0)
                return
            frame = self.wm.imagine(chunk[None])[0]
            self.wm.observe(frame, chunk)  # the imagined frame is the simulator's new state
            self.t += 0.5
            self.steps += 1
            self.frames_out += 1
            done = bool(self.episode_steps) and self.steps >= self.episode_steps
        self.pub.publish(rgb_to_image_msg(frame, self.t, str(self.get_parameter("frame_id").value)))
        if done:
            self.pub_done.publish(Bool(data=True))

    def on_reset(self, _req, resp):
        if not self.prompt:
            resp.success, resp.message = False, "no initial frame yet"
            return resp
        where = ""
        if self.get_parameter("next_episode_on_reset").value and getattr(self, "n_episodes", 0):
            self.episode = (self.episode + 1) % self.n_episodes
            self._load_initial()  # publishes the new episode's first frame
            where = f" of dataset episode {self.episode}"
        else:
            self._restart()
        resp.success, resp.message = True, f"restarted from {len(self.prompt)} initial frame(s){where}"
        return resp


def main() -> int:
    return run_node(SimulateNode)


if __name__ == "__main__":
    raise SystemExit(main())
