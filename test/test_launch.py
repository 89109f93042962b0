"""The README's launch commands, run through the launch files themselves.

Each test runs a launch file under the real `launch` LaunchService (what `ros2 launch` is) from
an ament-prefix install of this package, with the README's arguments, and checks the topics
over real DDS: filmstrips from demo.launch.py and sim_robot + imagine; the policy enabled through
the parameter service drives the resting simulated robot; a disabled policy publishes nothing a
controller consumes while a teleoperator drives; simulate.launch.py answers actions with frames.

`launch` and `launch_ros` are not on PyPI: `make setup` installs them from ../shared/wheels when
that folder is beside the clone (CI). Without them these tests skip, saying so.
`launch_ros.actions` imports `composition_interfaces.srv` (a ROS message package, not on PyPI;
used only for composable nodes, which hma_ros does not launch): a minimal stand-in from
test/launch_support is put first on the launch process's path when the real one is missing.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np
import pytest
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from ros_harness import REPO, best_effort, not_builtin

if importlib.util.find_spec("launch") is None or importlib.util.find_spec("launch_ros") is None:
    pytest.skip("real launch/launch_ros are not installed (not on PyPI; `make setup` installs them from "
                "../shared/wheels when present, as in CI)", allow_module_level=True)

SUPPORT = Path(__file__).resolve().parent / "launch_support"


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    """An ament prefix with hma_ros installed as colcon lays it out (share/, lib/hma_ros/)."""
    p = tmp_path_factory.mktemp("prefix")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--ignore-installed", "--prefix", str(p), str(REPO)], check=True, capture_output=True)
    lib = p / "lib" / "hma_ros"
    lib.mkdir(parents=True, exist_ok=True)
    for script in (p / "bin").glob("*"):  # console scripts where launch_ros looks for executables
        if not (lib / script.name).exists():
            shutil.copy2(script, lib / script.name)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(p), "platbase": str(p)}))
    assert (p / "share/hma_ros/launch/demo.launch.py").is_file() and (site / "hma_ros").is_dir()
    return p, site


class Launch:
    """One `ros2 launch`-equivalent process."""

    def __init__(self, prefix, name: str, *args: str):
        p, site = prefix
        path = [str(site)]
        if importlib.util.find_spec("composition_interfaces") is None:
            path.append(str(SUPPORT))
        env = {**os.environ, "AMENT_PREFIX_PATH": str(p),
               "PYTHONPATH": os.pathsep.join(path + [os.environ.get("PYTHONPATH", "")])}
        self.log = open(p / f"launch_{name}_{time.monotonic_ns()}.log", "w+")
        self.proc = subprocess.Popen([sys.executable, str(SUPPORT / "run_launch.py"),
                                      str(p / "share/hma_ros/launch" / name), *args],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


@pytest.fixture
def launch(prefix):
    started: list[Launch] = []

    def start(name: str, *args: str) -> Launch:
        started.append(Launch(prefix, name, *args))
        return started[-1]

    yield start
    for lp in started:
        lp.stop()


def _wait(probe, topic, count, timeout, launched, predicate=None):
    try:
        return probe.wait_for(topic, count=count, timeout=timeout, predicate=predicate)
    except TimeoutError:
        print("\n".join(lp.output()[-3000:] for lp in launched))
        raise


def test_demo_launch_publishes_filmstrips(probe, launch):
    """demo.launch.py: the simulated robot publishes its planned commands and imagine_node imagines
    under them (its diagnostics name the source)."""
    from diagnostic_msgs.msg import DiagnosticArray
    from trajectory_msgs.msg import JointTrajectory

    lp = launch("demo.launch.py", "rviz:=false")
    strips = probe.subscribe(Image, "imagined/image", qos=10)
    plans = probe.subscribe(JointTrajectory, "planned_commands", qos=best_effort(2))
    probe.subscribe(DiagnosticArray, "/diagnostics", qos=10)
    _wait(probe, "imagined/image", 3, 90, [lp])
    s = strips[-1][1]
    assert s.encoding == "rgb8" and s.width == 9 * s.height // 1  # newest frame + 8 imagined, side by side
    assert "hma_imagine" in lp.output() and "sim_robot" in lp.output()
    assert plans and len(plans[-1][1].points) >= 50  # 1 s applied + 5 s planned at 10 Hz
    _wait(probe, "/diagnostics", 1, 20, [lp], predicate=lambda m: any(
        kv.key == "future_source" and kv.value == "planned_commands" for st in m.status for kv in st.values))


def test_imagine_launch_with_the_simulated_robot_publishes_filmstrips(probe, launch):
    a = launch("sim_robot.launch.py")
    b = launch("imagine.launch.py", "camera_topic:=image_raw", "rviz:=false")
    probe.subscribe(Image, "imagined/image", qos=10)
    frames = probe.subscribe(Image, "imagined/frames", qos=20)
    _wait(probe, "imagined/image", 3, 90, [a, b])
    assert len(frames) >= 8


def test_policy_launch_with_the_simulated_robot_streams_once_enabled_and_the_agent_moves(probe, launch):
    """README: `ros2 launch hma_ros policy.launch.py sim_robot:=true`, then
    `ros2 param set /hma_policy enabled true`. The simulated robot stands at rest until then."""
    lp = launch("policy.launch.py", "sim_robot:=true")
    cmds = probe.subscribe(Float64MultiArray, "joint_commands", qos=best_effort(50))
    traj = probe.subscribe(JointTrajectory, "joint_trajectory", qos=10)
    joints = probe.subscribe(JointState, "joint_states")
    probe.subscribe(JointTrajectory, "preview/joint_trajectory", qos=10)
    _wait(probe, "preview/joint_trajectory", 2, 90, [lp])  # a robot at rest yields steps
    _wait(probe, "joint_states", 1, 30, [lp])  # the probe's own (best-effort) match may come later
    assert cmds == [] and traj == []
    rest = np.array(joints[-1][1].position)
    t0 = time.monotonic()
    assert probe.set_bool("hma_policy", "enabled", True).successful
    _wait(probe, "joint_commands", 10, 30, [lp], predicate=not_builtin)
    print(f"policy.launch.py: enable -> first command {min(t for t, _ in cmds) - t0:.2f} s")
    time.sleep(2.0)
    moved = np.abs(np.array(joints[-1][1].position) - rest).max()
    assert moved > 1.0, f"the simulated agent did not move ({moved:.2f} px of 512)"
    assert len(traj) >= 2


def test_a_disabled_policy_stays_silent_while_a_teleoperator_drives(probe, launch):
    a = launch("sim_robot.launch.py")  # its built-in controller's commands: the teleoperator's stream
    b = launch("policy.launch.py")  # enabled:=false (the default)
    cmds = probe.subscribe(Float64MultiArray, "joint_commands", qos=best_effort(100))
    traj = probe.subscribe(JointTrajectory, "joint_trajectory", qos=10)
    probe.subscribe(JointTrajectory, "preview/joint_trajectory", qos=10)
    _wait(probe, "preview/joint_trajectory", 8, 90, [a, b])  # 4 s of steps computed
    _wait(probe, "joint_commands", 30, 30, [a, b])  # the teleoperator drove all along
    assert traj == [] and [m for _, m in cmds if not_builtin(m)] == []


def test_simulate_launch_answers_actions_with_frames(probe, launch, tmp_path):
    import imageio.v2 as imageio

    from hma_ros.data.sims import make_sim

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    sim = make_sim("pusht")
    sim.reset(3)
    imageio.imwrite(tmp_path / "start.png", sim.render())
    sim.close()
    lp = launch("simulate.launch.py", f"initial_image:={tmp_path / 'start.png'}")
    out = probe.subscribe(Image, "sim/image", qos=10)
    pub = probe.publisher(Float64MultiArray, "sim/action", qos=10)
    # the initial frame goes out once, at start-up, possibly before discovery matched us: wait
    # for the node's publisher and our action publisher's match, then ask for frames
    deadline = time.monotonic() + 90
    while (probe.node.count_publishers("sim/image") < 1 or pub.get_subscription_count() < 1) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pub.get_subscription_count() >= 1, lp.output()[-3000:]
    time.sleep(1.0)
    for _ in range(3):
        pub.publish(Float64MultiArray(data=[300.0, 200.0]))
        time.sleep(0.5)
    msgs = _wait(probe, "sim/image", 3, 30, [lp], predicate=lambda m: m.header.stamp.sec + m.header.stamp.nanosec > 0)
    assert msgs[-1].encoding == "rgb8" and msgs[-1].height == 64
    stamps = sorted(m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec for _, m in out)
    assert stamps[-3:] == [0.5, 1.0, 1.5]  # one imagined frame per action, 0.5 s apart


def test_policy_eval_launch_runs_its_episodes_writes_the_json_and_ends(launch, tmp_path):
    """README: `ros2 launch hma_ros policy_eval.launch.py dataset:=... episodes:=N out:=...` with
    the shipped model and judge: N judged episodes in the learned simulator, then the launch ends."""
    import json

    from hma_ros.cli.main import main as hma

    assert hma(["gen-data", "--out", str(tmp_path / "d"), "--embodiments", "pusht", "--episodes", "2",
                "--seconds", "3", "--workers", "1"]) == 0
    out = tmp_path / "eval.json"
    lp = launch("policy_eval.launch.py", f"dataset:={tmp_path / 'd' / 'pusht'}", "episodes:=2", "episode_steps:=3",
                "kind:=pose", "policy_name:=pose pusher", f"out:={out}")
    try:
        lp.proc.wait(180)
    except subprocess.TimeoutExpired:
        raise AssertionError(lp.output()[-4000:]) from None
    res = json.loads(out.read_text())
    assert res["policy"] == "pose pusher" and res["episodes"] == 2 and res["model_steps"] == 3, res
    assert len(res["episodes_raw"]["pose pusher"]["learned_judge"]) == 2
    assert "episode 2/2" in lp.output()
