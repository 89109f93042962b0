"""frame_policy_node (hma_frame_policy): a PushT policy that acts from camera frames.

Each frame on `image` (sensor_msgs/Image) is read by the PushT judge (agent position, T pose)
and answered on `action` (std_msgs/Float64MultiArray) with one chunk of `stride` native-rate PD
targets (stride x 2 values), planned by one of the graded scripted controllers that
`hma policy-eval --rank` compares (`kind`: pose = `PushTPosePusher`, which solves the task;
waypoint = gen-data's position-only pusher; random = smooth random commands; plus Gaussian
`noise` in world units). Remap `image`/`action` to drive the learned simulator (sim/image,
sim/action) or a robot. A frame stamped 0.0 starts a new episode (fresh controller memory).
The logic lives in hma_ros/evaluation/ranking.py (`FramePolicy`); this node only moves messages.
"""

from __future__ import annotations

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Float64MultiArray

from hma_ros import paths
from hma_ros.data.images import ImageError
from hma_ros.nodes.common import image_msg_to_rgb, reliable_qos, run_node, stamp_to_sec


class FramePolicyNode(Node):
    def __init__(self):
        super().__init__("hma_frame_policy")
        self.declare_parameter("judge", "pusht_judge")
        self.declare_parameter("kind", "pose")
        self.declare_parameter("noise", 0.0)
        self.declare_parameter("seed", 0)
        self.declare_parameter("embodiment", "pusht")
        from hma_ros.data.embodiment import load_embodiment
        from hma_ros.evaluation.pusht_judge import JudgeError, load_judge
        from hma_ros.evaluation.ranking import FramePolicy

        kind = str(self.get_parameter("kind").value)
        if kind not in ("pose", "waypoint", "random"):
            raise ValueError(f"kind {kind!r}: choose pose, waypoint or random")
        try:
            self.judge = load_judge(paths.checkpoint(str(self.get_parameter("judge").value)))
        except JudgeError as e:
            raise ValueError(str(e)) from None
        self.emb = load_embodiment(str(self.get_parameter("embodiment").value))
        if not self.emb.has_limits:
            raise ValueError(f"embodiment {self.emb.name}: no action.low/high; the policy needs its command limits")
        noise = float(self.get_parameter("noise").value)
        self.policy = FramePolicy(f"{kind}+noise {noise:g}" if noise else kind, kind, noise)
        self.seed = int(self.get_parameter("seed").value)
        self.episodes = 0
        self.size = int(self.judge.config["image_size"])
        # the subscription first: policy_eval_node takes the action publisher as the sign that
        # this node is listening
        self.create_subscription(Image, "image", self.on_image, reliable_qos(5))
        self.pub = self.create_publisher(Float64MultiArray, "action", reliable_qos(10))
        self.get_logger().info(f"{self.policy.name} policy, judge {self.get_parameter('judge').value}: "
                               f"waiting for frames on {self.resolve_topic_name('image')}")

    def _start(self) -> None:
        self.policy.start(self.judge, self.emb.stride, self.emb, np.random.default_rng([self.seed, self.episodes]))
        self.episodes += 1

    def on_image(self, msg: Image) -> None:
        try:
            frame = image_msg_to_rgb(msg)
        except ImageError as e:
            self.get_logger().warning(f"image: {e}", throttle_duration_sec=2.0)
            return
        if frame.shape[:2] != (self.size, self.size):
            self.get_logger().warning(f"image: {frame.shape[1]}x{frame.shape[0]} frames, but the judge reads "
                                      f"{self.size}x{self.size}; ignored", throttle_duration_sec=5.0)
            return
        if stamp_to_sec(msg.header.stamp) == 0.0 or not self.episodes:
            self._start()
        chunk = np.asarray(self.policy(frame), float)
        self.pub.publish(Float64MultiArray(data=chunk.reshape(-1).tolist()))


def main() -> int:
    return run_node(FramePolicyNode)


if __name__ == "__main__":
    raise SystemExit(main())
