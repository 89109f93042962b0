"""The input half shared by the model nodes (imagine, policy), split by job:

- `StepInputs`: camera + joint states / commands -> the shared Chunker -> completed 2 Hz steps;
  every bad input counted, logged (throttled) with what/where/what to do, never fatal;
- `Mailbox`: step scheduling, one slot: the newest completed step replaces an unprocessed one
  (counted as dropped), so latency never grows;
- `InferenceWorker`: the thread that takes steps from the mailbox and runs the WorldModel
  (`process`), off the executor thread;
- `PipelineStats` + `StepPipelineNode.publish_diagnostics`: counters, latencies, problems ->
  /diagnostics.

`StepPipelineNode` is a ROS 2 managed (lifecycle) node: configure loads the embodiment and the
model and subscribes, activate starts the worker thread and the outputs, deactivate stops both
(nothing is published while inactive), cleanup frees the model. With `autostart` (default
true) the node configures and activates itself as soon as it spins, so launch files and
`ros2 run` start it working; with autostart false a lifecycle manager drives it
(`ros2 lifecycle set /hma_imagine configure`, then `activate`). /diagnostics runs in every state.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64MultiArray

from hma_ros import paths
from hma_ros.data.chunker import Chunker, Step
from hma_ros.data.embodiment import ConfigError, Embodiment, load_embodiment
from hma_ros.data.images import ImageError, ImageSpec
from hma_ros.nodes.common import (
    declare_model_placement,
    image_msg_to_rgb,
    model_placement,
    prepare_model,
    sensor_qos,
    stamp_to_sec,
)
from hma_ros.runtime import RENDER_MODES

DEFAULT_CHECKPOINT = "hma_discrete_moves"  # the shipped model that moves the robot (README, "Which model")


class PipelineStats:
    """Counters, latencies and recent problems of one node's pipeline (any thread may write)."""

    COUNTERS = ("images", "bad_images", "joint_states", "bad_joint_states", "commands", "bad_commands", "steps",
                "invalid_steps", "dropped_steps", "processed_steps", "resets")

    def __init__(self, logger):
        self.logger = logger
        self.counters = {k: 0 for k in self.COUNTERS}
        self.latencies: deque[float] = deque(maxlen=200)
        self.step_times: deque[float] = deque(maxlen=20)
        self.problems: deque[tuple[float, str]] = deque(maxlen=20)

    def problem(self, counter: str, text: str) -> None:
        self.counters[counter] += 1
        self.problems.append((time.monotonic(), text))
        self.logger.warning(text, throttle_duration_sec=2.0)

    def tick_rate(self) -> float:
        if len(self.step_times) < 2:
            return 0.0
        span = self.step_times[-1] - self.step_times[0]
        return (len(self.step_times) - 1) / span if span > 0 else 0.0


class Mailbox:
    """One-slot step scheduling: put() replaces an unprocessed step (returns True when it did)."""

    def __init__(self):
        self._cv = threading.Condition()
        self._step: Step | None = None
        self._time = 0.0
        self._closed = False

    def put(self, step: Step) -> bool:
        with self._cv:
            dropped = self._step is not None
            self._step, self._time = step, time.monotonic()
            self._cv.notify()
            return dropped

    def take(self) -> tuple[Step, float] | None:
        """The newest step and when it was completed; None once closed."""
        with self._cv:
            while self._step is None and not self._closed:
                self._cv.wait(0.5)
            if self._closed:
                return None
            got = (self._step, self._time)
            self._step = None
            return got

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()


class InferenceWorker:
    """A thread running `process(step)` on each step the mailbox hands over, until stopped.
    A failing step is reported (PipelineStats) and the worker carries on."""

    def __init__(self, name: str, process, stats: PipelineStats):
        self.mailbox = Mailbox()
        self.stats = stats
        self._process = process
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (got := self.mailbox.take()) is not None:
            step, t_done = got
            try:
                if self._process(step):
                    self.stats.latencies.append(time.monotonic() - t_done)
                self.stats.counters["processed_steps"] += 1
            except Exception as e:  # the node must stay up; say what broke
                self.stats.problem("invalid_steps", f"inference failed on step {step.index} at t={step.t:.3f}: "
                                   f"{type(e).__name__}: {e}")

    def stop(self, timeout: float = 5.0) -> None:
        self.mailbox.close()
        self._thread.join(timeout)


class StepInputs:
    """Subscriptions -> Chunker -> completed steps handed to `deliver` (the executor thread).
    `node` gives the clock, the logger-backed stats and the subscriptions' owner."""

    def __init__(self, node, emb: Embodiment, frame_spec: ImageSpec, stats: PipelineStats, deliver,
                 use_compressed: bool):
        self.node, self.emb, self.frame_spec, self.stats, self.deliver = node, emb, frame_spec, stats, deliver
        self.chunker = Chunker(emb.chunker_config)
        self._seen_resets = 0
        self.last_image_wall = None
        self.last_joint_wall = None
        self.camera_frame_id = ""
        self.latest_frame: tuple[float, np.ndarray] | None = None
        self.subscriptions = [
            node.create_subscription(CompressedImage, "image_raw/compressed", self.on_image, sensor_qos())
            if use_compressed else node.create_subscription(Image, "image_raw", self.on_image, sensor_qos()),
            node.create_subscription(JointState, "joint_states", self.on_joints, sensor_qos(50))]
        if emb.action_source == "command":
            self.subscriptions.append(node.create_subscription(Float64MultiArray, emb.command_topic, self.on_command,
                                                               sensor_qos(50)))

    def destroy(self) -> None:
        for sub in self.subscriptions:
            self.node.destroy_subscription(sub)
        self.subscriptions = []

    def _now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def on_image(self, msg) -> None:
        self.last_image_wall = time.monotonic()
        try:
            rgb = image_msg_to_rgb(msg)
        except ImageError as e:
            self.stats.problem("bad_images", f"image_raw: {e}. Frame dropped.")
            return
        self.stats.counters["images"] += 1
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
                self.stats.problem("bad_joint_states", f"joint_states: {e}. Sample dropped.")
                return
        self.stats.counters["joint_states"] += 1
        if command:  # a robot at rest sends joint states but no commands: the chunker's hold,
            # at the joint state's header stamp as bags read it (a callback stalled past the
            # action hold must not cut holes in a robot at rest); the node clock only for an
            # unstamped message
            t = stamp_to_sec(msg.header.stamp)
            self._feed(self.chunker.push_hold(t if t > 0 else self._now(), vec))
        else:
            self._feed(self.chunker.push_action(stamp_to_sec(msg.header.stamp), vec))

    def on_command(self, msg: Float64MultiArray) -> None:
        vec = np.asarray(msg.data, float)
        if vec.shape != (self.emb.action_dim,) or not np.all(np.isfinite(vec)):
            self.stats.problem("bad_commands", f"{self.emb.command_topic}: expected {self.emb.action_dim} finite "
                               f"values, got {vec.size} ({vec[:6]}). Command dropped.")
            return
        self.stats.counters["commands"] += 1
        # Float64MultiArray has no header: stamp it on arrival with the node clock (sim time aware)
        self._feed(self.chunker.push_action(self._now(), vec))

    def _feed(self, steps: list[Step]) -> None:
        st = self.chunker.stats
        if st.resets != self._seen_resets:
            self._seen_resets = st.resets
            self.stats.problem("resets", f"time went backwards ({st.messages[-1] if st.messages else ''}); "
                               "the step buffers and the model history were reset")
        for s in steps:
            self.stats.counters["steps"] += 1
            self.stats.step_times.append(time.monotonic())
            if not s.valid:
                self.stats.counters["invalid_steps"] += 1
            self.deliver(s)


class StepPipelineNode(LifecycleNode):
    """Base class: subclasses implement `process(step)` (runs on the worker thread) and
    `make_outputs()` (their lifecycle publishers, created on configure)."""

    WARM_UP_ACT = False  # the node asks act() each step: warm those passes up too (compile / graphs)

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
        declare_model_placement(self)
        self.declare_parameter("autostart", True, d(description="configure and activate on start-up (false: wait "
                                                                "for a lifecycle manager)"))
        self.stats = PipelineStats(self.get_logger())
        self.counters = self.stats.counters
        self.wm = None
        self.emb: Embodiment | None = None
        self.inputs: StepInputs | None = None
        self.worker: InferenceWorker | None = None
        self.prev_chunk: np.ndarray | None = None  # chunk k: leads into the next step's frame
        self._episode = None
        self.model_error = ""
        self.lifecycle_state = "unconfigured"
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(float(self.get_parameter("diagnostics_period").value), self.publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._boot = self.create_timer(0.0, self._autostart)  # after the subclass's __init__, on first spin

    # ------------------------------------------------------------------ lifecycle
    def _autostart(self) -> None:
        self.destroy_timer(self._boot)
        if bool(self.get_parameter("autostart").value):
            if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
                self.trigger_activate()
        else:
            self.get_logger().info("autostart false: waiting for configure/activate (ros2 lifecycle set)")

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the embodiment and the model, subscribe, create the outputs. A model that does not
        load is reported (log, /diagnostics) and the node stays up, unconfigured."""
        self.model_error = ""
        emb_arg = str(self.get_parameter("embodiment").value)
        try:
            self.emb = load_embodiment(emb_arg)
        except ConfigError as e:
            self.model_error = f"embodiment config: {e}"
            self.get_logger().error(self.model_error)
            return TransitionCallbackReturn.FAILURE
        frame_spec = self.emb.image_spec
        self._load_model()
        if self.wm is None:
            return TransitionCallbackReturn.FAILURE
        if self.wm.image_size != self.emb.image_size:
            # frames go to the model at its own resolution (one crop/resize, not two)
            frame_spec = ImageSpec(size=self.wm.image_size, crop=self.emb.crop)
        self.inputs = StepInputs(self, self.emb, frame_spec, self.stats, self._deliver,
                                 bool(self.get_parameter("use_compressed").value))
        self.make_outputs()
        self.lifecycle_state = "inactive"
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.worker = InferenceWorker(f"{self.get_name()}_worker", self.process, self.stats)
        self.lifecycle_state = "active"
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.lifecycle_state = "inactive"
        self._stop_worker()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.lifecycle_state = "unconfigured"
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        self._release()
        self.lifecycle_state = "finalized"
        return super().on_shutdown(state)

    def _stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None

    def _release(self) -> None:
        if self.inputs is not None:
            self.inputs.destroy()
            self.inputs = None
        self.destroy_outputs()
        self.wm = None  # the model's memory goes with it
        self.prev_chunk, self._episode = None, None

    def make_outputs(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def destroy_outputs(self) -> None:
        """Destroy what make_outputs created (subclasses with outputs override)."""

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
                                      render=str(self.get_parameter("render").value),
                                      **model_placement(self))
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
        prepare_model(self, self.wm, int(self.get_parameter("horizon").value) if self.has_parameter("horizon") else 0,
                act=self.WARM_UP_ACT)

    # ------------------------------------------------------------------ steps
    def problem(self, counter: str, text: str) -> None:
        self.stats.problem(counter, text)

    @property
    def camera_frame_id(self) -> str:
        return self.inputs.camera_frame_id if self.inputs is not None else ""

    @property
    def latest_frame(self) -> tuple[float, np.ndarray] | None:
        return self.inputs.latest_frame if self.inputs is not None else None

    def _deliver(self, step: Step) -> None:
        worker = self.worker
        if worker is None:  # inactive: steps are counted, not run
            return
        if worker.mailbox.put(step):
            self.counters["dropped_steps"] += 1

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
        if name in ("checkpoint", "embodiment", "use_compressed") and self.lifecycle_state in ("inactive", "active"):
            return f"{name} is read on configure; deactivate and clean up the node (or restart it) to change it"
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
        return self.stats.tick_rate()

    def publish_diagnostics(self) -> None:
        now = time.monotonic()
        st = DiagnosticStatus(name=f"{self.get_name()}: HMA pipeline", hardware_id=self.emb.name if self.emb else "")
        lat = np.array(self.stats.latencies) * 1e3 if self.stats.latencies else np.array([0.0])
        recent = [p for t, p in self.stats.problems if now - t < 5.0]
        inp = self.inputs
        last_image = inp.last_image_wall if inp is not None else None
        last_joint = inp.last_joint_wall if inp is not None else None
        camera_silent = (last_image is None and last_joint is not None) or (
            last_image is not None and now - last_image > float(self.get_parameter("camera_timeout").value))
        if self.model_error:
            st.level, st.message = DiagnosticStatus.ERROR, self.model_error[:400]
        elif self.lifecycle_state != "active":
            st.level, st.message = DiagnosticStatus.WARN, f"{self.lifecycle_state} (lifecycle): not imagining"
        elif camera_silent:
            st.level = DiagnosticStatus.WARN
            st.message = ("no camera images: expected on image_raw" + ("/compressed" if self.get_parameter("use_compressed").value else "")
                          + ". Large raw images over Fast DDS need the shared-memory profile (FASTDDS_DEFAULT_PROFILES_FILE) on both sides")
        elif recent:
            st.level, st.message = DiagnosticStatus.WARN, recent[-1][:400]
        else:
            st.level, st.message = DiagnosticStatus.OK, "running"
        values = {
            "lifecycle_state": self.lifecycle_state,
            "tick_rate_hz": f"{self.tick_rate():.3f}",
            "latency_p50_ms": f"{np.percentile(lat, 50):.1f}",
            "latency_p99_ms": f"{np.percentile(lat, 99):.1f}",
            "latency_samples": str(len(self.stats.latencies)),
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
        self._stop_worker()
