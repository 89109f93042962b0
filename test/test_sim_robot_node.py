"""sim_robot_node over real DDS: real PushT frames and joint states, commands, reset."""

from __future__ import annotations

import time

import numpy as np
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from hma_ros.data.images import image_to_rgb

from ros_harness import REPO


def _stamp(msg) -> float:
    return msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec


def test_sim_robot_publishes_real_frames_and_joint_states_and_obeys_commands(probe, launch_node):
    node = launch_node("sim_robot_node", params_file=REPO / "config/sim_robot.yaml",
                       params={"seed": 3, "frame_id": "cam_test"})
    images = probe.subscribe(Image, "image_raw")
    joints = probe.subscribe(JointState, "joint_states")
    frames = probe.wait_for("image_raw", count=12, timeout=30)
    assert node.alive(), node.output()

    first = frames[0]
    assert (first.encoding, first.width, first.height, first.step) == ("rgb8", 96, 96, 288)
    assert first.header.frame_id == "cam_test"
    rgb = image_to_rgb(first.encoding, first.height, first.width, first.step, first.data)
    assert rgb.std() > 10, "a rendered PushT scene, not a flat image"
    stamps = np.array([_stamp(m) for m in frames])
    assert np.all(np.diff(stamps) > 0)
    np.testing.assert_allclose(np.median(np.diff(stamps)), 0.1, atol=0.01)  # camera_hz 10

    js = probe.wait_for("joint_states", count=10)
    assert list(js[-1].name) == ["agent_x", "agent_y"]

    # command the agent to a corner; its joint positions (agent position) go there
    pub = probe.publisher(Float64MultiArray, "joint_commands")
    target = np.array([100.0, 400.0])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        pub.publish(Float64MultiArray(data=list(target)))
        time.sleep(0.05)
        pos = np.asarray(joints[-1][1].position)
        if np.linalg.norm(pos - target) < 15:
            break
    assert np.linalg.norm(np.asarray(joints[-1][1].position) - target) < 15

    # a malformed command is reported and ignored; the node keeps running
    pub.publish(Float64MultiArray(data=[1.0, 2.0, 3.0]))
    assert node.wait_for_output("expected 2 finite values", timeout=10), node.output()

    client = probe.node.create_client(Trigger, "sim_robot/reset")
    assert client.wait_for_service(timeout_sec=10)
    future = client.call_async(Trigger.Request())
    deadline = time.monotonic() + 10
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert future.result().success and "episode 1" in future.result().message
    n = len(images)
    probe.wait_for("image_raw", count=n + 3)
    assert node.alive()


def test_node_processes_spin_the_chosen_executor_and_stop_cleanly_on_sigint(probe, launch_node):
    """run_node spins the events executor by default (HMA_EXECUTOR; "single" and "multi" are
    rclpy's own): each serves the node's topics and services, and a Ctrl-C (SIGINT) ends the
    process with exit code 0 within seconds -- the events executor's own spin() would ignore it.
    An unknown executor is refused before anything starts, naming the choices."""
    for kind in ("events", "single"):
        node = launch_node("sim_robot_node", params_file=REPO / "config/sim_robot.yaml",
                           params={"seed": 4}, env={"HMA_EXECUTOR": kind})
        client = probe.node.create_client(Trigger, "sim_robot/reset")
        assert client.wait_for_service(timeout_sec=15), node.output()
        future = client.call_async(Trigger.Request())
        deadline = time.monotonic() + 10
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert future.done() and future.result().success, (kind, node.output())
        t = time.monotonic()
        assert node.stop(timeout=8) == 0, (kind, node.output())
        assert time.monotonic() - t < 5
        probe.node.destroy_client(client)
    bad = launch_node("sim_robot_node", params_file=REPO / "config/sim_robot.yaml", env={"HMA_EXECUTOR": "fast"})
    bad.proc.wait(20)
    assert bad.proc.returncode == 2 and "HMA_EXECUTOR must be one of events, single, multi" in bad.output()


def test_a_plan_needs_the_open_loop_controller(probe, launch_node):
    """plan_seconds with a controller that answers the state (expert, noisy) cannot be planned
    ahead: the node refuses to start and says what to pass."""
    node = launch_node("sim_robot_node", params_file=REPO / "config/sim_robot.yaml",
                       params={"policy": "noisy", "plan_seconds": 2.0})
    assert node.wait_for_output("needs plan_seconds >= 0 and the open-loop built-in policy (policy:=random)",
                                timeout=20), node.output()
