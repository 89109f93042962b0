#!/usr/bin/env python3
"""Benchmark imagine_node under a robot-like load, over real DDS:
a 30 Hz 640x480 rgb8 camera (the real PushT simulator rendered at VGA), 200 Hz joint states
and the 10 Hz command stream, for DURATION seconds, into imagine_node with the shipped model
(the nodes' default checkpoint unless --checkpoint names another).

    python benchmarks/imagine_node_bench.py [--duration 20] [--horizon 8] [--param graphs:=true ...]

Prints JSON: filmstrip rate (by header stamps and by arrival), inference latency p50/p99
(step complete -> publish, from the node's /diagnostics), dropped steps, the node's peak RSS
(VmHWM), and stamp/frame_id checks.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--horizon", type=int, default=8)
    ap.add_argument("--checkpoint", default=None,
                    help="default: the nodes' own default (hma_ros.nodes.pipeline.DEFAULT_CHECKPOINT, from models/)")
    ap.add_argument("--torch-threads", type=int, default=0, help="imagine_node's torch_threads parameter")
    ap.add_argument("--param", action="append", default=[], metavar="NAME:=VALUE",
                    help="another imagine_node parameter, e.g. graphs:=true or precision:=bf16 (repeatable)")
    args = ap.parse_args()
    if args.checkpoint is None:  # what a user who names no checkpoint runs
        from hma_ros.nodes.pipeline import DEFAULT_CHECKPOINT

        args.checkpoint = str(REPO / "models" / DEFAULT_CHECKPOINT)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
    os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(REPO / "config/fastdds_shm.xml")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import Float64MultiArray

    from hma_ros.data.sims import Policy, PushTSim
    from hma_ros.nodes.common import rgb_to_image_msg, sec_to_stamp

    log = open("/tmp/hma_imagine_bench.log", "w")
    node_proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "imagine_node"), "--ros-args", "-p", f"checkpoint:={args.checkpoint}",
         "-p", f"horizon:={args.horizon}", "-p", "embodiment:=pusht", "-p", f"torch_threads:={args.torch_threads}"]
        + [a for p in args.param for a in ("-p", p)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    rclpy.init()
    node = rclpy.create_node("hma_bench_feeder")
    pub_img = node.create_publisher(Image, "image_raw", qos_profile_sensor_data)
    pub_js = node.create_publisher(JointState, "joint_states", qos_profile_sensor_data)
    pub_cmd = node.create_publisher(Float64MultiArray, "joint_commands", qos_profile_sensor_data)
    strips, diags = [], []
    node.create_subscription(Image, "imagined/image", lambda m: strips.append((time.monotonic(), m)), 10)
    node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: diags.append(m), 10)
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()

    sim = PushTSim(image_size=96)
    sim.u.observation_width, sim.u.observation_height = 640, 480
    sim.reset(0)
    policy = Policy(sim, "noisy", np.random.default_rng(0))
    # let the node load its model (and compile it: compile:=true warms up in configure, about a
    # minute) and discover the feeder: feed once it reports itself active
    deadline, active = time.monotonic() + 600, False
    while time.monotonic() < deadline and not active:
        time.sleep(1.0)
        active = any("hma_imagine" in st.name and any(kv.key == "lifecycle_state" and kv.value == "active"
                                                       for kv in st.values) for m in list(diags) for st in m.status)
    if not active:
        print("imagine_node did not become active in 600 s: see /tmp/hma_imagine_bench.log", file=sys.stderr)
    time.sleep(2.0)
    diags.clear()
    t_wall0 = time.monotonic()
    t0 = node.get_clock().now().nanoseconds * 1e-9
    sent = {"images": 0, "joints": 0, "commands": 0}
    ni = nj = nc = 0
    action = policy()
    cam_stamps = set()
    while True:
        el = time.monotonic() - t_wall0
        if el > args.duration:
            break
        while nc / 10.0 <= el:  # the simulator and its commands at 10 Hz
            action = policy()
            sim.step(action)
            pub_cmd.publish(Float64MultiArray(data=[float(v) for v in action]))
            nc += 1
            sent["commands"] += 1
        while nj / 200.0 <= el:
            js = JointState(name=["agent_x", "agent_y"], position=[float(v) for v in sim.joint_positions()])
            sec_to_stamp(t0 + nj / 200.0, js.header.stamp)
            pub_js.publish(js)
            nj += 1
            sent["joints"] += 1
        while ni / 30.0 <= el:
            t = t0 + ni / 30.0
            pub_img.publish(rgb_to_image_msg(sim.render(), t, "bench_camera"))
            cam_stamps.add(round(t, 6))
            ni += 1
            sent["images"] += 1
        time.sleep(0.001)
    time.sleep(1.5)
    rss_kb = 0
    try:
        for line in open(f"/proc/{node_proc.pid}/status"):
            if line.startswith("VmHWM"):
                rss_kb = int(line.split()[1])
    except OSError:
        pass
    os.killpg(node_proc.pid, signal.SIGINT)
    try:
        node_proc.wait(10)
    except subprocess.TimeoutExpired:  # never leave a node behind, spinning on the cores of the next run
        os.killpg(node_proc.pid, signal.SIGKILL)
        node_proc.wait(5)
        print("imagine_node did not stop on SIGINT within 10 s: killed", file=sys.stderr)
    stamps = [m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec for _, m in strips]
    arrivals = [t for t, _ in strips]
    values = {}
    for m in diags:
        for st in m.status:
            if "hma_imagine" in st.name:
                values = {kv.key: kv.value for kv in st.values}
    steady = [s for s, a in zip(stamps, arrivals, strict=True) if a - t_wall0 > 3.0]
    result = {
        "duration_s": args.duration, "sent": sent, "filmstrips": len(strips),
        "rate_by_stamps_hz": round((len(steady) - 1) / (steady[-1] - steady[0]), 3) if len(steady) > 1 else 0,
        "rate_by_arrival_hz": round((len(arrivals) - 1) / (arrivals[-1] - arrivals[0]), 3) if len(arrivals) > 1 else 0,
        "latency_p50_ms": float(values.get("latency_p50_ms", "nan")),
        "latency_p99_ms": float(values.get("latency_p99_ms", "nan")),
        "dropped_steps": int(values.get("dropped_steps", -1)), "images_received": int(values.get("images", -1)),
        "joint_states_received": int(values.get("joint_states", -1)),
        "node_peak_rss_mb": round(rss_kb / 1024, 1),
        "frame_ids_ok": all(m.header.frame_id == "bench_camera" for _, m in strips),
        "stamps_are_camera_stamps": all(round(s, 6) in cam_stamps for s in stamps),
        "horizon": args.horizon, "torch_threads": args.torch_threads, "cpu_cores": os.cpu_count(),
        "checkpoint": args.checkpoint, "params": args.param,
    }
    print(json.dumps(result, indent=2))
    executor.shutdown()  # stop spinning before the node goes (destroying it under spin aborted the process)
    spin.join(5)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
