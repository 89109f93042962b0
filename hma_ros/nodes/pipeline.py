"""The input half shared by the model nodes (imagine, policy): camera + joint states / commands
-> the shared Chunker -> completed 2 Hz steps -> a worker thread running the WorldModel.

Inference runs off the executor thread in a worker with a one-slot mailbox: the newest
completed step replaces an unprocessed one (counted as dropped), so latency never grows.
Every bad input is counted, logged (throttled) with what/where/what to do, reported in
/diagnostics, and never stops the node.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64MultiArray

from hma_ros import paths
from hma_ros.data.chunker import Chunker, Step
from hma_ros.data.embodiment import ConfigError, Embodiment, load_embodiment
from hma_ros.data.images import ImageError, ImageSpec
from hma_ros.nodes.common import image_msg_to_rgb, sensor_qos, stamp_to_sec
from hma_ros.runtime import RENDER_MODES

DEFAULT_CHECKPOINT = "hma_discrete_small"


class StepPipelineNode(Node):
    """Base class: subclasses implement `process(step)` (runs on the worker thread)."""

    def __init__(self, name: str):
        super().__init__(name)
        d = ParameterDescriptor
        self.declare_parameter("checkpoint", DEFAULT_CHECKPOINT,
                               d(description="checkpoint folder, or a name under share/hma_ros/models"))
        self.declare_parameter("embodiment", "pusht", d(description="embodiment name (config/embodiments) or YAML path"))
        self.declare_parameter("use_compressed", False, d(description="subscribe image_raw/compressed"))
        self.declare_parameter("seed", 0)
        self.declare_parameter("mask_steps", 2, d(description="MaskGIT unmasking steps per frame"))
        self.declare_parameter("temperature", 0.0, d(description="sampling temperature; 0 = greedy (best PSNR)"))
        self.declare_parameter("render", "residual", d(description="imagined frames: residual (keep the camera's "
                                                                   "detail where nothing changes) | tokens"))
        self.declare_parameter("camera_timeout", 2.0, d(description="s without frames before a diagnostics warning"))
        self.declare_parameter("diagnostics_period", 1.0)
        self.declare_parameter("torch_threads", 0, d(description="CPU threads for inference (0: torch's default)"))
        self.counters = {"images": 0, "bad_images": 0, "joint_states": 0, "bad_joint_states": 0,
                         "commands": 0, "bad_commands": 0, "steps": 0, "invalid_steps": 0,
                         "dropped_steps": 0, "processed_steps": 0, "resets": 0}
        self.latencies: deque[float] = deque(maxlen=200)
        self.step_times: deque[float] = deque(maxlen=20)
        self.problems: deque[tuple[float, str]] = deque(maxlen=20)
        self.last_image_wall = None
        self.last_joint_wall = None
        self.camera_frame_id = ""
        self.latest_frame: tuple[float, np.ndarray] | None = None
        self.wm = None
        self.prev_chunk: np.ndarray | None = None  # chunk k: leads into the next step's frame
        self._episode = None
        self.model_error = ""
        self.emb: Embodiment | None = None
        self._mailbox: Step | None = None
        self._mail_time = 0.0
        self._cv = threading.Condition()
        self._stop = False
        self._setup()
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(float(self.get_parameter("diagnostics_period").value), self.publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.worker = threading.Thread(target=self._work, name=f"{name}_worker", daemon=True)
        self.worker.start()

    # ------------------------------------------------------------------ setup
    def _setup(self) -> None:
        emb_arg = str(self.get_parameter("embodiment").value)
        try:
            self.emb = load_embodiment(emb_arg)
        except ConfigError as e:
            self.model_error = f"embodiment config: {e}"
            self.get_logger().error(self.model_error)
            return
        self.chunker = Chunker(self.emb.chunker_config)
        self._seen_resets = 0
        self.frame_spec = self.emb.image_spec
        self._load_model()
        if self.wm is not None and self.wm.image_size != self.emb.image_size:
            # frames go to the model at its own resolution (one crop/resize, not two)
            self.frame_spec = ImageSpec(size=self.wm.image_size, crop=self.emb.crop)
        use_compressed = bool(self.get_parameter("use_compressed").value)
        if use_compressed:
            self.create_subscription(CompressedImage, "image_raw/compressed", self.on_image, sensor_qos())
        else:
            self.create_subscription(Image, "image_raw", self.on_image, sensor_qos())
        self.create_subscription(JointState, "joint_states", self.on_joints, sensor_qos(50))
        if self.emb.action_source == "command":
            self.create_subscription(Float64MultiArray, self.emb.command_topic, self.on_command, sensor_qos(50))

    def _load_model(self) -> None:
        import torch

        from hma_ros.runtime.world_model import WorldModel

        threads = int(self.get_parameter("torch_threads").value)
        if threads > 0:
            torch.set_num_threads(threads)

        path = paths.checkpoint(str(self.get_parameter("checkpoint").value))
        try:
            self.wm = WorldModel.load(path, self.emb.name, seed=int(self.get_parameter("seed").value),
                                      mask_steps=int(self.get_parameter("mask_steps").value),
                                      temperature=float(self.get_parameter("temperature").value),
                                      render=str(self.get_parameter("render").value))
        except Exception as e:  # CheckpointError, unknown embodiment, ...: report, stay up
            self.wm = None
            self.model_error = f"cannot load checkpoint {path}: {e}"
            self.get_logger().error(self.model_error + " -- the node keeps running and reports this in /diagnostics")
            return
        if (self.wm.stride, self.wm.action_dim) != (self.emb.stride, self.emb.action_dim):
            self.model_error = (f"checkpoint {path} expects {self.emb.name} chunks of {self.wm.stride}x"
                                f"{self.wm.action_dim} but {self.emb.source_file} gives {self.emb.stride}x"
                                f"{self.emb.action_dim}: fix action.hz/dim or use a matching checkpoint")
            self.get_logger().error(self.model_error)
            self.wm = None
            return
        self.get_logger().info(f"loaded {self.wm.describe()}: stride {self.wm.stride} x {self.wm.action_dim}-D actions")

    # ------------------------------------------------------------------ bad input
    def problem(self, counter: str, text: str) -> None:
        self.counters[counter] += 1
        self.problems.append((time.monotonic(), text))
        self.get_logger().warning(text, throttle_duration_sec=2.0)

    # ------------------------------------------------------------------ callbacks (executor thread)
    def on_image(self, msg) -> None:
        now = time.monotonic()
        self.last_image_wall = now
        try:
            rgb = image_msg_to_rgb(msg)
        except ImageError as e:
            self.problem("bad_images", f"image_raw: {e}. Frame dropped.")
            return
        self.counters["images"] += 1
        self.camera_frame_id = msg.header.frame_id
        t = stamp_to_sec(msg.header.stamp)
        frame = self.frame_spec.prepare(rgb)
        self.latest_frame = (t, frame)
        self._feed(self.chunker.push_frame(t, frame))

    def on_joints(self, msg: JointState) -> None:
        self.last_joint_wall = time.monotonic()
        command = self.emb.action_source == "command"
        vec = None
        if not command or self.emb.at_rest == "joints":
            try:
                vec = self.emb.joint_vector(msg.name, msg.position)
            except ValueError as e:
                self.problem("bad_joint_states", f"joint_states: {e}. Sample dropped.")
                return
        self.counters["joint_states"] += 1
        if command:  # a robot at rest sends joint states but no commands: the chunker's hold
            # stamped on arrival with the node clock, like the commands it stands in for
            self._feed(self.chunker.push_hold(self.get_clock().now().nanoseconds * 1e-9, vec))
        else:
            self._feed(self.chunker.push_action(stamp_to_sec(msg.header.stamp), vec))

    def on_command(self, msg: Float64MultiArray) -> None:
        vec = np.asarray(msg.data, float)
        if vec.shape != (self.emb.action_dim,) or not np.all(np.isfinite(vec)):
            self.problem("bad_commands", f"{self.emb.command_topic}: expected {self.emb.action_dim} finite values, "
                         f"got {vec.size} ({vec[:6]}). Command dropped.")
            return
        self.counters["commands"] += 1
        # Float64MultiArray has no header: stamp it on arrival with the node clock (sim time aware)
        self._feed(self.chunker.push_action(self.get_clock().now().nanoseconds * 1e-9, vec))

    def _feed(self, steps: list[Step]) -> None:
        st = self.chunker.stats
        if st.resets != self._seen_resets:
            self._seen_resets = st.resets
            self.counters["resets"] += 1
            self.problem("resets", f"time went backwards ({st.messages[-1] if st.messages else ''}); "
                         "the step buffers and the model history were reset")
            self.counters["resets"] -= 1  # problem() counted it once more
        for s in steps:
            self.counters["steps"] += 1
            self.step_times.append(time.monotonic())
            if not s.valid:
                self.counters["invalid_steps"] += 1
            with self._cv:
                if self._mailbox is not None:
                    self.counters["dropped_steps"] += 1
                self._mailbox, self._mail_time = s, time.monotonic()
                self._cv.notify()

    # ------------------------------------------------------------------ worker thread
    def _work(self) -> None:
        while True:
            with self._cv:
                while self._mailbox is None and not self._stop:
                    self._cv.wait(0.5)
                if self._stop:
                    return
                step, t_done = self._mailbox, self._mail_time
                self._mailbox = None
            if self.wm is None:
                continue
            try:
                if self.process(step):
                    self.latencies.append(time.monotonic() - t_done)
                self.counters["processed_steps"] += 1
            except Exception as e:  # the node must stay up; say what broke
                self.problem("invalid_steps", f"inference failed on step {step.index} at t={step.t:.3f}: "
                             f"{type(e).__name__}: {e}")

    def process(self, step: Step) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def observe_step(self, step: Step) -> bool:
        """Feed one completed step to the WorldModel (worker thread). A new episode or a step
        without a frame restarts the model's history. Returns False when nothing was observed."""
        wm = self.wm
        if step.episode != self._episode or not step.frame_valid:
            wm.reset()
            self.prev_chunk, self._episode = None, step.episode
        if not step.frame_valid:
            return False
        wm.observe(step.frame, self.prev_chunk)
        self.prev_chunk = step.actions.astype(np.float64) if step.action_mask.all() else None
        return True

    # ------------------------------------------------------------------ parameters, diagnostics
    def _on_set_parameters(self, params) -> SetParametersResult:
        for p in params:
            err = self.validate_parameter(p.name, p.value)
            if err:
                return SetParametersResult(successful=False, reason=err)
        return SetParametersResult(successful=True)

    def validate_parameter(self, name: str, value) -> str:
        if name in ("checkpoint", "embodiment", "use_compressed"):
            return f"{name} is read at start-up; restart the node to change it"
        if name == "temperature" and not (isinstance(value, (int, float)) and value >= 0):
            return "temperature must be >= 0"
        if name == "mask_steps" and not (isinstance(value, int) and 1 <= value <= 64):
            return "mask_steps must be an integer in 1..64"
        if name == "render" and value not in RENDER_MODES:
            return f"render must be one of {', '.join(RENDER_MODES)}"
        if name in ("temperature", "mask_steps", "render") and self.wm is not None:
            setattr(self.wm, name, value)
        return ""

    def tick_rate(self) -> float:
        if len(self.step_times) < 2:
            return 0.0
        span = self.step_times[-1] - self.step_times[0]
        return (len(self.step_times) - 1) / span if span > 0 else 0.0

    def publish_diagnostics(self) -> None:
        now = time.monotonic()
        st = DiagnosticStatus(name=f"{self.get_name()}: HMA pipeline", hardware_id=self.emb.name if self.emb else "")
        lat = np.array(self.latencies) * 1e3 if self.latencies else np.array([0.0])
        recent = [p for t, p in self.problems if now - t < 5.0]
        camera_silent = (self.last_image_wall is None and self.last_joint_wall is not None) or (
            self.last_image_wall is not None and now - self.last_image_wall > float(self.get_parameter("camera_timeout").value))
        if self.model_error:
            st.level, st.message = DiagnosticStatus.ERROR, self.model_error[:400]
        elif camera_silent:
            st.level = DiagnosticStatus.WARN
            st.message = ("no camera images: expected on image_raw" + ("/compressed" if self.get_parameter("use_compressed").value else "")
                          + ". Large raw images over Fast DDS need the shared-memory profile (FASTDDS_DEFAULT_PROFILES_FILE) on both sides")
        elif recent:
            st.level, st.message = DiagnosticStatus.WARN, recent[-1][:400]
        else:
            st.level, st.message = DiagnosticStatus.OK, "running"
        values = {
            "tick_rate_hz": f"{self.tick_rate():.3f}",
            "latency_p50_ms": f"{np.percentile(lat, 50):.1f}",
            "latency_p99_ms": f"{np.percentile(lat, 99):.1f}",
            "latency_samples": str(len(self.latencies)),
            "model": self.wm.describe() if self.wm is not None else "not loaded",
            "embodiment": self.emb.name if self.emb else "",
            **{k: str(v) for k, v in self.counters.items()},
            **self.extra_diagnostics(),
        }
        st.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        arr = DiagnosticArray(status=[st])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)

    def extra_diagnostics(self) -> dict[str, str]:
        return {}

    def close(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        self.worker.join(2.0)
