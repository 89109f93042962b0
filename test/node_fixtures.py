"""Helpers for node tests: a tiny random checkpoint and a synthetic camera/joint feeder."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import torch

from hma_ros.model.checkpoint import save_checkpoint
from hma_ros.model.dynamics import DynamicsConfig, HMADynamics
from hma_ros.model.tokenizer import FSQTokenizer, TokenizerConfig

STATS = {"mean": [256.0, 256.0], "std": [100.0, 100.0], "min": [0.0, 0.0], "max": [512.0, 512.0]}
JOINTS_YAML = """
name: pusht_joints
camera: {topic: image_raw, size: [64, 64], crop: center}
joints: {topic: joint_states, names: [agent_x, agent_y]}
action: {source: joint_positions, hz: 10, interpolation: zoh}
"""


def tiny_checkpoint(path: Path, resolution: int = 32) -> Path:
    """A randomly initialised small model (real code path, untrained weights), frames of
    `resolution` px on a 4x4 token grid."""
    torch.manual_seed(0)
    stages = {32: (16, 16, 16), 64: (16, 16, 16, 16)}[resolution]
    tcfg = TokenizerConfig(resolution=resolution, grid=4, channels=stages, levels=(4, 3))
    dcfg = DynamicsConfig(d_model=32, n_layers=1, n_heads=2, window=6, prompt=2, tokens_per_frame=16, levels=(4, 3))
    emb = {n: {"stride": 5, "action_dim": 2, "action_hz": 10.0, "stats": STATS} for n in ("pusht", "pusht_joints")}
    tok, dyn = FSQTokenizer(tcfg), HMADynamics(dcfg, emb)
    state = {**{f"tokenizer.{k}": v for k, v in tok.state_dict().items()},
             **{f"dynamics.{k}": v for k, v in dyn.state_dict().items()}}
    config = {"kind": "hma", "tokenizer": tcfg.to_dict(), "dynamics": dcfg.to_dict(), "embodiments": emb}
    return save_checkpoint(path, state, config)


class Feeder:
    """Publishes a camera (rgb8) and joint states with synthetic header stamps, in real time.
    `mutate(kind, msg)` may alter or drop (return None) each message before it is sent."""

    def __init__(self, probe, camera_hz=10.0, joint_hz=10.0, size=(48, 64), t0=1000.0, mutate=None):
        from sensor_msgs.msg import Image, JointState

        self.Image, self.JointState = Image, JointState
        self.pub_img = probe.publisher(Image, "image_raw")
        self.pub_js = probe.publisher(JointState, "joint_states")
        self.camera_hz, self.joint_hz, self.size, self.t0 = camera_hz, joint_hz, size, t0
        self.mutate = mutate or (lambda kind, m: m)
        self.offset = 0.0  # added to stamps (e.g. negative to send time backwards)
        self.camera_on = True
        self._stop = False
        self.sent_images = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _stamp(self, msg, t):
        msg.header.stamp.sec = int(t)
        msg.header.stamp.nanosec = int(round((t - int(t)) * 1e9))

    def _run(self):
        start = time.monotonic()
        ni = nj = 0
        h, w = self.size
        while not self._stop:
            now = time.monotonic() - start
            while nj / self.joint_hz <= now:
                t = self.t0 + nj / self.joint_hz + self.offset
                js = self.JointState(name=["agent_x", "agent_y"], position=[200 + 50 * np.sin(t), 250.0])
                self._stamp(js, t)
                js = self.mutate("joints", js)
                if js is not None:
                    self.pub_js.publish(js)
                nj += 1
            while ni / self.camera_hz <= now:
                t = self.t0 + ni / self.camera_hz + self.offset
                if self.camera_on:
                    img = np.zeros((h, w, 3), np.uint8)
                    img[:, int(ni) % w] = 255
                    msg = self.Image(height=h, width=w, encoding="rgb8", step=3 * w, data=img.tobytes())
                    msg.header.frame_id = "test_cam"
                    self._stamp(msg, t)
                    msg = self.mutate("image", msg)
                    if msg is not None:
                        self.pub_img.publish(msg)
                        self.sent_images += 1
                ni += 1
            time.sleep(0.005)

    def stop(self):
        self._stop = True
        self._thread.join(2)
