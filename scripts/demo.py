#!/usr/bin/env python3
"""`make demo`: the hma_ros graph against a simulated robot, as real ROS 2 processes.

sim_robot_node (PushT on the real gym-pusht simulator: camera + joint states + its controller's
commands over DDS) -> imagine_node (the shipped checkpoint hma_discrete_moves imagines the next 4 s at every 2 Hz
step) -> recorder_node (records the camera and the filmstrips for DURATION s, scores each
imagined frame against what the camera really showed at that time). Writes out/demo.gif (what
really happened next | what the model imagined, 0.5 s ahead) and out/recording.json, and prints
tick rate, latency p50/p99 and PSNR. All processes run in a private, localhost-only DDS domain.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def start(exe: str, params: dict, log: Path) -> subprocess.Popen:
    args = [str(Path(sys.executable).parent / exe), "--ros-args"]
    for k, v in params.items():
        args += ["-p", f"{k}:={v}"]
    return subprocess.Popen(args, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--checkpoint", default=str(REPO / "models" / "hma_discrete_moves"))
    ap.add_argument("--horizon", type=int, default=8)
    ap.add_argument("--out", default=str(REPO / "out"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not (Path(args.checkpoint) / "model.safetensors").is_file():
        print(f"[demo] no checkpoint at {args.checkpoint}", file=sys.stderr)
        return 1
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
    os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(REPO / "config/fastdds_shm.xml"))
    print(f"[demo] ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']} (localhost only); sim_robot_node (PushT) + "
          f"imagine_node ({Path(args.checkpoint).name}, K={args.horizon}) + recorder for {args.duration:.0f} s; "
          f"logs in {out}/")
    procs = [
        # the robot's controller plans its commands 5 s ahead and publishes them (planned_commands), as a
        # planner would: the node imagines the commands that will really be sent, so the imagined agent can
        # go where they take it (without a plan it must guess: future_actions hold)
        start("sim_robot_node", {"embodiment": "pusht", "policy": "random", "plan_seconds": 5.0},
              out / "sim_robot.log"),
        start("imagine_node", {"checkpoint": args.checkpoint, "embodiment": "pusht", "horizon": args.horizon},
              out / "imagine.log"),
    ]
    recorder = start("recorder_node", {"duration": args.duration, "out_dir": str(out), "gif_name": "demo.gif",
                                       "imagined_topic": "imagined/image", "horizon": args.horizon,
                                       "track_agent": True},
                     out / "recorder.log")
    try:
        recorder.wait(timeout=args.duration + 90)
    except subprocess.TimeoutExpired:
        print("[demo] recorder did not finish in time", file=sys.stderr)
    finally:
        for p in procs + [recorder]:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGINT)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
    summary_path = out / "recording.json"
    if not summary_path.exists():
        print(f"[demo] FAILED: no recording; see the logs in {out}/", file=sys.stderr)
        return 1
    s = json.loads(summary_path.read_text())
    d = s.get("diagnostics", {})
    print(f"[demo] camera: {s['frames']} frames at {s['camera_hz']} Hz; joint states at {s['joint_hz']} Hz")
    print(f"[demo] imagine_node: {s.get('filmstrips', 0)} filmstrips at {s.get('strip_hz', 0)} Hz "
          f"(tick rate {d.get('tick_rate_hz', '?')} Hz); latency step->publish p50 {d.get('latency_p50_ms', '?')} ms, "
          f"p99 {d.get('latency_p99_ms', '?')} ms; dropped steps {d.get('dropped_steps', '?')}")
    for h, v in s.get("imagined_vs_actual", {}).items():
        agent = (f"; agent drawn within 4 px of where it really is: {100 * v['agent_within']:.0f}% "
                 f"(copy: {100 * v['copy_agent_within']:.0f}%)") if "agent_within" in v else ""
        if "t_whole" in v:
            agent += f"; the T drawn whole: {100 * v['t_whole']:.0f}% (camera: {100 * v['camera_t_whole']:.0f}%)"
        print(f"[demo]   {float(h) * 0.5:.1f} s ahead: PSNR imagined vs actual {v['psnr']:.2f} dB "
              f"(copy the current frame: {v['copy_psnr']:.2f} dB, n={v['n']}){agent}")
    print(f"[demo] wrote {s.get('gif', '(no gif)')}  (left: what really happened next | right: imagined)")
    return 0 if s.get("filmstrips", 0) > 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
